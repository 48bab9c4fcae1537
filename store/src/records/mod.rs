//! Job records: the `jobs` row behind `GET /api/jobs/{id}`. This module is
//! the only writer of that table, and every write says in its SQL which
//! states it may leave, so a record only moves forward:
//!
//! ```text
//! pending → waiting → active ⇄ delayed/waiting → completed | failed
//! ```
//!
//! `completed` is final. `failed` is left only when an operator retries the
//! job (or BullMQ hands it out again, which only an operator's retry does).
//! An attempt owns the record from its start ([`Run`]): every later write of
//! that attempt names it, so a worker that lost its lock (a Redis blip longer
//! than the lock) cannot overwrite what the attempt after it recorded.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod attempts;
mod history;
mod outbox;

pub use attempts::{
    Started, attempt_failed, completed, completed_batch, fail_unfinished, fail_unowned, progress,
    requeued, retried, start, start_batch,
};
pub use history::{
    Finished, count_recent, finished_within, open_of_user, prune_finished, running_of_user,
};
pub use outbox::{
    Due, NewRecord, due_again, due_pending, enqueued, insert, insert_all, outbox_backlog,
    redelivered, unenqueued,
};

/// Where a job stands, as its record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum JobState {
    /// Recorded in Postgres only; the outbox relay will enqueue it.
    Pending,
    /// In Redis, waiting for a worker.
    Waiting,
    /// Waiting out a retry backoff.
    Delayed,
    /// A worker is running it.
    Active,
    /// Done; final.
    Completed,
    /// Given up on; left only by an operator's retry.
    Failed,
}

impl JobState {
    /// The name in the `state` column and in the api's answers.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Waiting => "waiting",
            JobState::Delayed => "delayed",
            JobState::Active => "active",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
        }
    }

    /// Whether the job will do nothing more on its own.
    pub const fn is_finished(self) -> bool {
        matches!(self, JobState::Completed | JobState::Failed)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a job failed, in words for the end user who polls it: never provider
/// text, URLs, SQL, file paths or key fragments. The full story is in
/// [`Failure::detail`], for logs and operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicError {
    /// Stable and machine-readable, e.g. `image_unreadable`.
    pub code: &'static str,
    /// One sentence for a person.
    pub message: String,
}

impl fmt::Display for PublicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A failure as recorded: the user's view and the operator's.
#[derive(Debug, Clone, Copy)]
pub struct Failure<'a> {
    /// What the end user sees.
    pub public: &'a PublicError,
    /// The internal error chain, for operators.
    pub detail: &'a str,
}

/// The right of one attempt to write its job's record, from [`start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The job (its record's id, and its BullMQ job id).
    pub job_id: Uuid,
    id: Uuid,
}

/// Where a job came from: the request that recorded it, for joining logs
/// and traces across the api and the worker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
    /// The W3C `traceparent` of the span that recorded the job, when traces
    /// are exported.
    pub trace_parent: Option<String>,
}

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
