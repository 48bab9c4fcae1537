//! The typed layer over BullMQ. Nothing else in the code base names a Redis
//! key or builds BullMQ options, so the engine could be swapped here alone.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use bullmq::options::RedisConnectionOptions;
use bullmq::redis_connection::RedisConnection;
use bullmq::types::{BackoffStrategy, KeepJobs, RemoveOnFinish};
use bullmq::{
    BackoffStrategyFn, JobOptions, Queue, QueueOptions, RateLimiterOptions, WorkerOptions,
};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::config::{QueueSettings, QueueTable, Settings};
use crate::jobs::QueueName;
use crate::millis;

/// Why a job could not be handed to Redis.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis refused or failed the command.
    #[error("redis rejected the command")]
    Redis(#[from] bullmq::Error),
    /// Redis did not answer in time; it may be down or unreachable.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
}

/// Handles to every queue, connected on first use.
///
/// Connecting lazily lets the API start and take signups while Redis is
/// down: the jobs stay `pending` in Postgres and the relay delivers them
/// later. Once connected, the BullMQ connection reconnects by itself.
pub struct JobQueues {
    connection_options: RedisConnectionOptions,
    prefix: String,
    connection: OnceCell<RedisConnection>,
    queues: HashMap<QueueName, OnceCell<Queue>>,
    settings: QueueTable,
}

impl JobQueues {
    /// How long a caller waits for Redis before giving up on this attempt.
    /// Short, because a request must not hang on Redis: the outbox relay
    /// retries whatever did not get through.
    pub const TIMEOUT: Duration = Duration::from_millis(1_000);

    /// Prepares handles; does no I/O.
    pub fn new(settings: &Settings) -> Self {
        Self {
            connection_options: connection_options(settings),
            prefix: settings.queue_prefix.clone(),
            connection: OnceCell::new(),
            queues: QueueName::ALL
                .iter()
                .map(|queue| (*queue, OnceCell::new()))
                .collect(),
            settings: settings.queues.clone(),
        }
    }

    /// The configured settings of `queue`; job records take their
    /// `max_attempts` from here so they agree with what BullMQ is told.
    pub fn settings(&self, queue: QueueName) -> QueueSettings {
        self.settings.get(queue)
    }

    /// Adds the job with `job_id` to `queue` with the queue's settings.
    ///
    /// Idempotent: BullMQ ignores a second add of a job id it still holds.
    pub async fn enqueue(
        &self,
        queue: QueueName,
        job_id: Uuid,
        payload: &serde_json::Value,
    ) -> Result<(), QueueError> {
        self.bounded(async {
            let handle = self.queue(queue).await?;
            handle
                .add(queue.as_str(), payload)
                .options(job_options(&self.settings(queue)).job_id(job_id.to_string()))
                .await?;
            Ok(())
        })
        .await
    }

    /// Round-trips a `PING`, for readiness checks.
    pub async fn ping(&self) -> Result<(), QueueError> {
        self.bounded(async { Ok(self.connection().await?.ping().await?) })
            .await
    }

    /// How many jobs of `queue` are in each state right now.
    pub async fn counts(&self, queue: QueueName) -> Result<QueueCounts, QueueError> {
        self.bounded(async {
            let counts = self.queue(queue).await?.get_job_counts().await?;
            Ok(QueueCounts {
                queue,
                // Prioritized jobs are waiting too, just not in FIFO order.
                waiting: counts.waiting + counts.prioritized,
                active: counts.active,
                delayed: counts.delayed,
                completed: counts.completed,
                failed: counts.failed,
                paused: counts.paused,
            })
        })
        .await
    }

    /// A BullMQ queue handle, for operations this layer does not wrap yet.
    pub async fn queue(&self, queue: QueueName) -> Result<&Queue, bullmq::Error> {
        let cell = self
            .queues
            .get(&queue)
            .expect("every QueueName has a cell: the map is built from QueueName::ALL");
        cell.get_or_try_init(|| async {
            let options = QueueOptions::new().prefix(self.prefix.clone());
            Queue::with_connection(queue.as_str(), self.connection().await?.clone(), options).await
        })
        .await
    }

    async fn connection(&self) -> Result<&RedisConnection, bullmq::Error> {
        self.connection
            .get_or_try_init(|| RedisConnection::new_managed_only(&self.connection_options))
            .await
    }

    async fn bounded<T>(
        &self,
        operation: impl Future<Output = Result<T, QueueError>>,
    ) -> Result<T, QueueError> {
        tokio::time::timeout(Self::TIMEOUT, operation)
            .await
            .map_err(|_| QueueError::Timeout(Self::TIMEOUT))?
    }
}

/// Jobs per state in one queue, for operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct QueueCounts {
    /// The queue.
    pub queue: QueueName,
    /// Ready to run.
    pub waiting: u64,
    /// Running now.
    pub active: u64,
    /// Scheduled: a retry after backoff, or a job added with a delay.
    pub delayed: u64,
    /// Done (within the retention window).
    pub completed: u64,
    /// The dead-letter set.
    pub failed: u64,
    /// Waiting in a paused queue.
    pub paused: u64,
}

/// The backoff type our jobs carry. Standard BullMQ backoffs have no
/// jitter, so retries of jobs that failed together (a provider outage)
/// would all come back at the same instant; this one spreads them.
pub const JITTERED_BACKOFF: &str = "exponential-jitter";

/// Worker options for `queue`: our Redis and prefix, and the queue's settings.
pub fn worker_options(settings: &Settings, queue: QueueName) -> WorkerOptions {
    let queue = settings.queue(queue);
    let options = WorkerOptions::new()
        .connection(connection_options(settings))
        .prefix(settings.queue_prefix.clone())
        .concurrency(queue.concurrency)
        .lock_duration(queue.lock_duration)
        .stalled_interval(queue.stalled_interval)
        // An idle worker re-checks for shutdown this often, so SIGTERM on an
        // idle worker is answered within a second.
        .drain_delay(Duration::from_secs(1))
        .backoff_strategy(jittered_backoff(queue.backoff));
    // BullMQ honours a pause (`Queue::rate_limit`, which a provider's 429 or
    // a refused key triggers) only on a queue that has a limiter: without
    // one the job is handed straight back out, in a tight loop. A queue with
    // no limit of its own gets one that never binds.
    let limit = queue.rate_limit.unwrap_or(crate::config::RateLimit {
        max: NEVER_BINDS,
        per: Duration::from_secs(1),
    });
    options.limiter(RateLimiterOptions::new(limit.max, limit.per))
}

/// The value BullMQ's `rateLimit` writes to pause a queue
/// (`Number.MAX_SAFE_INTEGER`): a limiter of this many jobs per window is
/// reached only by a pause.
const NEVER_BINDS: u64 = 9_007_199_254_740_991;

/// "Equal jitter": attempt n waits between half and all of `base * 2^(n-1)`,
/// capped at an hour, so retries never bunch up yet never come too soon.
fn jittered_backoff(base: Duration) -> BackoffStrategyFn {
    Arc::new(move |attempt, kind, _error, _data| {
        let delay = if kind == JITTERED_BACKOFF {
            let ceiling = base
                .saturating_mul(2_u32.saturating_pow(attempt.saturating_sub(1)))
                .min(Duration::from_secs(3600));
            let ceiling = millis(ceiling);
            let half = ceiling / 2;
            let random = RandomState::new().hash_one(attempt);
            i64::try_from(half + random % (ceiling - half + 1)).unwrap_or(i64::MAX)
        } else {
            // A backoff type we do not know (from another producer): retry now
            // rather than guess, as BullMQ does for unknown custom types.
            0
        };
        Box::pin(async move { delay })
    })
}

fn connection_options(settings: &Settings) -> RedisConnectionOptions {
    RedisConnectionOptions::new().url(settings.redis_url.expose_secret())
}

/// The BullMQ options every job of a queue is added with.
fn job_options(queue: &QueueSettings) -> JobOptions {
    JobOptions::new()
        .attempts(queue.attempts)
        .backoff(BackoffStrategy::Custom(JITTERED_BACKOFF.to_owned()))
        // BullMQ's KeepJobs ages are in seconds (its Lua multiplies by 1000).
        .remove_on_complete(RemoveOnFinish::Options(KeepJobs {
            age: Some(queue.keep_completed.as_secs()),
            count: Some(queue.keep_completed_count),
            limit: None,
        }))
        .remove_on_fail(RemoveOnFinish::Options(KeepJobs {
            age: Some(queue.keep_failed.as_secs()),
            count: None,
            limit: None,
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jittered_backoff_doubles_and_stays_within_its_window() {
        let backoff = jittered_backoff(Duration::from_secs(2));
        let data = serde_json::Value::Null;
        for (attempt, ceiling) in [(1, 2_000), (2, 4_000), (3, 8_000)] {
            let delays: Vec<i64> = futures::future::join_all(
                (0..50).map(|_| backoff(attempt, JITTERED_BACKOFF, "", &data)),
            )
            .await;
            assert!(
                delays.iter().all(|&d| d >= ceiling / 2 && d <= ceiling),
                "{delays:?}"
            );
            let distinct: std::collections::HashSet<_> = delays.iter().collect();
            assert!(distinct.len() > 1, "no jitter: {delays:?}");
        }
    }
}
