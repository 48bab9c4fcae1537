//! What both binaries use, and only that: kept free of the worker's heavy
//! dependencies so the api stays small. What one binary alone needs lives
//! in that binary's crate.
//!
//! - [`config`]: the one typed [`Settings`](config::Settings), read from the environment.
//! - [`telemetry`]: tracing set-up (JSON in production, pretty in development).
//! - [`http`]: HTTP clients on our TLS stack (object storage, third-party APIs).
//! - [`dead_letters`]: failed jobs listed, retried and removed (the CLI and the dashboard).
//! - [`db`]: the Postgres pool and the embedded migrations.
//! - [`jobs`]: the job catalogue: one payload struct per queue, with its default options.
//! - [`metrics`]: the process's Prometheus recorder, rendered at `/metrics`.
//! - [`queue`]: the typed layer over BullMQ (`enqueue`, connection health).
//! - [`storage`]: files the jobs produce (local folder or object store), at deterministic keys.
//! - [`shutdown`]: the SIGINT/SIGTERM signal both binaries stop on.
//! - [`records`]: the job records (`jobs` table), whose states only move
//!   forward; the one module that writes them (the api's outbox inserts
//!   them, the worker moves them on).

pub mod config;
pub mod db;
pub mod dead_letters;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod queue;
pub mod records;
pub mod shutdown;
pub mod storage;
pub mod telemetry;

/// `duration` in whole milliseconds, saturating: the unit BullMQ and Redis
/// take.
pub fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
