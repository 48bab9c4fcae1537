//! Keeps the durable job record (the `jobs` row behind `GET /api/jobs/{id}`)
//! in step with what the worker does, so the status a client sees is never a lie.

use sqlx::PgPool;
use uuid::Uuid;

/// A worker has started an attempt at the job.
pub async fn started(pool: &PgPool, job_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update jobs set state = 'active', error = null,
                started_at = coalesce(started_at, now()), updated_at = now()
         where job_id = $1",
        job_id,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The job is `percent` done, for clients polling a long job. Best effort:
/// a lost update only makes the bar lag.
pub async fn progress(pool: &PgPool, job_id: Uuid, percent: i16) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update jobs set progress = $2, updated_at = now() where job_id = $1 and state = 'active'",
        job_id,
        percent,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The job succeeded after `attempts` attempts.
pub async fn completed(
    pool: &PgPool,
    job_id: Uuid,
    attempts: u32,
    result: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update jobs set state = 'completed', attempts_made = $2, progress = 100,
                result = $3, error = null, finished_at = now(), updated_at = now()
         where job_id = $1",
        job_id,
        attempts_i32(attempts),
        result,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// An attempt failed. `retrying` says whether BullMQ will try again after
/// its backoff (`delayed`) or has given up (`failed`).
pub async fn attempt_failed(
    pool: &PgPool,
    job_id: Uuid,
    attempts: u32,
    error: &str,
    retrying: bool,
) -> Result<(), sqlx::Error> {
    let state = if retrying { "delayed" } else { "failed" };
    sqlx::query!(
        "update jobs set state = $2, attempts_made = $3, error = $4, updated_at = now(),
                finished_at = case when $2 = 'failed' then now() end
         where job_id = $1",
        job_id,
        state,
        attempts_i32(attempts),
        error,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// An operator moved the failed job back to the queue (`worker failed retry`).
pub async fn retried(pool: &PgPool, job_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update jobs set state = 'waiting', finished_at = null, updated_at = now()
             where job_id = $1 and state = 'failed'",
        job_id,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// The job went back to wait because its queue is rate limited; it has not
/// used an attempt.
pub async fn requeued(pool: &PgPool, job_id: Uuid, reason: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update jobs set state = 'waiting', error = $2, updated_at = now() where job_id = $1",
        job_id,
        reason,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// BullMQ failed the job without running our handler (it stalled more often
/// than allowed: its workers kept dying mid-job). Attempts our handler made
/// were recorded when they failed, so only a record still `active` is stale.
pub async fn failed_by_queue(
    pool: &PgPool,
    job_id: Uuid,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        "update jobs set state = 'failed', error = $2, finished_at = now(), updated_at = now()
         where job_id = $1 and state = 'active'",
        job_id,
        reason,
    )
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() > 0)
}

fn attempts_i32(attempts: u32) -> i32 {
    i32::try_from(attempts).unwrap_or(i32::MAX)
}
