//! The background worker: consumes the BullMQ queues and does the slow work
//! the API recorded.
//!
//! - [`runtime`]: one BullMQ worker per queue, job logging, graceful shutdown.
//! - [`jobs`]: one handler per queue (`jobs/welcome_email.rs`, …).
//! - [`email`]: templates and delivery (SMTP or the dev mailbox folder).
//! - [`pdf`]: documents (the onboarding guide), laid out and written with krilla.
//! - [`http`]: `/healthz` and `/metrics` on `WORKER_HTTP_PORT`.
//! - [`error`]: permanent, transient and configuration failures, and what
//!   the end user is told of each.
//! - [`context`]: what handlers share.
//! - [`budget`]: the providers' rate budgets, shared by every queue and worker.
//! - [`queue_options`]: BullMQ worker options per queue, and our jittered backoff.

pub mod budget;
pub mod context;
pub mod email;
pub mod error;
pub mod http;
pub mod jobs;
pub mod pdf;
pub mod queue_options;
pub mod runtime;
