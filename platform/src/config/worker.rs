//! The worker process.

use std::time::Duration;

use super::variables::{Parsed, Secs, Variable as _, variables};

/// The worker process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Port of the worker's `/healthz` and `/metrics`; `None` (`0`) serves
    /// neither (`WORKER_HTTP_PORT`, default 3001).
    pub http_port: Option<u16>,
    /// How long a stopping worker lets in-flight jobs finish (`SHUTDOWN_TIMEOUT_SECS`).
    pub shutdown_timeout: Duration,
}

variables! {
    WorkerSettings {
        http_port: Parsed("WORKER_HTTP_PORT", 3001).zero_is_off(),
        shutdown_timeout: Secs("SHUTDOWN_TIMEOUT_SECS", 30),
    }
}
