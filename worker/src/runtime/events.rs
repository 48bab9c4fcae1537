//! BullMQ's events for one queue, and which failures are recorded from them.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bullmq::worker::WorkerEvent;
use store::records;
use store::records::{Failure, PublicError};
use uuid::Uuid;

use super::attempt::Lane;
use crate::context::JobContext;
use crate::jobs::service;

/// The one rule for recording failures: an attempt that fails records its
/// own failure (when it still owns the record) and says so here; BullMQ
/// then announces every failure as an event, and the watcher records only
/// the ones no attempt reported, which BullMQ decided by itself (a job
/// that stalled more often than allowed).
#[derive(Debug, Default)]
pub(super) struct Reported(Mutex<HashSet<String>>);

impl Reported {
    /// The attempt at `job_id` failed and has recorded it.
    pub(super) fn attempt_failed(&self, job_id: &str) {
        self.set().insert(job_id.to_owned());
    }

    /// Whether the failure BullMQ announces for `job_id` is still to be
    /// recorded; each report answers one announcement.
    pub(super) fn needs_recording(&self, job_id: &str) -> bool {
        !self.set().remove(job_id)
    }

    fn set(&self) -> MutexGuard<'_, HashSet<String>> {
        // A panic while holding it cannot leave the set inconsistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Drains the worker's event channel (it is unbounded: left unread, it would
/// grow with every job), surfaces what the runtime does not log itself, and
/// records failures BullMQ decides without running our handler.
pub(super) async fn watch_events(
    lane: Arc<Lane>,
    worker: Arc<bullmq::Worker>,
    ctx: Arc<JobContext>,
) {
    let pool = &ctx.pool;
    let queue = lane.queue;
    while let Some(event) = worker.next_event().await {
        match event {
            WorkerEvent::Error(error) => tracing::warn!(%queue, %error, "queue error"),
            WorkerEvent::Stalled { job_id } => {
                tracing::warn!(%queue, job.id = %job_id, "job stalled; it will run again");
            }
            WorkerEvent::Failed { job_id, error } => {
                if !lane.reported.needs_recording(&job_id) {
                    continue;
                }
                let Ok(id) = Uuid::parse_str(&job_id) else {
                    continue;
                };
                let public = PublicError {
                    code: "interrupted",
                    message: format!(
                        "{} was interrupted too often and has stopped; our team has been told.",
                        service(queue)
                    ),
                };
                let failure = Failure {
                    public: &public,
                    detail: &error,
                };
                match records::fail_unfinished(pool, id, failure).await {
                    Ok(true) => {
                        ctx.changed(id);
                        tracing::error!(%queue, job.id = %job_id, %error, "job failed")
                    }
                    Ok(false) => {} // a worker's handler already recorded it
                    Err(db) => {
                        tracing::warn!(%queue, job.id = %job_id, error = %db, "could not record the failure")
                    }
                }
            }
            WorkerEvent::Closed => break,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_no_attempt_reported_are_recorded_from_events() {
        let reported = Reported::default();
        reported.attempt_failed("a");

        assert!(!reported.needs_recording("a"), "the attempt recorded it");
        assert!(reported.needs_recording("b"), "BullMQ decided it alone");
        assert!(
            reported.needs_recording("a"),
            "a report answers one announcement: a later failure of the same job \
             that no attempt reported is recorded"
        );
    }
}
