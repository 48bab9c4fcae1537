//! The dead-letter set: jobs that used up their attempts or failed
//! permanently. BullMQ keeps them (7 days by default) so an operator can read
//! why they failed and retry them once the cause is fixed.

use anyhow::Context as _;
use bullmq::JobState;
use sqlx::PgPool;
use uuid::Uuid;

use crate::JobQueues;
use catalogue::QueueName;
use store::records;

/// A failed job as BullMQ holds it.
#[derive(Debug, Clone)]
pub struct FailedJob {
    /// BullMQ job id.
    pub id: String,
    /// Attempts made before it failed.
    pub attempts_made: u32,
    /// When it failed, in ms since the epoch.
    pub failed_at: Option<u64>,
    /// Why, in full: for operators only.
    pub reason: String,
    /// The job's payload.
    pub data: serde_json::Value,
}

/// Operator commands on the failed jobs of one queue.
pub struct DeadLetters<'a> {
    queues: &'a JobQueues,
    pool: &'a PgPool,
}

impl<'a> DeadLetters<'a> {
    /// Works on `queues`, keeping the job records in `pool` in step.
    pub fn new(queues: &'a JobQueues, pool: &'a PgPool) -> Self {
        Self { queues, pool }
    }

    /// The failed jobs of `queue`, newest first: all of them, or the
    /// `newest` only (the set can hold thousands for a week).
    pub async fn list(
        &self,
        queue: QueueName,
        newest: Option<usize>,
    ) -> anyhow::Result<Vec<FailedJob>> {
        let end = newest.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX) - 1);
        self.range(queue, 0, end).await
    }

    /// A page of `queue`'s failed jobs, newest first: `take` of them after
    /// the newest `skip`.
    pub async fn page(
        &self,
        queue: QueueName,
        skip: usize,
        take: usize,
    ) -> anyhow::Result<Vec<FailedJob>> {
        if take == 0 {
            return Ok(Vec::new());
        }
        let start = i64::try_from(skip).unwrap_or(i64::MAX);
        let end = start.saturating_add(i64::try_from(take).unwrap_or(i64::MAX) - 1);
        self.range(queue, start, end).await
    }

    async fn range(
        &self,
        queue: QueueName,
        start: i64,
        end: i64,
    ) -> anyhow::Result<Vec<FailedJob>> {
        let jobs = self
            .queue(queue)
            .await?
            .get_failed(start, end)
            .await
            .context("cannot read the failed jobs")?;
        Ok(jobs
            .iter()
            .map(|job| FailedJob {
                id: job.id().to_owned(),
                attempts_made: job.attempts_made(),
                failed_at: job.finished_on(),
                reason: job.failed_reason().to_owned(),
                data: job.data().clone(),
            })
            .collect())
    }

    /// Moves the failed job `id` back to the queue. Returns whether it was
    /// failed (an unknown id or a job in another state is left alone).
    pub async fn retry(&self, queue: QueueName, id: &str) -> anyhow::Result<bool> {
        let handle = self.queue(queue).await?;
        if !is_failed(handle, id).await? {
            return Ok(false);
        }
        let Some(mut job) = handle.get_job(id).await.context("cannot read the job")? else {
            return Ok(false);
        };
        job.retry("failed", None)
            .await
            .with_context(|| format!("cannot retry job {id}"))?;
        self.mark_waiting(id).await?;
        Ok(true)
    }

    /// Retries every failed job of `queue`; returns how many.
    pub async fn retry_all(&self, queue: QueueName) -> anyhow::Result<usize> {
        let mut retried = 0;
        for id in self.failed_ids(queue).await? {
            retried += usize::from(self.retry(queue, &id).await?);
        }
        Ok(retried)
    }

    /// Deletes failed job `id` of `queue` from Redis; false when there is no
    /// such failed job. Its record keeps saying `failed`, with its reason.
    pub async fn remove(&self, queue: QueueName, id: &str) -> anyhow::Result<bool> {
        let handle = self.queue(queue).await?;
        if !is_failed(handle, id).await? {
            return Ok(false);
        }
        handle
            .remove(id)
            .await
            .with_context(|| format!("cannot remove job {id}"))
    }

    /// Deletes every failed job of `queue`; returns how many.
    pub async fn remove_all(&self, queue: QueueName) -> anyhow::Result<usize> {
        let mut removed = 0;
        for id in self.failed_ids(queue).await? {
            removed += usize::from(self.remove(queue, &id).await?);
        }
        Ok(removed)
    }

    /// The ids in `queue`'s failed set: ids only, so a bulk action reads
    /// each job once, when it acts on it.
    async fn failed_ids(&self, queue: QueueName) -> anyhow::Result<Vec<String>> {
        self.queue(queue)
            .await?
            .get_ranges(&["failed"], 0, -1, false)
            .await
            .context("cannot read the failed jobs")
    }

    async fn queue(&self, queue: QueueName) -> anyhow::Result<&bullmq::Queue> {
        self.queues.queue(queue).await.context("cannot reach redis")
    }

    /// Keeps the status record truthful: a retried job is waiting again.
    async fn mark_waiting(&self, id: &str) -> anyhow::Result<()> {
        let Ok(job_id) = Uuid::parse_str(id) else {
            return Ok(()); // enqueued by another producer: no record
        };
        records::retried(self.pool, job_id)
            .await
            .context("the job was retried but its record could not be updated")?;
        // An operator's action, not a hot path: published at once.
        if let Err(error) = self
            .queues
            .publish_changes(&[crate::feed::Change::Job(job_id)])
            .await
        {
            tracing::warn!(%error, "could not tell the api instances of a retried job");
        }
        Ok(())
    }
}

/// Whether job `id` is in the failed set right now.
async fn is_failed(queue: &bullmq::Queue, id: &str) -> anyhow::Result<bool> {
    let state = queue
        .get_job_state(id)
        .await
        .context("cannot read the job")?;
    Ok(state == JobState::Failed)
}
