//! What a binary starts on: the pieces both the api and the worker run
//! before and around their own work. Nothing here knows a table or a queue
//! beyond the settings that name them.
//!
//! - [`config`]: the one typed [`Settings`](config::Settings), read from the environment.
//! - [`startup`]: `.env`, settings and telemetry, the same way in both binaries.
//! - [`server`]: the HTTP/1 connection loop, with header, idle and connection limits.
//! - [`shutdown`]: the SIGINT/SIGTERM signal both binaries stop on.
//! - [`health`]: the `healthcheck` command, a container's probe of its own process.
//! - [`telemetry`]: tracing set-up (JSON in production, pretty in development).
//! - [`metrics`]: the process's Prometheus recorder, rendered at `/metrics`.
//! - [`http`]: HTTP clients on our TLS stack (object storage, third-party APIs).
//! - [`slack`]: posts to Slack webhooks as plain text, user text made inert.

pub mod config;
pub mod health;
pub mod http;
pub mod metrics;
pub mod server;
pub mod shutdown;
pub mod slack;
pub mod startup;
pub mod telemetry;

/// `duration` in whole milliseconds, saturating: the unit BullMQ and Redis
/// take.
pub fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
