//! Handing jobs to Redis: enqueued with their queue's options, removed,
//! or scheduled to repeat.

use std::time::Duration;

use bullmq::job_scheduler::RepeatOptions;
use uuid::Uuid;

use catalogue::{Job, QueueName};

use crate::{JobQueues, QueueError, job_options};

impl JobQueues {
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
}
