//! Stripe events taken in: each verified event is stored with its
//! `stripe-event` job, and the delivery answered once both are committed.
//!
//! Deliveries that arrive together are committed together (a group commit,
//! [`GroupOfWork`]): one task takes every event waiting when it is free, up
//! to [`GROUP_MAX`], stores them and their jobs in one transaction, answers
//! each delivery after the commit, and hands the jobs to Redis after that.
//! No delivery waits for a group to fill: alone, an event is a group of
//! one; at 32 deliveries at once, the commit, the round trips and the pool
//! connection are shared, which is where each request's time went when it
//! had its own transaction (they queued for 10 pooled connections and a WAL
//! flush each). One delivery's answer still means its event is durable.
//!
//! Duplicates: the event id is the key of its row, so a redelivery (in an
//! earlier group or the same one) stores nothing and records no job.

use std::sync::{Arc, OnceLock};

use catalogue::StripeEvent;
use queue::JobQueues;
use queue::feed::Publisher;
use sqlx::PgPool;
use store::records::Origin;
use store::stripe_events::{self, StoredEvent};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::outbox::{GroupJob, GroupOfWork};

/// The most deliveries one transaction takes.
pub const GROUP_MAX: usize = 128;

/// Deliveries waiting for the intake task, at most; past it a request
/// waits to be queued (the route's time limit still holds).
const WAITING_MAX: usize = 1024;

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// Stored, durable, with the job that applies it.
    Recorded(Uuid),
    /// Received before: nothing was stored.
    Duplicate,
}

/// Why a delivery could not be stored (nothing of it was).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Postgres failed the group's transaction (logged once for the group).
    #[error("the events could not be stored: {0}")]
    Database(Arc<sqlx::Error>),
    /// The intake task is gone (the api is stopping).
    #[error("the intake is shutting down")]
    Stopped,
}

/// One delivery handed to the intake task.
struct Delivery {
    event: StoredEvent,
    origin: Origin,
    answer: oneshot::Sender<Result<Intake, IntakeError>>,
}

/// The api's intake of Stripe events: a queue to its task, which starts on
/// the first delivery (it needs the runtime) and ends with the api's state.
pub struct StripeIntake {
    pool: PgPool,
    queues: Arc<JobQueues>,
    feed: Publisher,
    deliveries: OnceLock<mpsc::Sender<Delivery>>,
}

impl StripeIntake {
    /// The intake storing into `pool`, handing jobs to `queues` and their
    /// changes to `feed`.
    pub fn new(pool: PgPool, queues: Arc<JobQueues>, feed: Publisher) -> Self {
        Self {
            pool,
            queues,
            feed,
            deliveries: OnceLock::new(),
        }
    }

    /// Stores `event` (verified by the caller) with its job, for the
    /// request `origin`; returns once it is durable, or known already.
    pub async fn take(&self, event: StoredEvent, origin: Origin) -> Result<Intake, IntakeError> {
        let deliveries = self.deliveries.get_or_init(|| {
            let (send, receive) = mpsc::channel(WAITING_MAX);
            let (pool, queues, feed) = (self.pool.clone(), self.queues.clone(), self.feed.clone());
            tokio::spawn(run(pool, queues, feed, receive));
            send
        });
        let (answer, answered) = oneshot::channel();
        deliveries
            .send(Delivery {
                event,
                origin,
                answer,
            })
            .await
            .map_err(|_| IntakeError::Stopped)?;
        answered.await.map_err(|_| IntakeError::Stopped)?
    }
}

/// The intake task: a group at a time, of every delivery waiting, until
/// the api's state (and with it the sender) is dropped.
async fn run(
    pool: PgPool,
    queues: Arc<JobQueues>,
    feed: Publisher,
    mut deliveries: mpsc::Receiver<Delivery>,
) {
    let mut group = Vec::with_capacity(GROUP_MAX);
    while deliveries.recv_many(&mut group, GROUP_MAX).await > 0 {
        match store_group(&pool, &queues, &feed, &group).await {
            Ok(stored) => answer(group.drain(..), stored.into_iter().map(Ok)),
            // One event Postgres refuses must not fail the others taken
            // with it (Stripe would retry them all, and the bad one would
            // fail each group it lands in): each is tried alone.
            Err(_) if group.len() > 1 => {
                for delivery in group.drain(..) {
                    let alone = std::slice::from_ref(&delivery);
                    let outcome = store_group(&pool, &queues, &feed, alone).await;
                    let outcome = outcome.map(|mut stored| stored.remove(0));
                    answer(
                        std::iter::once(delivery),
                        std::iter::once(outcome.map_err(refused)),
                    );
                }
            }
            Err(error) => {
                let error = refused(error);
                answer(group.drain(..), std::iter::once(Err(error)));
            }
        }
    }
}

/// Logs a failed transaction once: its deliveries are answered 5xx and
/// Stripe retries them.
fn refused(error: sqlx::Error) -> IntakeError {
    tracing::error!(
        error = &error as &dyn std::error::Error,
        "stripe event not stored; the delivery is answered 5xx and Stripe retries it"
    );
    IntakeError::Database(Arc::new(error))
}

/// Sends each delivery its outcome, in order.
fn answer(
    deliveries: impl Iterator<Item = Delivery>,
    outcomes: impl Iterator<Item = Result<Intake, IntakeError>>,
) {
    for (delivery, outcome) in deliveries.zip(outcomes) {
        let _ = delivery.answer.send(outcome);
    }
}

/// Stores `group`'s events and the jobs of those not received before in
/// one transaction; returns each delivery's outcome, in order, once the
/// transaction is committed.
async fn store_group(
    pool: &PgPool,
    queues: &Arc<JobQueues>,
    feed: &Publisher,
    group: &[Delivery],
) -> Result<Vec<Intake>, sqlx::Error> {
    let mut work = GroupOfWork::begin(pool, queues, feed).await?;
    let ids: Vec<Uuid> = group.iter().map(|_| GroupOfWork::new_job_id()).collect();
    let mut events: Vec<(&StoredEvent, Uuid)> = group
        .iter()
        .zip(&ids)
        .map(|(delivery, id)| (&delivery.event, *id))
        .collect();
    // In one order on every instance: two groups holding the same
    // redelivered events never wait on each other's rows.
    events.sort_unstable_by(|a, b| a.0.event_id.cmp(&b.0.event_id));
    // The events first: a job is recorded only for an event stored now.
    let stored = stripe_events::record_all(work.conn(), &events).await?;
    let jobs: Vec<GroupJob<StripeEvent>> = group
        .iter()
        .zip(&ids)
        .filter(|(_, id)| stored.contains(id))
        .map(|(delivery, id)| GroupJob {
            id: *id,
            job: StripeEvent {
                event_id: delivery.event.event_id.clone(),
            },
            origin: delivery.origin.clone(),
        })
        .collect();
    work.record_all(&jobs).await?;
    work.commit_and_hand_over_later().await?;
    Ok(ids
        .into_iter()
        .map(|id| {
            if stored.contains(&id) {
                Intake::Recorded(id)
            } else {
                Intake::Duplicate
            }
        })
        .collect())
}
