//! Runs one BullMQ worker per queue, keeps job records current, logs every
//! job once, and shuts down gracefully (the consumer side of the queue; the
//! producer side is `queue`).
//!
//! - `consume.rs`: [`run`]: a worker per queue, connecting until Redis
//!   answers, and the drain on shutdown.
//! - `attempt.rs`: one attempt at one job, as a pipeline of named steps:
//!   take the record, run with a deadline, then settle the outcome
//!   (completed, deferred by a provider, or failed).
//! - `batch.rs`: batched queues: the jobs a worker holds run as one, at
//!   most one run per interval across all workers, each job still settled
//!   (and recorded) as its own attempt.
//! - `events.rs`: BullMQ's events, and the one rule for which failures are
//!   recorded from them rather than by the attempt ([`Reported`](events::Reported)).

mod attempt;
mod batch;
mod consume;
mod events;

pub use consume::{run, run_with};
