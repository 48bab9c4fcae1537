//! The black-box test harness: real Postgres, real Redis, the real API on a
//! random port, a real worker, and an in-process SMTP sink.
//!
//! - [`otlp`]: an OTLP trace collector, to follow a trace across processes.
//! - [`postgres`]: a fresh database per test, on `TEST_DATABASE_URL`'s server
//!   or on a throwaway server this process starts itself.
//! - [`prometheus`]: a strict reader of `/metrics` scrapes.
//! - [`proxy`]: the shipped nginx config run in front of local processes,
//!   with a DNS responder naming them.
//! - [`redis`]: a `redis-server` per test, on a free port; [`redis_cluster`]:
//!   a Redis Cluster of such servers, for the tests that need one.
//! - [`s3`]: an S3-compatible server (s3rver) for the S3 storage path.
//! - [`smtp`]: an SMTP sink that records what it receives.
//! - [`sse`]: a reader of the live event stream, frame by frame.
//! - [`stripe`]: Stripe events, signed and delivered to the webhook.
//! - [`app`]: [`TestApp`](app::TestApp), wiring it all together; its
//!   settings are changed as typed values (`Options::configure`).
//! - [`contract`]: the api's OpenAPI document, against which [`Client`]
//!   (`TestApp::client`) checks every answer a test receives.
//! - [`process`]: the real binaries as processes ([`ApiProcess`],
//!   [`WorkerProcess`]), for tests that send real signals or read logs.
//! - [`browser`]: headless Chromium over WebDriver, for the web app.
//! - [`images`]: JPEG, PNG and WebP test images made on the spot.
//! - [`wait`]: awaiting a condition with a deadline, instead of sleeping.

pub mod app;
pub mod browser;
mod checked;
mod client;
pub mod contract;
pub mod images;
pub mod otlp;
pub mod postgres;
pub mod process;
pub mod prometheus;
pub mod proxy;
pub mod redis;
pub mod redis_cluster;
pub mod s3;
mod scratch;
pub mod smtp;
pub mod sse;
pub mod stripe;
pub mod wait;

use std::net::TcpListener;

pub use app::TestApp;
pub use checked::{Client, RequestBuilder};
pub use process::{ApiProcess, WorkerProcess};

/// How long a test waits for something the system does in the background
/// (a job to finish, a worker to start) before it fails.
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// The id of `queue`'s job in a signup answer (`{"jobs": [{"id", "name"}, …]}`).
pub fn job_id(signup: &serde_json::Value, queue: &str) -> String {
    signup["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|job| job["name"] == queue))
        .and_then(|job| job["id"].as_str())
        .unwrap_or_else(|| panic!("the signup enqueued no {queue} job: {signup}"))
        .to_owned()
}

/// This process's peak resident set (`VmHWM`), in MB; for benchmarks.
pub fn peak_rss_mb() -> f64 {
    process_status_kb("self", "VmHWM:") / 1024.0
}

/// A `kB` field of `/proc/<process>/status` (`process`: a pid or `self`),
/// e.g. `VmRSS:`; 0 when missing.
pub fn process_status_kb(process: &str, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

/// The CPU time (user and system) process `pid` has used so far, in
/// seconds: what a load test charges to each process.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 (11 and 12 after the name), in
    // clock ticks of 1/100 s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// A `multipart/form-data` body with `bytes` as the file field `field`:
/// the `Content-Type` to send and the body.
pub fn multipart(field: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "acme-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = format!(
        "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"{field}\"; filename=\"photo\"\r\n\
         content-type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// Every file below `dir` (empty folders do not count; a missing `dir` has none).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                files_under(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("the OS hands out an ephemeral port")
}
