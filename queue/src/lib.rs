//! The producer's side of BullMQ: queue handles, enqueueing with each
//! queue's job options, counts, and how to reach Redis. The worker's side
//! (`bullmq::Worker`, its options and events) is in the worker's runtime;
//! the queue names and settings both use come from the catalogue.

use std::collections::HashMap;
use std::time::Duration;

use bullmq::job_scheduler::RepeatOptions;
use bullmq::options::RedisConnectionOptions;
use bullmq::redis_connection::RedisConnection;
use bullmq::types::{BackoffStrategy, KeepJobs, RemoveOnFinish};
use bullmq::{JobOptions, Queue, QueueOptions};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;
use uuid::Uuid;

use catalogue::{Job, QueueName, QueueSettings, QueueTable};
use platform::config::RedisSettings;

pub mod dead_letters;
mod eviction;

pub use eviction::{EvictionCheck, EvictionPolicy, watch_eviction_policy};

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
    redis: RedisSettings,
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
    pub fn new(redis: &RedisSettings, queues: QueueTable) -> Self {
        Self {
            connection_options: connection_options(redis),
            redis: redis.clone(),
            connection: OnceCell::new(),
            queues: QueueName::ALL
                .iter()
                .map(|queue| (*queue, OnceCell::new()))
                .collect(),
            settings: queues,
        }
    }

    /// The configured settings of `queue`; job records take their
    /// `max_attempts` from here so they agree with what BullMQ is told.
    pub fn settings(&self, queue: QueueName) -> QueueSettings {
        self.settings.get(queue)
    }

    /// The options every job of `queue` carries (attempts, backoff,
    /// retention), for jobs BullMQ creates itself, such as a scheduler's.
    pub fn job_options(&self, queue: QueueName) -> JobOptions {
        job_options(&self.settings(queue))
    }

    /// Adds the job with `job_id` to `queue` with the queue's settings, to
    /// run once `delay` has passed (at once for zero).
    ///
    /// Idempotent: BullMQ ignores a second add of a job id it still holds.
    pub async fn enqueue(
        &self,
        queue: QueueName,
        job_id: Uuid,
        payload: &serde_json::Value,
        delay: Duration,
    ) -> Result<(), QueueError> {
        self.bounded(async {
            let handle = self.queue(queue).await?;
            let mut options = job_options(&self.settings(queue)).job_id(job_id.to_string());
            if !delay.is_zero() {
                options = options.delay(delay);
            }
            handle.add(queue.as_str(), payload).options(options).await?;
            Ok(())
        })
        .await
    }

    /// Takes the job `job_id` out of `queue` if it has not started (a
    /// delayed job nobody needs any more). Returns whether it is gone: a
    /// job a worker holds is not removed.
    pub async fn remove(&self, queue: QueueName, job_id: Uuid) -> Result<bool, QueueError> {
        self.bounded(async { Ok(self.queue(queue).await?.remove(&job_id.to_string()).await?) })
            .await
    }

    /// Creates or updates the job scheduler `id`, which adds `job` (named
    /// `name`) to its queue every `interval` with the queue's options. Safe to call from
    /// every worker at every start: BullMQ keeps one scheduler per id and
    /// creates one job per period, however many workers run.
    pub async fn schedule<J: Job>(
        &self,
        id: &str,
        name: &str,
        interval: Duration,
        job: &J,
    ) -> anyhow::Result<()> {
        let queue = self.queue(J::QUEUE).await?;
        let repeat = RepeatOptions {
            every: Some(platform::millis(interval).max(1)),
            ..RepeatOptions::default()
        };
        queue
            .upsert_job_scheduler(
                id,
                repeat,
                Some(name),
                Some(serde_json::to_value(job)?),
                Some(self.job_options(J::QUEUE)),
            )
            .await?;
        Ok(())
    }

    /// Round-trips a `PING`, for readiness checks.
    pub async fn ping(&self) -> Result<(), QueueError> {
        self.bounded(async { Ok(self.connection().await?.ping().await?) })
            .await
    }

    /// How long the oldest job waiting in `queue` has waited; `None` when
    /// none waits. A growing age means the workers do not keep up.
    pub async fn oldest_waiting_age(
        &self,
        queue: QueueName,
    ) -> Result<Option<Duration>, QueueError> {
        self.bounded(async {
            let oldest = self
                .queue(queue)
                .await?
                .get_jobs(&["wait"], 0, 0, true)
                .await?;
            Ok(oldest.first().map(|job| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                now.saturating_sub(Duration::from_millis(job.timestamp()))
            }))
        })
        .await
    }

    /// Whether `queue` is paused (`set_paused`).
    pub async fn is_paused(&self, queue: QueueName) -> Result<bool, QueueError> {
        self.bounded(async { Ok(self.queue(queue).await?.is_paused().await?) })
            .await
    }

    /// Pauses `queue` on every worker (running jobs finish; new ones wait),
    /// or resumes it.
    pub async fn set_paused(&self, queue: QueueName, paused: bool) -> Result<(), QueueError> {
        self.bounded(async {
            let handle = self.queue(queue).await?;
            if paused {
                handle.pause().await?;
            } else {
                handle.resume().await?;
            }
            Ok(())
        })
        .await
    }

    /// How many workers consume `queue` now: BullMQ's own registry (each
    /// worker names its blocking connection), so Node workers and Bull Board
    /// count too. A Redis that refuses `CLIENT LIST` reads as 0.
    pub async fn consumers(&self, queue: QueueName) -> Result<usize, QueueError> {
        self.bounded(async { Ok(self.queue(queue).await?.get_workers_count().await?) })
            .await
    }

    /// Marks `queue` as held by a provider refusing our credentials, with the
    /// reason, for `ttl`: a worker that pauses the queue renews it, one that
    /// sees the credentials work again clears it, and a worker that died
    /// leaves a mark that lapses by itself.
    pub async fn mark_misconfigured(
        &self,
        queue: QueueName,
        reason: &str,
        ttl: Duration,
    ) -> Result<(), QueueError> {
        let key = self.misconfigured_key(queue);
        self.bounded(async {
            let mut set = redis::cmd("SET");
            set.arg(&key)
                .arg(reason)
                .arg("PX")
                .arg(platform::millis(ttl).max(1));
            Ok(self.connection().await?.cmd::<()>(&mut set).await?)
        })
        .await
    }

    /// Wakes whoever waits on `queue`'s blocking read, as a new job would
    /// (BullMQ's marker with score 0). A worker closing waits out that read,
    /// up to 5 s when a delayed job is due later: woken, it exits at once.
    pub async fn wake_consumers(&self, queue: QueueName) -> Result<(), QueueError> {
        let key = format!("{}:{}:marker", self.prefix(), self.redis.bullmq_name(queue));
        self.bounded(async {
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(&key).arg(0).arg("0");
            Ok(self.connection().await?.cmd::<()>(&mut zadd).await?)
        })
        .await
    }

    /// Clears [`mark_misconfigured`](Self::mark_misconfigured)'s mark.
    pub async fn clear_misconfigured(&self, queue: QueueName) -> Result<(), QueueError> {
        let key = self.misconfigured_key(queue);
        self.bounded(async {
            let mut del = redis::cmd("DEL");
            del.arg(&key);
            Ok(self.connection().await?.cmd::<()>(&mut del).await?)
        })
        .await
    }

    /// Why `queue` is held by a refused credential, if it is.
    pub async fn misconfigured(&self, queue: QueueName) -> Result<Option<String>, QueueError> {
        let key = self.misconfigured_key(queue);
        self.bounded(async {
            let mut get = redis::cmd("GET");
            get.arg(&key);
            Ok(self.connection().await?.cmd(&mut get).await?)
        })
        .await
    }

    /// Beside the queue's own keys (its hash slot, with a tagged prefix),
    /// under a name no BullMQ key or job id takes.
    fn misconfigured_key(&self, queue: QueueName) -> String {
        format!(
            "{}:{}:acme:misconfigured",
            self.prefix(),
            self.redis.bullmq_name(queue)
        )
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
            let options = QueueOptions::new().prefix(self.redis.queue_prefix.clone());
            let name = self.redis.bullmq_name(queue);
            Queue::with_connection(&name, self.connection().await?.clone(), options).await
        })
        .await
    }

    /// The connection the queues use, for other state kept in Redis (the
    /// api's shared limits): one connection per process, whoever uses it.
    pub async fn redis(&self) -> Result<&RedisConnection, bullmq::Error> {
        self.connection().await
    }

    /// What every key of ours in Redis starts with (`QUEUE_PREFIX`).
    pub fn prefix(&self) -> &str {
        &self.redis.queue_prefix
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueCounts {
    /// The queue.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "welcome-email"))]
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

impl QueueCounts {
    /// Sets this queue's `queue_jobs` gauges (by `state`) and
    /// `queue_oldest_waiting_seconds` from `oldest`: one set of names
    /// whichever process measures them.
    pub fn publish(&self, oldest: Option<Duration>) {
        let name = self.queue.as_str();
        for (state, value) in [
            ("waiting", self.waiting),
            ("active", self.active),
            ("delayed", self.delayed),
            ("failed", self.failed),
            ("paused", self.paused),
        ] {
            metrics::gauge!("queue_jobs", "queue" => name, "state" => state).set(value as f64);
        }
        metrics::gauge!("queue_oldest_waiting_seconds", "queue" => name)
            .set(oldest.map_or(0.0, |age| age.as_secs_f64()));
    }
}

/// The backoff type our jobs carry. Standard BullMQ backoffs have no
/// jitter, so retries of jobs that failed together (a provider outage)
/// would all come back at the same instant; this one spreads them.
pub const JITTERED_BACKOFF: &str = "exponential-jitter";

/// How to reach our Redis (one, or a cluster), for producers and workers
/// alike.
pub fn connection_options(redis: &RedisSettings) -> RedisConnectionOptions {
    let options = RedisConnectionOptions::new().url(redis.url.expose_secret());
    if redis.is_cluster() {
        options.cluster_nodes(redis.cluster_node_urls())
    } else {
        options
    }
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
