//! What is read from the job records without changing them: per-account
//! counts, and the relay's scans (which lock the rows they return, in the
//! caller's transaction, so relays on many instances share the work).

use std::time::Duration;

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use catalogue::QueueName;

/// A record the relay hands to Redis.
#[derive(Debug, Clone)]
pub struct Due {
    /// The record, and BullMQ job id.
    pub job_id: Uuid,
    /// Its queue's name as stored.
    pub queue: String,
    /// The job data.
    pub payload: serde_json::Value,
    /// How long until it is due (zero once it is).
    pub delay: Duration,
}

/// Up to `limit` records `pending` for longer than `grace`, oldest first,
/// locked for the caller's transaction (`skip locked`: another relay takes
/// the next ones).
pub async fn due_pending(
    conn: &mut PgConnection,
    grace: Duration,
    limit: i64,
) -> Result<Vec<Due>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select job_id, queue, payload,
                  greatest(extract(epoch from run_at - now()), 0)::float8 as "delay_secs!"
           from jobs
           where state = 'pending' and created_at < now() - make_interval(secs => $1)
           order by created_at
           limit $2
           for update skip locked"#,
        grace.as_secs_f64(),
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Due {
            job_id: row.job_id,
            queue: row.queue,
            payload: row.payload,
            delay: Duration::from_secs_f64(row.delay_secs),
        })
        .collect())
}

/// Up to `limit` records Redis should hold but may have lost: `waiting` or
/// `delayed`, handed over (or due) longer than `after` ago, locked like
/// [`due_pending`]. Adding one again is harmless (BullMQ ignores a job id it
/// holds) and brings back one a Redis without persistence lost.
pub async fn due_again(
    conn: &mut PgConnection,
    after: Duration,
    limit: i64,
) -> Result<Vec<Due>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select job_id, queue, payload from jobs
           where state in ('waiting', 'delayed')
             and greatest(run_at, enqueued_at) < now() - make_interval(secs => $1)
           order by greatest(run_at, enqueued_at)
           limit $2
           for update skip locked"#,
        after.as_secs_f64(),
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Due {
            job_id: row.job_id,
            queue: row.queue,
            payload: row.payload,
            delay: Duration::ZERO,
        })
        .collect())
}

/// The ids of `user_id`'s jobs of `queue` that have not run yet (account
/// deletion takes a delayed one out of Redis).
pub async fn open_of_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    queue: QueueName,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "select job_id from jobs
         where user_id = $1 and queue = $2 and state in ('pending', 'waiting', 'delayed')",
        user_id,
        queue.as_str(),
    )
    .fetch_all(db)
    .await
}

/// How many jobs of `queue` whose payload contains `payload` (JSON
/// containment) `user_id` has had recorded within `within`: a per-account
/// limit on a kind of work, counted where the work is recorded.
pub async fn count_recent(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    queue: QueueName,
    payload: &serde_json::Value,
    within: Duration,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "count!" from jobs
           where user_id = $1 and queue = $2 and payload @> $3
             and created_at > now() - make_interval(secs => $4)"#,
        user_id,
        queue.as_str(),
        payload,
        within.as_secs_f64(),
    )
    .fetch_one(db)
    .await
}

/// How many of `user_id`'s jobs but `except` are running: account deletion
/// waits for them. One `active` for longer than `stale` is a dead worker's:
/// BullMQ runs it again, and it then finds the account gone.
pub async fn running_of_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    except: Uuid,
    stale: Duration,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select count(*) as "count!" from jobs where user_id = $1 and job_id <> $2
           and state = 'active' and updated_at > now() - make_interval(secs => $3)"#,
        user_id,
        except,
        stale.as_secs_f64(),
    )
    .fetch_one(db)
    .await
}

/// One queue's finished jobs within a window, for the failure alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The queue's name as stored.
    pub queue: String,
    /// Jobs that completed or failed for good in the window.
    pub finished: i64,
    /// Of those, the ones that failed for good (the dead letters).
    pub failed: i64,
}

/// Per queue, the jobs that finished within the last `window`, and how
/// many of them failed for good (the finished-at index answers it).
pub async fn finished_within(
    db: impl PgExecutor<'_>,
    window: Duration,
) -> Result<Vec<Finished>, sqlx::Error> {
    sqlx::query_as!(
        Finished,
        r#"select queue,
                  count(*) as "finished!",
                  count(*) filter (where state = 'failed') as "failed!"
           from jobs
           where state in ('completed', 'failed')
             and finished_at > now() - make_interval(secs => $1)
           group by queue
           order by queue"#,
        window.as_secs_f64(),
    )
    .fetch_all(db)
    .await
}

/// The outbox: records not handed to Redis yet, how many, and how long
/// the oldest has waited (the pending index answers both).
pub async fn outbox_backlog(
    db: impl PgExecutor<'_>,
) -> Result<(i64, Option<Duration>), sqlx::Error> {
    let row = sqlx::query!(
        r#"select count(*) as "pending!",
                  extract(epoch from now() - min(created_at))::float8 as oldest_secs
           from jobs where state = 'pending'"#,
    )
    .fetch_one(db)
    .await?;
    let oldest = row
        .oldest_secs
        .map(|secs| Duration::from_secs_f64(secs.max(0.0)));
    Ok((row.pending, oldest))
}
