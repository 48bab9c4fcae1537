//! The worker's `/healthz` and `/metrics` on `WORKER_HTTP_PORT`, read from
//! a real worker process (its own recorder, so the numbers are exact).

use testkit::prometheus::Scrape;
use testkit::{DEADLINE, TestApp};

const WORKER: &str = env!("CARGO_BIN_EXE_worker");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_reports_health_and_job_metrics_that_move_with_the_work() {
    let port = testkit::free_port();
    let app = TestApp::spawn_without_worker_with(move |s| s.worker.http_port = Some(port)).await;
    let (_worker, base) = worker_port(&app, port).await;

    let health = app
        .client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let health: serde_json::Value = health.json().await.expect("json");
    assert_eq!(
        health,
        serde_json::json!({ "status": "ok", "redis": "up", "redis_maxmemory_policy": "noeviction" })
    );

    let failed = app
        .sign_up_and_meanwhile("bounce@example.com", "Bounce", |app| {
            app.smtp.refuse_next("550 5.1.1 no such user")
        })
        .await;
    let done = app.sign_up("done@example.com", "Done").await;
    for (signup, state) in [(&failed, "failed"), (&done, "completed")] {
        let job = testkit::job_id(signup, "welcome-email");
        app.wait_for_job_state(&job, state, DEADLINE).await;
    }

    let (scrape, text) = Scrape::fetch(&app.client, &format!("{base}/metrics")).await;
    let welcome = r#"queue="welcome-email""#;
    assert_eq!(
        scrape.value(&format!("jobs_started_total{{{welcome}}}")),
        2.0,
        "{text}"
    );
    assert_eq!(
        scrape.value(&format!("jobs_completed_total{{{welcome}}}")),
        1.0
    );
    assert_eq!(
        scrape.value(&format!("jobs_failed_total{{{welcome}}}")),
        1.0,
        "a refused recipient is permanent"
    );
    assert_eq!(
        scrape.value(&format!(
            r#"job_duration_seconds_count{{{welcome},outcome="completed"}}"#
        )),
        1.0
    );
    assert_eq!(scrape.kind("jobs_completed_total"), Some("counter"));
    assert_eq!(scrape.kind("job_duration_seconds"), Some("histogram"));
    assert_eq!(
        scrape.get(&format!(r#"queue_jobs{{{welcome},state="failed"}}"#)),
        Some(1.0)
    );
    assert_eq!(
        scrape.get(&format!(r#"queue_jobs{{{welcome},state="waiting"}}"#)),
        Some(0.0)
    );
    assert_eq!(
        scrape.get(&format!("queue_oldest_waiting_seconds{{{welcome}}}")),
        Some(0.0)
    );
}

/// A worker process of `app` serving `port`; returns
/// it (stopped when dropped) and the port's base URL once it answers.
async fn worker_port(app: &TestApp, port: u16) -> (testkit::WorkerProcess, String) {
    let worker = app.spawn_worker_process(WORKER);
    let base = format!("http://127.0.0.1:{port}");
    testkit::wait::until("the worker's HTTP port", DEADLINE, || async {
        app.client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    (worker, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_metrics_token_the_worker_shows_metrics_only_to_the_scraper_and_health_to_all() {
    let port = testkit::free_port();
    let app = TestApp::spawn_without_worker_with(move |s| {
        s.worker.http_port = Some(port);
        s.server.metrics_token = Some("scrape-the-worker".into());
    })
    .await;
    let (_worker, base) = worker_port(&app, port).await;
    let get = |path: &str, token: Option<&str>| {
        let mut request = app.client.get(format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.expect("answered").status().as_u16() }
    };

    assert_eq!(get("/healthz", None).await, 200, "probes need no token");
    assert_eq!(get("/metrics", None).await, 401);
    assert_eq!(get("/metrics", Some("scrape-the-worke")).await, 401);
    assert_eq!(get("/metrics", Some("scrape-the-worker")).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_port_caps_connections_and_closes_silent_ones() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    let port = testkit::free_port();
    let app = TestApp::spawn_without_worker_with(move |s| {
        s.worker.http_port = Some(port);
        s.server.http.idle_timeout = std::time::Duration::from_secs(2);
    })
    .await;
    let (_worker, _base) = worker_port(&app, port).await;
    // The idle health probe above has been closed by now or soon will be;
    // 64 silent connections fill the port.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let mut silent = Vec::new();
    for _ in 0..64 {
        silent.push(
            TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connects"),
        );
    }
    // A window for the worker to accept the 64 and take their slots before
    // the extra one arrives: nothing outside the worker says when it has.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connects");
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: worker\r\n\r\n")
        .await
        .ok();
    let mut answer = String::new();
    tokio::time::timeout(DEADLINE, extra.read_to_string(&mut answer))
        .await
        .expect("answered at once")
        .ok();
    assert!(
        answer.starts_with("HTTP/1.1 503"),
        "over the cap: {answer:?}"
    );

    // Silent connections are closed after the idle timeout, not held.
    let started = std::time::Instant::now();
    let mut first = silent.swap_remove(0);
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(DEADLINE, first.read(&mut byte))
        .await
        .expect("closed by the worker");
    assert!(matches!(read, Ok(0) | Err(_)), "closed: {read:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    drop(silent);
    testkit::wait::until("the port to answer again", DEADLINE, || async {
        let response = app
            .client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_health_probes_asks_redis_for_its_policy_about_once_a_second() {
    let port = testkit::free_port();
    let app = TestApp::spawn_without_worker_with(move |s| s.worker.http_port = Some(port)).await;
    let (_worker, base) = worker_port(&app, port).await;
    app.redis.cli(&["config", "resetstat"]);

    let started = std::time::Instant::now();
    let answers = futures::future::join_all(
        (0..50).map(|_| app.client.get(format!("{base}/healthz")).send()),
    )
    .await;
    let took = started.elapsed();

    assert!(
        answers
            .iter()
            .all(|answer| answer.as_ref().is_ok_and(|answer| answer.status() == 200))
    );
    let asked: u64 = app
        .redis
        .cli(&["info", "commandstats"])
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_config|get:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().expect("a count"));
    // One lookup per second the burst lasted, and the checks both
    // processes make once at start, if they came late.
    assert!(
        asked <= took.as_secs() + 3,
        "{asked} CONFIG GET for 50 probes in {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_reports_each_providers_budget_its_use_and_a_429s_hold() {
    let stripe = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/v1/customers"))
        .respond_with(wiremock::ResponseTemplate::new(429).insert_header("retry-after", "60"))
        .mount(&stripe)
        .await;
    let port = testkit::free_port();
    let api_base = stripe.uri();
    let app = TestApp::spawn_without_worker_with(move |s| {
        s.worker.http_port = Some(port);
        s.providers.stripe_secret_key = Some("sk_test_metrics".into());
        s.providers.stripe_api_base = api_base;
        s.providers.stripe_rate_limit = 7;
    })
    .await;
    let (_worker, base) = worker_port(&app, port).await;

    app.sign_up("held@example.com", "Held").await;

    let url = format!("{base}/metrics");
    let (scrape, text) = testkit::wait::until("Stripe's hold on /metrics", DEADLINE, || async {
        let (scrape, text) = Scrape::fetch(&app.client, &url).await;
        let held = scrape.get(r#"provider_held_seconds{provider="stripe"}"#)?;
        (held > 0.0).then_some((scrape, text))
    })
    .await;
    let held = scrape.value(r#"provider_held_seconds{provider="stripe"}"#);
    assert!(held <= 60.0, "held for the Retry-After at most: {held}");
    for (provider, limit) in [("stripe", 7.0), ("slack", 1.0), ("mail", 500.0)] {
        let series = format!(r#"provider_budget_limit{{provider="{provider}"}}"#);
        assert_eq!(scrape.get(&series), Some(limit), "{text}");
        let used = format!(r#"provider_budget_used{{provider="{provider}"}}"#);
        assert!(scrape.get(&used).is_some(), "{used} missing: {text}");
    }
    assert_eq!(
        scrape.get(r#"provider_held_seconds{provider="slack"}"#),
        Some(0.0),
        "only the provider that answered 429 is held"
    );
}
