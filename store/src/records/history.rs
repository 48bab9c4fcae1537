//! The records as history: one account's open and recent jobs, what
//! finished lately, and the old ones pruned.

use std::time::Duration;

use sqlx::PgExecutor;
use uuid::Uuid;

use catalogue::QueueName;

/// Deletes finished records older than `retention` (scheduled
/// maintenance): a job still waiting or running is never pruned, however
/// old. Returns how many went.
pub async fn prune_finished(
    db: impl PgExecutor<'_>,
    retention: Duration,
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
