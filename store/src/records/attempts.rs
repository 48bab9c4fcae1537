//! An attempt's life on the record: started (and owned by its [`Run`]),
//! its progress, and how it ended; an operator's retry; and the records
//! whose attempts no worker owns any more. A batch's attempts start and
//! complete together, in one statement each ([`start_batch`],
//! [`completed_batch`]), under the same rules as one attempt's.

use std::collections::{HashMap, HashSet};

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::{Failure, JobState, Origin, Run, to_i32};

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

/// Fails a record no attempt owns, if it is still in state `from`: one the
/// relay cannot deliver (an unknown queue: only a hand-edited or
/// future-version row). Returns whether it was.
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

/// Fails a record BullMQ failed without our handler recording it: its
/// workers kept dying mid-job (the record `active`), or no attempt could
/// even record its start (Postgres down while Redis was up: the record
/// still `waiting` or `delayed`). Only a finished record is left alone, so
/// no job BullMQ gave up on stays open for ever. Returns whether it was.
pub async fn fail_unfinished<'c>(
    db: impl PgExecutor<'c>,
    job_id: Uuid,
    failure: Failure<'_>,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        "update jobs set state = 'failed', error_code = $2, error = $3, error_detail = $4,
                finished_at = now(), updated_at = now()
         where job_id = $1 and state not in ('completed', 'failed')",
        job_id,
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
                started_at = coalesce(started_at, now()), updated_at = now(),
                enqueued_at = coalesce(enqueued_at, now())
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

/// A batch's attempts start together, as [`start`] would start each, in one
/// statement: one run (the batch's) owns every record it takes. What each
/// found, in `job_ids`' order.
pub async fn start_batch(pool: &PgPool, job_ids: &[Uuid]) -> Result<Vec<Started>, sqlx::Error> {
    let run = Uuid::now_v7();
    let rows = sqlx::query!(
        "update jobs set state = 'active', run_id = $2, finished_at = null,
                started_at = coalesce(started_at, now()), updated_at = now(),
                enqueued_at = coalesce(enqueued_at, now())
         where job_id = any($1) and state <> 'completed'
         returning job_id, request_id, trace_parent",
        job_ids,
        run,
    )
    .fetch_all(pool)
    .await?;
    let mut taken: HashMap<Uuid, Origin> = rows
        .into_iter()
        .map(|row| {
            let origin = Origin {
                request_id: row.request_id,
                trace_parent: row.trace_parent,
            };
            (row.job_id, origin)
        })
        .collect();
    let missing: Vec<Uuid> = job_ids
        .iter()
        .filter(|id| !taken.contains_key(id))
        .copied()
        .collect();
    // Rare: only duplicate deliveries and jobs without a record get here.
    let completed: HashSet<Uuid> = if missing.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_scalar!("select job_id from jobs where job_id = any($1)", &missing)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect()
    };
    Ok(job_ids
        .iter()
        .map(|&job_id| match taken.remove(&job_id) {
            Some(origin) => Started::Run(Run { job_id, id: run }, origin),
            None if completed.contains(&job_id) => Started::AlreadyCompleted,
            None => Started::Unrecorded,
        })
        .collect())
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

/// A batch's attempts succeeded, each record as [`completed`] would take
/// it, in one statement: each attempt's run, its number and its result.
/// Returns the jobs whose records took it (not those a newer attempt owns).
pub async fn completed_batch(
    pool: &PgPool,
    done: &[(Run, u32, &serde_json::Value)],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let job_ids: Vec<Uuid> = done.iter().map(|(run, ..)| run.job_id).collect();
    let run_ids: Vec<Uuid> = done.iter().map(|(run, ..)| run.id).collect();
    let attempts: Vec<i32> = done.iter().map(|&(_, n, _)| to_i32(n)).collect();
    let results: Vec<serde_json::Value> = done.iter().map(|&(.., r)| r.clone()).collect();
    sqlx::query_scalar!(
        "update jobs set state = 'completed',
                attempts_made = greatest(jobs.attempts_made, done.attempts),
                progress = 100, result = done.result, error = null, error_code = null,
                error_detail = null, finished_at = now(), updated_at = now()
         from unnest($1::uuid[], $2::uuid[], $3::int4[], $4::jsonb[])
              as done(job_id, run_id, attempts, result)
         where jobs.job_id = done.job_id and jobs.run_id = done.run_id
           and jobs.state = 'active'
         returning jobs.job_id",
        &job_ids,
        &run_ids,
        &attempts,
        &results,
    )
    .fetch_all(pool)
    .await
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
