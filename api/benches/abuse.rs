//! The abuse benchmark: the api under slow, greedy and abandoned clients,
//! and under a friendly mixed load, with its memory watched throughout.
//!
//! Run through `scripts/bench-abuse`, which starts a release api and worker
//! on throwaway Postgres and Redis and passes `API_URL` and `API_PID`.
//! Peak RSS per scenario comes from the api's `VmHWM`, reset before each
//! scenario through `/proc/<pid>/clear_refs`.

#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::images::{jpeg, noise, photo};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

#[tokio::main]
async fn main() {
    let base = std::env::var("API_URL").expect("API_URL: the api's base URL");
    let pid: u32 = std::env::var("API_PID")
        .expect("API_PID")
        .parse()
        .expect("a pid");
    let mixed_secs: u64 = std::env::var("MIXED_SECS").map_or(120, |v| v.parse().expect("seconds"));
    let api = Api { base, pid };

    println!("## api under abuse\n");
    println!("api RSS at start: {:.0} MB\n", api.rss_mb());

    let cut_after = trickle_cutoff(&api).await;
    println!(
        "header-trickling client cut off after {:.1} s\n",
        cut_after.as_secs_f64()
    );

    api.reset_peak();
    let health = healthz_under_slow_clients(&api, 200).await;
    println!("/healthz with 200 slow clients connected: {health}");
    println!("  api peak RSS {:.0} MB\n", api.peak_mb());

    for connections in [32, 256] {
        api.reset_peak();
        let signups = signups(&api, connections, Duration::from_secs(20)).await;
        println!("signup at {connections} connections for 20 s: {signups}");
        println!("  api peak RSS {:.0} MB\n", api.peak_mb());
    }

    let big = jpeg(2600, 2000, &noise(2600, 2000));
    println!("upload file: {:.1} MB JPEG", big.len() as f64 / 1e6);
    api.reset_peak();
    let burst = upload_burst(&api, &big, 60).await;
    println!("burst of 60 concurrent uploads from one account: {burst:?}");
    println!("  api peak RSS {:.0} MB\n", api.peak_mb());

    api.reset_peak();
    let stalled = stalled_uploads(&api, &big, 100).await;
    println!("100 uploads stalled halfway (100 accounts): {stalled:?}");
    println!("  api peak RSS {:.0} MB\n", api.peak_mb());

    api.reset_peak();
    let mixed = mixed_load(&api, Duration::from_secs(mixed_secs)).await;
    println!(
        "friendly mixed load for {mixed_secs} s (2 signup loops, 1 upload/s, 8 pollers): {mixed}"
    );
    println!("  api peak RSS {:.0} MB", api.peak_mb());
}

#[derive(Clone)]
struct Api {
    base: String,
    pid: u32,
}

impl Api {
    fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    fn rss_mb(&self) -> f64 {
        testkit::process_status_kb(&self.pid.to_string(), "VmRSS:") / 1024.0
    }

    fn peak_mb(&self) -> f64 {
        testkit::process_status_kb(&self.pid.to_string(), "VmHWM:") / 1024.0
    }

    /// Starts a new peak measurement (Linux: writing 5 resets `VmHWM`).
    fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5");
    }

    fn client() -> reqwest::Client {
        platform::http::builder()
            .unwrap()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// Signs a new account up: its token, or the outcome (a status, or
    /// `dropped` when no answer came).
    async fn sign_up(&self, client: &reqwest::Client, kind: &str) -> Result<String, String> {
        let response = client
            .post(format!("{}/api/signup", self.base))
            .json(&json!({ "email": unique_email(kind), "password": "correct horse battery", "name": "Bench" }))
            .send()
            .await
            .map_err(|_| "dropped".to_owned())?;
        let status = response.status().as_u16();
        if status != 201 {
            return Err(status.to_string());
        }
        let body: Value = response.json().await.map_err(|_| "dropped".to_owned())?;
        Ok(body["token"].as_str().unwrap().to_owned())
    }

    /// A new account's token, retrying while the api is overloaded.
    async fn token(&self, kind: &str) -> String {
        let client = Self::client();
        loop {
            match self.sign_up(&client, kind).await {
                Ok(token) => return token,
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

/// An address no other signup of this run has used.
fn unique_email(kind: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{kind}-{}-{n}@example.com", std::process::id())
}

/// How many times each outcome came up.
fn tally(outcomes: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for outcome in outcomes {
        *counts.entry(outcome).or_default() += 1;
    }
    counts
}

/// Runs `request` again and again until `until`, `pause` apart, timing each.
async fn repeat_until<F: Future<Output = String>>(
    until: Instant,
    pause: Duration,
    mut request: impl FnMut() -> F,
) -> Stats {
    let mut stats = Stats::default();
    while Instant::now() < until {
        let started = Instant::now();
        let outcome = request().await;
        stats.record(started.elapsed(), outcome);
        // Even a zero sleep waits for the next timer tick (~1 ms).
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    stats
}

/// Waits for every task and adds their stats up.
async fn merged(tasks: Vec<tokio::task::JoinHandle<Stats>>) -> Stats {
    let mut total = Stats::default();
    for task in futures::future::join_all(tasks).await {
        total.merge(task.unwrap());
    }
    total
}

/// Latencies and outcomes of a run.
#[derive(Default)]
struct Stats {
    latencies: Vec<Duration>,
    outcomes: BTreeMap<String, usize>,
}

impl Stats {
    fn record(&mut self, took: Duration, outcome: impl ToString) {
        self.latencies.push(took);
        *self.outcomes.entry(outcome.to_string()).or_default() += 1;
    }

    fn merge(&mut self, other: Stats) {
        self.latencies.extend(other.latencies);
        for (outcome, n) in other.outcomes {
            *self.outcomes.entry(outcome).or_default() += n;
        }
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, outcomes {:?}",
            self.latencies.len(),
            self.percentile(0.5),
            self.percentile(0.99),
            self.percentile(1.0),
            self.outcomes
        )
    }
}

/// Sends a request head one byte every 500 ms; returns when the api cut it off.
async fn trickle_cutoff(api: &Api) -> Duration {
    let started = Instant::now();
    let stream = TcpStream::connect(api.address()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let trickle = async {
        let head = b"GET /healthz HTTP/1.1\r\nhost: bench\r\nx-slow: ";
        for byte in head.iter().chain(std::iter::repeat(&b'a')) {
            if write.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let closed = async {
        let mut buf = [0_u8; 256];
        while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    tokio::select! {
        () = trickle => {},
        () = closed => {},
    }
    started.elapsed()
}

/// `/healthz` latency over one keep-alive connection while `slow` clients
/// hold connections with half-sent heads.
async fn healthz_under_slow_clients(api: &Api, slow: usize) -> Stats {
    let mut held = Vec::new();
    for _ in 0..slow {
        let mut stream = TcpStream::connect(api.address()).await.unwrap();
        stream
            .write_all(b"POST /api/signup HTTP/1.1\r\nhost: bench\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    let client = Api::client();
    let until = Instant::now() + Duration::from_secs(5);
    let stats = repeat_until(until, Duration::ZERO, || {
        let health = client.get(format!("{}/healthz", api.base)).send();
        async move {
            match health.await {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "connection error".into(),
            }
        }
    })
    .await;
    drop(held);
    stats
}

/// Signups from `connections` clients, each on its own connection, for `duration`.
async fn signups(api: &Api, connections: usize, duration: Duration) -> Stats {
    let until = Instant::now() + duration;
    let tasks = (0..connections)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move {
                let client = Api::client();
                repeat_until(until, Duration::ZERO, || {
                    let (api, client) = (api.clone(), client.clone());
                    async move {
                        match api.sign_up(&client, "signup").await {
                            Ok(_) => "201".to_owned(),
                            Err(outcome) => outcome,
                        }
                    }
                })
                .await
            })
        })
        .collect();
    merged(tasks).await
}

async fn upload(api: &Api, client: &reqwest::Client, token: &str, file: &[u8]) -> String {
    let (content_type, body) = testkit::multipart("photo", file);
    match client
        .post(format!("{}/api/photos", api.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
    {
        Ok(response) => response.status().as_u16().to_string(),
        Err(_) => "dropped".into(),
    }
}

/// `count` uploads of `file` at once from one account: outcome counts.
async fn upload_burst(api: &Api, file: &[u8], count: usize) -> BTreeMap<String, usize> {
    let token = api.token("burst").await;
    let answers = futures::future::join_all((0..count).map(|_| async {
        let client = Api::client();
        upload(api, &client, &token, file).await
    }))
    .await;
    tally(answers)
}

/// `count` accounts each start an upload, send half of it and stop.
async fn stalled_uploads(api: &Api, file: &[u8], count: usize) -> BTreeMap<String, usize> {
    let mut tokens = Vec::new();
    for _ in 0..count {
        tokens.push(api.token("stall").await);
    }
    let (content_type, body) = testkit::multipart("photo", file);
    let half = body.len() / 2;
    let answers = futures::future::join_all(tokens.iter().map(|token| {
        let head = format!(
            "POST /api/photos HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer {token}\r\n\
             content-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let body = &body[..half];
        async move {
            let Ok(mut stream) = TcpStream::connect(api.address()).await else {
                return "connect failed".to_owned();
            };
            if stream.write_all(head.as_bytes()).await.is_err()
                || stream.write_all(body).await.is_err()
            {
                return "dropped while sending".to_owned();
            }
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer))
                .await;
            let text = String::from_utf8_lossy(&answer);
            text.split(' ')
                .nth(1)
                .map_or_else(|| "closed without answer".to_owned(), str::to_owned)
        }
    }))
    .await;
    tally(answers)
}

/// Signups, uploads and polling together; reports requests and the api's
/// RSS over time.
async fn mixed_load(api: &Api, duration: Duration) -> String {
    let until = Instant::now() + duration;
    let small = jpeg(1200, 900, &photo(1200, 900));
    let poller_token = api.token("poller").await;
    let (content_type, body) = testkit::multipart("photo", &small);
    let answer: Value = Api::client()
        .post(format!("{}/api/photos", api.base))
        .bearer_auth(&poller_token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let poll_job = answer["job"]["id"].as_str().unwrap().to_owned();

    let mut tasks = Vec::new();
    for _ in 0..2 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let client = Api::client();
            repeat_until(until, Duration::from_millis(100), || {
                let (api, client) = (api.clone(), client.clone());
                async move {
                    match api.sign_up(&client, "mix").await {
                        Ok(_) => "signup 201".to_owned(),
                        Err(outcome) => format!("signup {outcome}"),
                    }
                }
            })
            .await
        }));
    }
    {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let client = Api::client();
            let mut stats = Stats::default();
            while Instant::now() < until {
                // A fresh account every 15 uploads (one a second) keeps
                // under the hourly limit.
                let token = api.token("mixup").await;
                let account_until = until.min(Instant::now() + Duration::from_secs(15));
                let account = repeat_until(account_until, Duration::from_secs(1), || {
                    let (api, client, token, small) =
                        (api.clone(), client.clone(), token.clone(), small.clone());
                    async move { format!("upload {}", upload(&api, &client, &token, &small).await) }
                })
                .await;
                stats.merge(account);
            }
            stats
        }));
    }
    for _ in 0..8 {
        let (base, token, job) = (api.base.clone(), poller_token.clone(), poll_job.clone());
        tasks.push(tokio::spawn(async move {
            let client = Api::client();
            repeat_until(until, Duration::from_millis(20), || {
                let poll = client
                    .get(format!("{base}/api/jobs/{job}"))
                    .bearer_auth(&token)
                    .send();
                async move {
                    match poll.await {
                        Ok(response) => format!("poll {}", response.status().as_u16()),
                        Err(_) => "poll dropped".to_owned(),
                    }
                }
            })
            .await
        }));
    }
    let mut samples = Vec::new();
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push(api.rss_mb());
    }
    let total = merged(tasks).await;
    let second_half = &samples[samples.len() / 2..];
    let steady = second_half.iter().sum::<f64>() / second_half.len().max(1) as f64;
    let max = samples.iter().copied().fold(0.0, f64::max);
    format!(
        "{} requests, outcomes {:?}; api RSS steady {steady:.0} MB (mean of the second half), max {max:.0} MB",
        total.latencies.len(),
        total.outcomes
    )
}
