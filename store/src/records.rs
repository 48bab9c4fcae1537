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
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use catalogue::QueueName;

mod read;

pub use read::{
    Due, Finished, count_recent, due_again, due_pending, finished_within, open_of_user,
    outbox_backlog, running_of_user,
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

/// What [`start`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The attempt owns the record now; the job came from `Origin`.
    Run(Run, Origin),
    /// The record says the job is done: this is a duplicate delivery.
    AlreadyCompleted,
    /// No record (a job another producer added, or one whose user was
    /// deleted): the job runs unrecorded.
    Unrecorded,
}

/// A record about to be written by [`insert`].
#[derive(Debug, Clone, Copy)]
pub struct NewRecord<'a> {
    /// Its id, also the BullMQ job id.
    pub job_id: Uuid,
    /// The user who polls it; `None` for the system's own jobs (a Stripe
    /// event).
    pub owner: Option<Uuid>,
    /// Its queue.
    pub queue: QueueName,
    /// The job data.
    pub payload: &'a serde_json::Value,
    /// The tries BullMQ will give it.
    pub max_attempts: u32,
    /// Due this long after the commit, rather than at once.
    pub delay: Option<std::time::Duration>,
}

/// Writes a new `pending` record inside the caller's transaction (the
/// transactional outbox: see the api's `outbox`).
pub async fn insert(
    conn: &mut PgConnection,
    record: NewRecord<'_>,
    origin: &Origin,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into jobs (job_id, user_id, queue, payload, max_attempts, request_id, trace_parent,
                           run_at)
         values ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))",
        record.job_id,
        record.owner,
        record.queue.as_str(),
        record.payload,
        to_i32(record.max_attempts),
        origin.request_id,
        origin.trace_parent,
        record.delay.map(|delay| delay.as_secs_f64()),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Jobs handed to Redis again (they were overdue, see [`due_again`]): the
/// next check of them waits another `OUTBOX_REDELIVER_AFTER_SECS`.
pub async fn redelivered<'c>(db: impl PgExecutor<'c>, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update jobs set enqueued_at = now() where job_id = any($1) and state in ('waiting', 'delayed')",
        ids,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The jobs are in Redis: `pending` → `waiting` (or `delayed` until their
/// due time), unless a worker already moved them further.
pub async fn enqueued<'c>(db: impl PgExecutor<'c>, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update jobs
         set state = case when run_at > now() then 'delayed' else 'waiting' end,
             enqueued_at = now(), updated_at = now()
         where job_id = any($1) and state = 'pending'",
        ids,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Fails a record no attempt owns, if it is still in state `from`: a
/// `pending` one the relay cannot deliver (an unknown queue: only a
/// hand-edited or future-version row), or an `active` one BullMQ failed
/// without our handler (its workers kept dying mid-job; attempts our handler
/// made were recorded when they failed, so only a record still `active` is
/// stale). Returns whether it was.
pub async fn fail_unowned<'c>(
    db: impl PgExecutor<'c>,
    job_id: Uuid,
    from: JobState,
    failure: Failure<'_>,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        "update jobs set state = 'failed', error_code = $3, error = $4, error_detail = $5,
                finished_at = now(), updated_at = now()
         where job_id = $1 and state = $2",
        job_id,
        from as JobState,
        failure.public.code,
        failure.public.message,
        failure.detail,
    )
    .execute(db)
    .await?;
    Ok(updated.rows_affected() > 0)
}

/// An attempt starts and takes the record over from any earlier one. A
/// `completed` record is never reopened. The last attempt's error stays
/// until this one ends, so a client polling a retry sees why it is one.
pub async fn start(pool: &PgPool, job_id: Uuid) -> Result<Started, sqlx::Error> {
    let run = Uuid::now_v7();
    let started = sqlx::query_as!(
        Origin,
        "update jobs set state = 'active', run_id = $2, finished_at = null,
                started_at = coalesce(started_at, now()), updated_at = now()
         where job_id = $1 and state <> 'completed'
         returning request_id, trace_parent",
        job_id,
        run,
    )
    .fetch_optional(pool)
    .await?;
    if let Some(origin) = started {
        return Ok(Started::Run(Run { job_id, id: run }, origin));
    }
    // Rare: only a duplicate delivery or a job without a record gets here.
    let exists = sqlx::query_scalar!(
        r#"select exists (select 1 from jobs where job_id = $1) as "exists!""#,
        job_id,
    )
    .fetch_one(pool)
    .await?;
    Ok(if exists {
        Started::AlreadyCompleted
    } else {
        Started::Unrecorded
    })
}

/// The attempt is `percent` done, for clients polling a long job.
pub async fn progress(pool: &PgPool, run: Run, percent: i16) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update jobs set progress = $3, updated_at = now()
         where job_id = $1 and run_id = $2 and state = 'active'",
        run.job_id,
        run.id,
        percent,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The attempt succeeded; it was the job's `attempts`th. Returns whether the
/// record took it (not if a newer attempt owns it).
pub async fn completed(
    pool: &PgPool,
    run: Run,
    attempts: u32,
    result: &serde_json::Value,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        "update jobs set state = 'completed', attempts_made = greatest(attempts_made, $3),
                progress = 100, result = $4, error = null, error_code = null,
                error_detail = null, finished_at = now(), updated_at = now()
         where job_id = $1 and run_id = $2 and state = 'active'",
        run.job_id,
        run.id,
        to_i32(attempts),
        result,
    )
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() > 0)
}

/// The attempt failed: BullMQ retries it after a backoff (`retrying`, the
/// record becomes `delayed`) or has given up (`failed`). Returns whether the
/// record took it.
pub async fn attempt_failed(
    pool: &PgPool,
    run: Run,
    attempts: u32,
    failure: Failure<'_>,
    retrying: bool,
) -> Result<bool, sqlx::Error> {
    let state = if retrying {
        JobState::Delayed
    } else {
        JobState::Failed
    };
    let updated = sqlx::query!(
        "update jobs set state = $3, attempts_made = greatest(attempts_made, $4),
                error_code = $5, error = $6, error_detail = $7, updated_at = now(),
                finished_at = case when $3 = 'failed' then now() end
         where job_id = $1 and run_id = $2 and state = 'active'",
        run.job_id,
        run.id,
        state as JobState,
        to_i32(attempts),
        failure.public.code,
        failure.public.message,
        failure.detail,
    )
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() > 0)
}

/// The attempt gave the job back without using an attempt (its queue is
/// paused: the provider asked us to slow down, or is misconfigured).
pub async fn requeued(pool: &PgPool, run: Run, failure: Failure<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update jobs set state = 'waiting', error_code = $3, error = $4, error_detail = $5,
                updated_at = now()
         where job_id = $1 and run_id = $2 and state = 'active'",
        run.job_id,
        run.id,
        failure.public.code,
        failure.public.message,
        failure.detail,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// An operator moved the failed job back to its queue: the one way out of
/// `failed`.
pub async fn retried(pool: &PgPool, job_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update jobs set state = 'waiting', run_id = null, finished_at = null, updated_at = now()
         where job_id = $1 and state = 'failed'",
        job_id,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes finished records older than `retention` (scheduled
/// maintenance): a job still waiting or running is never pruned, however
/// old. Returns how many went.
pub async fn prune_finished(
    db: impl PgExecutor<'_>,
    retention: std::time::Duration,
) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query!(
        "delete from jobs
         where state in ('completed', 'failed')
           and finished_at < now() - make_interval(secs => $1)",
        retention.as_secs_f64(),
    )
    .execute(db)
    .await?;
    Ok(deleted.rows_affected())
}

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
