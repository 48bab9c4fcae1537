//! The black-box test harness: real Postgres, real Redis, the real API on a
//! random port, a real worker, and an in-process SMTP sink.
//!
//! - [`postgres`]: a fresh database per test, on `TEST_DATABASE_URL`'s server
//!   or on a throwaway server this process starts itself.
//! - [`redis`]: a `redis-server` per test, on a free port.
//! - [`s3`]: an S3-compatible server (s3rver) for the S3 storage path.
//! - [`smtp`]: an SMTP sink that records what it receives.
//! - [`app`]: [`TestApp`](app::TestApp), wiring it all together, and
//!   [`WorkerProcess`](app::WorkerProcess) for tests that send real signals.
//! - [`images`]: JPEG, PNG and WebP test images made on the spot.
//! - [`wait`]: awaiting a condition with a deadline, instead of sleeping.

pub mod app;
pub mod images;
pub mod postgres;
pub mod redis;
pub mod s3;
mod scratch;
pub mod smtp;
pub mod wait;

use std::net::TcpListener;

pub use app::{ApiProcess, TestApp, WorkerProcess};

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
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status_kb(&status, "VmHWM:") / 1024.0
}

/// A `kB` field of a `/proc/<pid>/status` text; 0 when missing.
fn status_kb(status: &str, field: &str) -> f64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0)
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("the OS hands out an ephemeral port")
}
