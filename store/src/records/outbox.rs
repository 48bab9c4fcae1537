//! The producer's side of a record: written with the change that causes
//! its job, marked when its hand-over failed, and found again by the relay (whose scans
//! lock the rows they return, in the caller's transaction, so relays on
//! many instances share the work).

use std::time::Duration;

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use catalogue::QueueName;

use super::{JobState, Origin, to_i32};

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
    pub delay: Option<Duration>,
}

/// Writes a new record inside the caller's transaction (the transactional
/// outbox: see the api's `outbox`): `waiting`, or `delayed` when it is due
/// later, as the hand-over after the commit will make it, so a hand-over
/// that works costs no write. Until a worker starts it or the relay
/// confirms it, it is unconfirmed (`enqueued_at` null): one that failed is
/// marked [`unenqueued`], one whose hand-over never came (the process died
/// after the commit) is the relay's after its grace.
pub async fn insert(
    conn: &mut PgConnection,
    record: NewRecord<'_>,
    origin: &Origin,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into jobs (job_id, user_id, queue, payload, max_attempts, request_id, trace_parent,
                           run_at, state)
         values ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8),
                 case when $8 > 0 then 'delayed' else 'waiting' end)",
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

/// Writes many new records in one statement, inside the caller's
/// transaction, each as [`insert`] writes it: a group of requests committed
/// together (the webhook's intake) costs one round trip, not one per record.
pub async fn insert_all(
    conn: &mut PgConnection,
    records: &[(NewRecord<'_>, Origin)],
) -> Result<(), sqlx::Error> {
    if records.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(records.len());
    let mut owners = Vec::with_capacity(records.len());
    let mut queues = Vec::with_capacity(records.len());
    let mut payloads = Vec::with_capacity(records.len());
    let mut attempts = Vec::with_capacity(records.len());
    let mut request_ids = Vec::with_capacity(records.len());
    let mut trace_parents = Vec::with_capacity(records.len());
    // No delay is a null `run_at`, as [`insert`] writes it.
    let mut delays = Vec::with_capacity(records.len());
    for (record, origin) in records {
        ids.push(record.job_id);
        owners.push(record.owner);
        queues.push(record.queue.as_str().to_owned());
        payloads.push(record.payload.clone());
        attempts.push(to_i32(record.max_attempts));
        request_ids.push(origin.request_id.clone());
        trace_parents.push(origin.trace_parent.clone());
        delays.push(record.delay.map(|delay| delay.as_secs_f64()));
    }
    sqlx::query!(
        "insert into jobs (job_id, user_id, queue, payload, max_attempts, request_id, trace_parent,
                           run_at, state)
         select job_id, user_id, queue, payload, max_attempts, request_id, trace_parent,
                now() + make_interval(secs => delay),
                case when delay > 0 then 'delayed' else 'waiting' end
         from unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::int4[], $6::text[],
                     $7::text[], $8::float8[])
              as new (job_id, user_id, queue, payload, max_attempts, request_id, trace_parent,
                      delay)",
        &ids,
        &owners as &[Option<Uuid>],
        &queues,
        &payloads,
        &attempts,
        &request_ids as &[Option<String>],
        &trace_parents as &[Option<String>],
        &delays as &[Option<f64>],
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

/// The relay handed the jobs to Redis: unconfirmed records are confirmed,
/// and `pending` ones become `waiting` (or `delayed` until their due
/// time), unless a worker already moved them further. Returns the jobs
/// whose state changed (those that were `pending`, or whose due time
/// passed meanwhile).
pub async fn enqueued<'c>(db: impl PgExecutor<'c>, ids: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    let confirmed = sqlx::query!(
        r#"with unconfirmed as (
               select job_id, state from jobs
               where job_id = any($1) and enqueued_at is null
                 and state in ('pending', 'waiting', 'delayed')
               for update
           )
           update jobs
           set state = case when run_at > now() then 'delayed' else 'waiting' end,
               enqueued_at = now(), updated_at = now()
           from unconfirmed
           where jobs.job_id = unconfirmed.job_id
           returning jobs.job_id, jobs.state <> unconfirmed.state as "moved!""#,
        ids,
    )
    .fetch_all(db)
    .await?;
    // A confirmation alone changes nothing a client sees.
    Ok(confirmed
        .into_iter()
        .filter(|row| row.moved)
        .map(|row| row.job_id)
        .collect())
}

/// The hand-over after the commit failed: the records say `pending` (not
/// in Redis) until the relay delivers them, unless a worker started them
/// meanwhile (the add went through after all). Returns those marked.
pub async fn unenqueued<'c>(
    db: impl PgExecutor<'c>,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"update jobs set state = 'pending', updated_at = now()
           where job_id = any($1) and enqueued_at is null and state in ('waiting', 'delayed')
           returning job_id as "job_id!""#,
        ids,
    )
    .fetch_all(db)
    .await
}

/// A record the relay hands to Redis.
#[derive(Debug, Clone)]
pub struct Due {
    /// The record, and BullMQ job id.
    pub job_id: Uuid,
    /// Its queue's name as stored.
    pub queue: String,
    /// Its state as read.
    pub state: JobState,
    /// The job data.
    pub payload: serde_json::Value,
    /// How long until it is due (zero once it is).
    pub delay: Duration,
}

/// Up to `limit` records unconfirmed for longer than `grace` (`pending`,
/// or written `waiting`/`delayed` and neither started nor confirmed since:
/// see [`insert`]), oldest first, locked for the caller's transaction
/// (`skip locked`: another relay takes the next ones).
pub async fn due_pending(
    conn: &mut PgConnection,
    grace: Duration,
    limit: i64,
) -> Result<Vec<Due>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select job_id, queue, payload, state as "state: JobState",
                  greatest(extract(epoch from run_at - now()), 0)::float8 as "delay_secs!"
           from jobs
           where enqueued_at is null and state in ('pending', 'waiting', 'delayed')
             and created_at < now() - make_interval(secs => $1)
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
            state: row.state,
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
        r#"select job_id, queue, payload, state as "state: JobState" from jobs
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
            state: row.state,
            payload: row.payload,
            delay: Duration::ZERO,
        })
        .collect())
}

/// The outbox: records not known to be in Redis yet (unconfirmed), how
/// many, and how long the oldest has waited (the unconfirmed index
/// answers both). At a healthy pace they are the jobs of the last few
/// seconds; a Redis that refuses them makes the oldest grow.
pub async fn outbox_backlog(
    db: impl PgExecutor<'_>,
) -> Result<(i64, Option<Duration>), sqlx::Error> {
    let row = sqlx::query!(
        r#"select count(*) as "pending!",
                  extract(epoch from now() - min(created_at))::float8 as oldest_secs
           from jobs
           where enqueued_at is null and state in ('pending', 'waiting', 'delayed')"#,
    )
    .fetch_one(db)
    .await?;
    let oldest = row
        .oldest_secs
        .map(|secs| Duration::from_secs_f64(secs.max(0.0)));
    Ok((row.pending, oldest))
}
