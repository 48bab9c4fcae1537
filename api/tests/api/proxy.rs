//! The shipped proxy (`deploy/nginx/templates/default.conf.template`), run
//! by Debian's nginx in front of two api processes and a worker, pointed at
//! them as an operator points it anywhere: `API_UPSTREAM=api.test:<port>`,
//! a name our own DNS responder (`DNS_RESOLVER`) answers with 127.0.0.2 and
//! 127.0.0.3, where the two instances listen. Clients are told apart by
//! their source address (127.0.0.5, 127.0.0.6), as the proxy tells them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use testkit::sse::EventStream;

use serde_json::{Value, json};
use testkit::images::{jpeg, photo};
use testkit::proxy::{Dns, Proxy, TEMPLATE};
use testkit::{ApiProcess, DEADLINE, TestApp, WorkerProcess, wait};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

use crate::worker_binary;

const API: &str = env!("CARGO_BIN_EXE_api");
const NAME: &str = "api.test";
const REPLICAS: [Ipv4Addr; 2] = [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)];
/// The client that misbehaves, and the one that must not suffer for it.
const GREEDY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 6);

/// The proxy, the two api instances behind it and a worker, on one
/// Postgres and Redis.
struct Deployment {
    app: TestApp,
    dns: Dns,
    proxy: Proxy,
    apis: Vec<ApiProcess>,
    /// The port every instance listens on, each on its own address.
    port: u16,
    _worker: WorkerProcess,
}

/// Starts it all; `vars` are settings of both api instances.
async fn deploy(vars: &[(&str, &str)]) -> Deployment {
    let app = TestApp::spawn_without_worker().await;
    let port = testkit::free_port();
    // As compose sets it: every request comes through the proxy.
    let mut settings = vec![("CLIENT_IP_HEADER", "X-Forwarded-For")];
    settings.extend_from_slice(vars);
    let mut apis = Vec::new();
    for replica in REPLICAS {
        apis.push(
            app.spawn_api_process_at(API, &replica.to_string(), port, &settings)
                .await,
        );
    }
    let dns = Dns::start(NAME, &REPLICAS);
    let proxy = Proxy::start(&format!("{NAME}:{port}"), dns.address());
    let worker = app.spawn_worker_process(worker_binary());
    Deployment {
        app,
        dns,
        proxy,
        apis,
        port,
        _worker: worker,
    }
}

impl Deployment {
    /// An HTTP client connecting from `source`.
    fn client(&self, source: Ipv4Addr) -> reqwest::Client {
        platform::http::builder()
            .expect("the HTTP client builds")
            .local_address(IpAddr::V4(source))
            .timeout(Duration::from_secs(20))
            .build()
            .expect("the HTTP client builds")
    }

    /// A client from `source` without a time limit on the whole answer
    /// (a live stream's never ends).
    fn streaming_client(&self, source: Ipv4Addr) -> reqwest::Client {
        platform::http::builder()
            .expect("the HTTP client builds")
            .local_address(IpAddr::V4(source))
            .build()
            .expect("the HTTP client builds")
    }

    /// A new connection to the proxy from `source`.
    async fn connect_from(&self, source: Ipv4Addr) -> TcpStream {
        let socket = TcpSocket::new_v4().expect("a socket");
        socket
            .bind(SocketAddr::new(IpAddr::V4(source), 0))
            .expect("a loopback source address");
        socket
            .connect(SocketAddr::from(([127, 0, 0, 1], self.proxy.port)))
            .await
            .expect("the proxy accepts connections")
    }

    /// `request` sent whole on a new connection from `source`; the answer.
    async fn raw(&self, source: Ipv4Addr, request: &str) -> Answer {
        let mut stream = self.connect_from(source).await;
        Answer::parse(&crate::raw::request(&mut stream, request).await)
    }

    /// A new account, signed up and confirmed through the proxy: its token.
    async fn sign_up(&self, email: &str) -> String {
        let mut signup = self
            .app
            .sign_up_unverified_at(&self.proxy.address, email, "Proxied")
            .await;
        self.app.confirm_at(&self.proxy.address, &mut signup).await;
        signup["token"].as_str().expect("a token").to_owned()
    }

    /// The requests the api instances are serving now, this question aside;
    /// an instance that refuses the question is full: `cap` (its
    /// HTTP_MAX_CONNECTIONS).
    async fn in_flight(&self, cap: usize) -> usize {
        let client = self.client(Ipv4Addr::LOCALHOST);
        let mut total = 0;
        for replica in REPLICAS {
            let scrape = client
                .get(format!("http://{replica}:{}/metrics", self.port))
                .send()
                .await;
            let text = match scrape {
                Ok(response) if response.status() == 200 => {
                    response.text().await.expect("a text body")
                }
                // Answered 503 at once, or before it could ask: at capacity.
                _ => {
                    total += cap;
                    continue;
                }
            };
            let now: f64 = text
                .lines()
                .find_map(|line| line.strip_prefix("http_requests_in_flight "))
                .and_then(|value| value.trim().parse().ok())
                .expect("the instance reports requests in flight");
            total += (now as usize).saturating_sub(1);
        }
        total
    }
}

/// An answer read off a raw connection.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn parse(text: &str) -> Self {
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let status = head
            .get(9..12)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
        Self {
            status,
            head: head.to_ascii_lowercase(),
            body: body.to_owned(),
        }
    }

    /// Asserts it is `status` in our JSON shape with `code`.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert!(
            self.head.contains("content-type: application/json"),
            "{self:?}"
        );
        let body: Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("the body is JSON: {self:?}"));
        assert_eq!(body["error"]["code"], code, "{self:?}");
        assert!(body["error"]["message"].is_string(), "{self:?}");
    }
}

/// Asserts `response` is `status` in our JSON shape with `code`; its body.
async fn assert_json_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    let got = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.expect("a body");
    assert_eq!(got, status, "{text}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON: {text}"));
    assert_eq!(body["error"]["code"], code, "{body}");
    body
}

/// The value of `variable` in the `lb` service's environment in
/// docker-compose.yml.
fn compose_lb_setting(compose: &str, variable: &str) -> String {
    let lb = compose
        .split("\n  lb:\n")
        .nth(1)
        .expect("docker-compose.yml has an `lb` service");
    // The service ends where the next one starts (two spaces, a name).
    let end = lb
        .lines()
        .position(|line| line.starts_with("  ") && !line.starts_with("   "))
        .unwrap_or(usize::MAX);
    lb.lines()
        .take(end)
        .find_map(|line| line.trim().strip_prefix(&format!("{variable}:")))
        .map(|value| value.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("the lb service sets {variable}"))
}

#[test]
fn the_proxy_config_rendered_with_the_compose_settings_is_valid() {
    let compose = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docker-compose.yml"
    ))
    .expect("docker-compose.yml is readable");
    assert!(
        compose.contains("./deploy/nginx/templates:/etc/nginx/templates:ro"),
        "the lb service mounts the template where the image renders it"
    );
    let vars: Vec<(&str, String)> = ["LISTEN_PORT", "API_UPSTREAM", "DNS_RESOLVER"]
        .into_iter()
        .map(|name| (name, compose_lb_setting(&compose, name)))
        .collect();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let rendered = testkit::proxy::render(std::path::Path::new(TEMPLATE), &vars);
    assert!(
        !rendered.contains("${"),
        "every variable is set: {rendered}"
    );
    let checked = testkit::proxy::check(std::path::Path::new(TEMPLATE), &vars);
    assert!(
        checked.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_a_photo_upload_and_its_live_stream_work_through_the_proxy() {
    let deployment = deploy(&[]).await;
    let token = deployment.sign_up("proxied@example.com").await;
    let mut stream = wait::until("a stream through the proxy", DEADLINE, || async {
        EventStream::open(
            &deployment.streaming_client(OTHER),
            &deployment.proxy.address,
            &token,
            None,
        )
        .await
        .ok()
    })
    .await;
    let (_, name, _) = stream.next_event().await;
    assert_eq!(name, "ready", "the first frame passed the proxy unbuffered");

    let upload = deployment
        .app
        .upload_at(
            &deployment.proxy.address,
            &token,
            "photo",
            &jpeg(320, 240, &photo(320, 240)),
        )
        .await;

    assert_eq!(upload.status(), 202);
    let upload: Value = upload.json().await.expect("JSON");
    let job = upload["job"]["id"].as_str().expect("a job id");
    // Processed by the worker process: this test app runs no worker itself.
    deployment
        .app
        .wait_for_job_state(job, "completed", DEADLINE)
        .await;
    // Each step reached the client as it happened, not when the answer
    // ended (it never does).
    tokio::time::timeout(DEADLINE, async {
        loop {
            let (_, name, data) = stream.next_event().await;
            if name == "job" && data["id"] == job && data["state"] == "completed" {
                break;
            }
        }
    })
    .await
    .expect("the job's completion came through the proxy");
    let me = deployment
        .client(OTHER)
        .get(format!("{}/api/me", deployment.proxy.address))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answers");
    assert_eq!(me.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_forwarded_for_does_not_escape_the_apis_signup_and_login_limit() {
    let deployment = deploy(&[("AUTH_RATE_LIMIT", "3")]).await;
    let login = |source: Ipv4Addr, attempt: usize| {
        let request = deployment
            .client(source)
            .post(format!("{}/api/login", deployment.proxy.address))
            // A new address each time, in two lines; the last hop is what
            // the api trusts, so it is forged too.
            .header("x-forwarded-for", format!("198.51.100.{attempt}"))
            .header("x-forwarded-for", format!("6.6.6.6, 203.0.113.{attempt}"))
            .json(&json!({
                "email": format!("nobody{attempt}@example.com"),
                "password": "guess guess guess"
            }));
        async move { request.send().await.expect("answers") }
    };

    for attempt in 0..3 {
        assert_eq!(login(GREEDY, attempt).await.status(), 401);
    }
    let limited = login(GREEDY, 3).await;

    let retry_after = limited.headers().get("retry-after").cloned();
    let body = assert_json_error(limited, 429, "rate_limited").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("too many attempts")),
        "the api's own limit: {body}"
    );
    assert!(retry_after.is_some(), "429 says when to retry");
    assert_eq!(
        login(OTHER, 4).await.status(),
        401,
        "another client has its own limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_forwarded_for_does_not_escape_the_proxys_request_limit() {
    let deployment = deploy(&[]).await;
    let greedy = deployment.client(GREEDY);
    let health = |client: &reqwest::Client, n: usize| {
        let request = client
            .get(format!("{}/healthz", deployment.proxy.address))
            .header("x-forwarded-for", format!("10.{}.{}.1", n / 250, n % 250));
        async move { request.send().await.expect("answers") }
    };

    // The shipped limit is 50/s with a burst of 500: far fewer than this
    // many, sent as fast as they go, must meet it.
    let mut limited = None;
    let mut sent = 0;
    while limited.is_none() && sent < 5_000 {
        let batch: Vec<_> = (sent..sent + 16).map(|n| health(&greedy, n)).collect();
        sent += 16;
        for response in futures::future::join_all(batch).await {
            if response.status() == 429 {
                limited = Some(response);
            }
        }
    }

    let limited = limited.unwrap_or_else(|| panic!("{sent} requests, none limited"));
    assert_eq!(
        limited.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    assert_json_error(limited, 429, "rate_limited").await;
    let other = health(&deployment.client(OTHER), 0).await;
    assert_eq!(other.status(), 200, "another client has its own limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_is_not_public_through_the_proxy() {
    let deployment = deploy(&[]).await;
    let direct = deployment
        .client(OTHER)
        .get(format!(
            "http://{}:{}/metrics",
            REPLICAS[0], deployment.port
        ))
        .send()
        .await
        .expect("the instance answers");
    assert_eq!(direct.status(), 200, "the instance serves /metrics itself");

    for path in [
        "/metrics",
        "/metrics/",
        "//metrics",
        "/metrics?x",
        "/%6detrics",
        "/%6D%65trics",
        "/METRICS",
        "/./metrics",
        "/healthz/../metrics",
        "/metrics/../metrics",
    ] {
        let answer = deployment
            .raw(
                OTHER,
                &format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
            )
            .await;
        assert!(!answer.body.contains("http_requests"), "{path}: {answer:?}");
        answer.assert_error(404, "not_found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_upload_gets_a_json_413() {
    let deployment = deploy(&[]).await;
    let token = deployment.sign_up("big@example.com").await;

    // Refused before it reaches the api, whatever the api would make of it.
    let mut stream = deployment.connect_from(OTHER).await;
    let head = format!(
        "POST /api/photos HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
         content-type: multipart/form-data; boundary=b\r\ncontent-length: {}\r\n\r\n",
        30 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.expect("sent");
    let _ = stream.write_all(&[b'x'; 64 * 1024]).await;
    Answer::parse(&crate::raw::read_to_close(&mut stream).await)
        .assert_error(413, "payload_too_large");

    // Just over PHOTO_MAX_BYTES and its frame: a JPEG, as a phone sends it.
    let mut bytes = jpeg(320, 240, &photo(320, 240));
    bytes.resize(20 * 1024 * 1024 + 64 * 1024, 0);
    let response = deployment
        .app
        .upload_at(&deployment.proxy.address, &token, "photo", &bytes)
        .await;
    assert_json_error(response, 413, "payload_too_large").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_holding_hundreds_of_slow_connections_does_not_starve_another() {
    // Each instance takes 100 connections (HTTP_MAX_CONNECTIONS): 300 held
    // would fill both, if the proxy let one client hold them.
    const HELD: usize = 300;
    const CAP: usize = 100;
    let deployment = deploy(&[("HTTP_MAX_CONNECTIONS", &CAP.to_string())]).await;
    let answers = Arc::new(Mutex::new(Vec::new()));
    let mut holders = Vec::new();
    for _ in 0..HELD {
        let mut stream = deployment.connect_from(GREEDY).await;
        // A signup whose body never comes: streamed through, it holds an
        // instance's connection until the body deadlines (10 s) cut it.
        stream
            .write_all(
                b"POST /api/signup HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                  content-length: 4000\r\n\r\n{",
            )
            .await
            .expect("sent");
        let answers = answers.clone();
        holders.push(tokio::spawn(async move {
            let mut first = [0_u8; 512];
            let read = stream.read(&mut first).await.unwrap_or(0);
            let answer = String::from_utf8_lossy(&first[..read]).into_owned();
            answers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(answer);
        }));
    }
    // Every held connection is either answered or being served by an instance.
    let answered = || answers.lock().unwrap_or_else(PoisonError::into_inner).len();
    wait::until(
        "the attack to be in place",
        Duration::from_secs(5),
        || async { (answered() + deployment.in_flight(CAP).await >= HELD).then_some(()) },
    )
    .await;

    let body = json!({ "email": "other@example.com", "password": "correct horse battery", "name": "Other" })
        .to_string();
    let signup = deployment
        .raw(
            OTHER,
            &format!(
                "POST /api/signup HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
        .await;

    assert_eq!(signup.status, 201, "the other client is served: {signup:?}");
    let refused: Vec<String> = answers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let limited = refused
        .iter()
        .filter(|answer| answer.starts_with("HTTP/1.1 429") && answer.contains("rate_limited"))
        .count();
    assert!(
        limited >= HELD - 64,
        "the greedy client was held to 64 at once: {limited} of {HELD} refused"
    );
    for holder in holders {
        holder.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_api_instance_is_routed_around() {
    let mut deployment = deploy(&[]).await;
    deployment.apis[0].kill().await;
    let client = deployment.client(OTHER);

    // The name still answers with the dead address, as a crashed process
    // in a live container's would: every request meets it about half of
    // the time, and must go to the other instance.
    for n in 0..12 {
        let health = client
            .get(format!("{}/healthz", deployment.proxy.address))
            .send()
            .await
            .expect("answers");
        assert_eq!(health.status(), 200, "GET {n}");
        let signup = client
            .post(format!("{}/api/signup", deployment.proxy.address))
            .json(&json!({ "email": format!("u{n}@example.com"), "password": "correct horse battery", "name": "U" }))
            .send()
            .await
            .expect("answers");
        assert_eq!(signup.status(), 201, "POST {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_instance_down_the_answer_is_our_json_error() {
    let mut deployment = deploy(&[]).await;
    for api in &mut deployment.apis {
        api.kill().await;
    }
    let client = deployment.client(OTHER);

    let health = client
        .get(format!("{}/healthz", deployment.proxy.address))
        .send()
        .await
        .expect("answers");
    let signup = client
        .post(format!("{}/api/signup", deployment.proxy.address))
        .json(&json!({ "email": "down@example.com", "password": "correct horse battery", "name": "D" }))
        .send()
        .await
        .expect("answers");

    for response in [health, signup] {
        assert_eq!(
            response.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        assert_json_error(response, 502, "service_unavailable").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_replaced_at_new_addresses_are_found_without_restarting_the_proxy() {
    let mut deployment = deploy(&[]).await;
    let client = deployment.client(OTHER);
    let health = || {
        let request = client.get(format!("{}/healthz", deployment.proxy.address));
        async move { request.send().await.expect("answers").status() }
    };
    assert_eq!(health().await, 200, "the first replicas serve");

    // A deploy: a new replica elsewhere, the name moved to it (with the
    // 600 s TTL Docker's DNS gives), the old replicas gone.
    let replacement = Ipv4Addr::new(127, 0, 0, 4);
    let _new = deployment
        .app
        .spawn_api_process_at(
            API,
            &replacement.to_string(),
            deployment.port,
            &[("CLIENT_IP_HEADER", "X-Forwarded-For")],
        )
        .await;
    deployment.dns.answer(&[replacement]);
    for api in &mut deployment.apis {
        api.kill().await;
    }

    wait::until(
        "the proxy to find the new replica",
        Duration::from_secs(15),
        || async { (health().await == 200).then_some(()) },
    )
    .await;
    for _ in 0..5 {
        assert_eq!(health().await, 200, "served by the new replica");
    }
}
