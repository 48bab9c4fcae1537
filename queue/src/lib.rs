//! The producer's and operator's side of BullMQ: the queue handles and how
//! to reach Redis (here), handing jobs over (`produce`), what operators
//! read and change (`operate`: counts, pauses, consumers), the marker of
//! a queue whose provider refuses our credentials (`misconfigured`), each
//! provider's rate budget shared by every queue and worker (`budget`),
//! Redis's eviction policy (`eviction`), how full its memory is (`memory`),
//! whose turn it is to run a batched queue (`turns`), failed jobs
//! ([`dead_letters`]) and the change feed of job records ([`feed`]).
//! The worker's side (`bullmq::Worker`, its options and events) is in the
//! worker's runtime; the queue names and settings both use come from the
//! catalogue.

use std::collections::HashMap;
use std::time::Duration;

use bullmq::options::RedisConnectionOptions;
use bullmq::redis_connection::RedisConnection;
use bullmq::types::{BackoffStrategy, KeepJobs, RemoveOnFinish};
use bullmq::{JobOptions, Queue, QueueOptions};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use catalogue::{QueueName, QueueSettings, QueueTable};
use platform::config::RedisSettings;

mod budget;
pub mod dead_letters;
mod eviction;
pub mod feed;
mod memory;
mod misconfigured;
mod operate;
mod produce;
mod turns;

pub use budget::{BudgetUse, Taken};
pub use eviction::{EvictionCheck, EvictionPolicy, watch_eviction_policy};
pub use memory::RedisMemory;
pub use operate::QueueCounts;

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

    /// Beside the queue's own keys (its hash slot, with a tagged prefix),
    /// under a name no BullMQ key or job id takes.
    fn misconfigured_key(&self, queue: QueueName) -> String {
        format!(
            "{}:{}:acme:misconfigured",
            self.prefix(),
            self.redis.bullmq_name(queue)
        )
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
