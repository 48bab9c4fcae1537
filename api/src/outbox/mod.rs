//! The transactional outbox: a job is first a row in `jobs`, written in the
//! same transaction as the change that causes it, and only then a BullMQ job.
//!
//! If Redis is down when the transaction commits, the row stays `pending`
//! and [`relay_pending`] delivers it later. Because the row id is the BullMQ
//! jobId, delivering a row twice is harmless.
//!
//! Requests record and hand over through a [`UnitOfWork`] only, so "record,
//! commit, hand over" is written once; the relay keeps its own path. Many
//! requests arriving together may share one transaction: a
//! [`GroupOfWork`] (the Stripe webhook's intake).

mod group;
mod work;

pub use group::{GroupJob, GroupOfWork};
pub use work::{Committed, UnitOfWork};

use std::time::Duration;

use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use catalogue::{Job, QueueName};
use queue::JobQueues;
use queue::feed::{Change, Publisher};
use store::records;
use store::records::{Failure, PublicError};

use crate::request_id::RequestId;
use crate::state::AppState;

/// A job row as written by [`record`], ready to be dispatched.
#[derive(Debug, Clone)]
struct JobRecord {
    /// Primary key of the row and BullMQ jobId.
    id: Uuid,
    /// The queue it goes to.
    queue: QueueName,
    /// The JSON job data.
    payload: serde_json::Value,
    /// How long after the commit the job is due; zero for at once.
    delay: Duration,
    /// The user who polls it, if any.
    owner: Option<Uuid>,
}

/// Where a job stands in the outbox right after dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DispatchState {
    /// Recorded in Postgres only; the relay will enqueue it.
    Pending,
    /// In Redis, waiting for a worker.
    Waiting,
    /// In Redis, due later (a scheduled job such as the follow-up email).
    Delayed,
}

/// A job an answer points the client to (signup, photo upload): where to
/// poll its status, and how far it got on the request path.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobRef {
    id: Uuid,
    name: &'static str,
    state: DispatchState,
    status_url: String,
}

impl JobRef {
    /// The job's id, for the request's log line.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The reference to `record`, which [`dispatch`] left in `state`.
    fn new(app: &AppState, record: &JobRecord, state: DispatchState) -> Self {
        Self {
            id: record.id,
            name: record.queue.as_str(),
            state,
            status_url: app.job_status_url(record.id),
        }
    }
}

/// Writes the durable record of `job` inside the caller's transaction, with
/// the attempts `queues` will give it, due `delay` after the commit (zero:
/// at once). The due time is in the record, so a delayed job outlives a
/// Redis that lost it: the relay hands it over again once it is overdue.
async fn record<J: Job>(
    conn: &mut PgConnection,
    queues: &JobQueues,
    request: &RequestId,
    job: &J,
    delay: Duration,
) -> Result<JobRecord, sqlx::Error> {
    let record = JobRecord {
        id: Uuid::now_v7(),
        queue: J::QUEUE,
        payload: serde_json::to_value(job).map_err(|e| sqlx::Error::Encode(Box::new(e)))?,
        delay,
        owner: job.owner(),
    };
    let max_attempts = queues.settings(J::QUEUE).attempts;
    records::insert(
        conn,
        records::NewRecord {
            job_id: record.id,
            owner: record.owner,
            queue: record.queue,
            payload: &record.payload,
            max_attempts,
            delay: (!delay.is_zero()).then_some(delay),
        },
        &records::Origin {
            request_id: Some(request.as_str().to_owned()),
            trace_parent: platform::telemetry::current_trace_parent(),
        },
    )
    .await?;
    Ok(record)
}

/// Enqueues freshly committed records, concurrently; what Redis does not
/// take is marked `pending` for the relay. Never fails: the records are
/// safe either way. Tells every api instance first that the owners have
/// new jobs (their job lists changed).
///
/// A record is written as the hand-over leaves it (`waiting`, `delayed`),
/// so one that works costs no write; only a failure is marked. If that
/// mark is lost too, the relay hands the record over
/// once its grace is past, as it does for one whose process died here.
async fn dispatch(
    pool: &PgPool,
    queues: &JobQueues,
    feed: &Publisher,
    batch: &[JobRecord],
) -> Vec<DispatchState> {
    let mut owners: Vec<Uuid> = batch.iter().filter_map(|record| record.owner).collect();
    owners.sort_unstable();
    owners.dedup();
    feed.publish_all(owners.into_iter().map(Change::NewJobsOf));
    let states = futures::future::join_all(batch.iter().map(|record| async move {
        match queues
            .enqueue(record.queue, record.id, &record.payload, record.delay)
            .await
        {
            Ok(()) if record.delay.is_zero() => DispatchState::Waiting,
            Ok(()) => DispatchState::Delayed,
            Err(error) => {
                tracing::warn!(
                    job.id = %record.id,
                    queue = %record.queue,
                    error = &error as &dyn std::error::Error,
                    "job left pending for the relay: could not enqueue"
                );
                DispatchState::Pending
            }
        }
    }))
    .await;
    let failed: Vec<Uuid> = batch
        .iter()
        .zip(&states)
        .filter(|(_, state)| **state == DispatchState::Pending)
        .map(|(record, _)| record.id)
        .collect();
    if !failed.is_empty() {
        // Before the answer, which says `pending` too: only Redis failing
        // gets here.
        match records::unenqueued(pool, &failed).await {
            Ok(marked) => feed.publish_all(marked.into_iter().map(Change::Job)),
            // The relay hands them over after its grace all the same; only
            // their status says `waiting` meanwhile.
            Err(error) => tracing::warn!(%error, "failed to mark jobs as not enqueued"),
        }
    }
    states
}

/// Enqueues rows that have been `pending` for longer than `grace` (the API
/// normally enqueues within milliseconds; the grace keeps the relay from
/// racing it), then hands Redis again the jobs it should hold and has not
/// run for `redeliver_after` (a Redis that lost its data, a delayed job
/// included). Returns how many were delivered.
///
/// Rows are claimed with `for update skip locked`, so any number of relays
/// may run side by side.
pub async fn relay_pending(
    pool: &PgPool,
    queues: &JobQueues,
    feed: &Publisher,
    grace: Duration,
    redeliver_after: Duration,
) -> Result<usize, RelayError> {
    let pending = relay_pass(pool, queues, feed, Pass::Pending { grace }).await?;
    let again = relay_pass(pool, queues, feed, Pass::Again { redeliver_after }).await?;
    Ok(pending + again)
}

/// What one pass of the relay hands to Redis.
#[derive(Debug, Clone, Copy)]
enum Pass {
    /// Rows `pending` for longer than `grace`.
    Pending { grace: Duration },
    /// Rows Redis should hold that have not run for `redeliver_after`.
    Again { redeliver_after: Duration },
}

/// Runs `pass` in batches, a transaction each, until a batch comes back
/// short; returns how many rows it handed over.
async fn relay_pass(
    pool: &PgPool,
    queues: &JobQueues,
    feed: &Publisher,
    pass: Pass,
) -> Result<usize, RelayError> {
    let mut delivered = 0;
    loop {
        let mut tx = pool.begin().await?;
        let due = match pass {
            Pass::Pending { grace } => records::due_pending(&mut tx, grace, BATCH).await?,
            Pass::Again { redeliver_after } => {
                records::due_again(&mut tx, redeliver_after, BATCH).await?
            }
        };
        let (ids, failed) = hand_over(&mut tx, queues, &due).await?;
        let changed = match pass {
            Pass::Pending { .. } => records::enqueued(&mut *tx, &ids).await?,
            Pass::Again { .. } => {
                // Only the hand-over's time changes: nothing a client sees.
                records::redelivered(&mut *tx, &ids).await?;
                Vec::new()
            }
        };
        tx.commit().await?;
        feed.publish_all(changed.into_iter().chain(failed).map(Change::Job));
        delivered += ids.len();
        if due.len() < BATCH_LEN {
            return Ok(delivered);
        }
    }
}

/// Rows per relay transaction.
const BATCH: i64 = 100;
const BATCH_LEN: usize = BATCH as usize;

/// Adds `due` to Redis, all at once (one round trip's wait per batch, not
/// one per job); returns the ids it added, and those it failed: a row
/// naming no queue we know is failed instead. If Redis fails any add, the batch is rolled back and
/// redone next time: the adds that did get through are then no-ops.
async fn hand_over(
    tx: &mut PgConnection,
    queues: &JobQueues,
    due: &[records::Due],
) -> Result<(Vec<Uuid>, Vec<Uuid>), RelayError> {
    let mut known = Vec::with_capacity(due.len());
    let mut failed = Vec::new();
    for row in due {
        match row.queue.parse::<QueueName>() {
            Ok(queue) => known.push((queue, row)),
            // Only a hand-edited or future-version row gets here; failing
            // it keeps it visible without blocking the rows behind it.
            Err(problem) => {
                tracing::error!(job.id = %row.job_id, %problem, "cannot relay job");
                let public = PublicError {
                    code: "internal",
                    message: "This step could not be started.".to_owned(),
                };
                let failure = Failure {
                    public: &public,
                    detail: &problem,
                };
                if records::fail_unowned(&mut *tx, row.job_id, row.state, failure).await? {
                    failed.push(row.job_id);
                }
            }
        }
    }
    let added = futures::future::join_all(
        known
            .iter()
            .map(|(queue, row)| queues.enqueue(*queue, row.job_id, &row.payload, row.delay)),
    )
    .await;
    added.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok((known.iter().map(|(_, row)| row.job_id).collect(), failed))
}

/// Runs [`relay_pending`] every `interval`, for ever; the owner aborts the
/// task to stop it (a pass cut short rolls back and is redone next time).
pub async fn run_relay(
    pool: PgPool,
    queues: std::sync::Arc<JobQueues>,
    feed: Publisher,
    interval: Duration,
    redeliver_after: Duration,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match relay_pending(&pool, &queues, &feed, interval, redeliver_after).await {
            Ok(0) => {}
            Ok(delivered) => tracing::info!(delivered, "relayed pending jobs to redis"),
            Err(error) => tracing::warn!(
                error = &error as &dyn std::error::Error,
                "outbox relay failed; retrying next tick"
            ),
        }
    }
}

/// Why a relay pass stopped early. Rows it did not deliver stay pending.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Postgres failed.
    #[error("postgres failed during relay")]
    Database(#[from] sqlx::Error),
    /// Redis failed or did not answer.
    #[error("could not enqueue")]
    Queue(#[from] queue::QueueError),
}
