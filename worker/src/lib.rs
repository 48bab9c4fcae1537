//! The background worker: consumes the BullMQ queues and does the slow work
//! the API recorded.
//!
//! - [`runtime`]: one BullMQ worker per queue, job logging, graceful shutdown.
//! - [`jobs`]: one handler per queue (`jobs/welcome_email.rs`, …).
//! - [`records`]: keeps the job records behind `GET /api/jobs/{id}` current.
//! - [`email`]: templates and delivery (SMTP or the dev mailbox folder).
//! - [`pdf`]: documents (the onboarding guide), laid out and written with krilla.
//! - [`error`]: permanent versus transient failures.
//! - [`dead_letters`]: listing and retrying failed jobs (`worker failed …`).
//! - [`context`]: what handlers share.

pub mod context;
pub mod dead_letters;
pub mod email;
pub mod error;
pub mod jobs;
pub mod pdf;
pub mod records;
pub mod runtime;
