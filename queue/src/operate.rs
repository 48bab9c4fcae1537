//! What operators and health checks read and change: reachability, the
//! oldest waiting job, pauses, consumers and counts per state.

use std::time::Duration;

use catalogue::QueueName;

use crate::{JobQueues, QueueError};

impl JobQueues {
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
