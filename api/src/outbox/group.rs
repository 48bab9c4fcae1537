//! A group commit: the changes of many requests that arrived together in
//! one transaction, their jobs recorded in one statement, one durable
//! commit for all of them, then one hand-over to Redis. Under load the
//! commit (a WAL flush) and the round trips are what a request waits for;
//! shared by the group, they stop growing with the number of requests.
//!
//! ```ignore
//! let mut group = GroupOfWork::begin(&pool, &queues, &feed).await?;
//! let ids: Vec<Uuid> = jobs.iter().map(|_| GroupOfWork::new_job_id()).collect();
//! let kept = stripe_events::record_all(group.conn(), &events_with(&ids)).await?;
//! group.record_all(kept_jobs).await?;
//! group.commit_and_hand_over_later().await?; // durable: answer each request
//! ```
//!
//! Dropped without a commit, it rolls back, records included.

use std::sync::Arc;

use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use catalogue::Job;
use queue::JobQueues;
use queue::feed::Publisher;
use store::records;

use super::{JobRecord, dispatch};

/// A transaction shared by a group of requests, and the jobs recorded in it.
pub struct GroupOfWork {
    tx: Transaction<'static, Postgres>,
    pool: PgPool,
    queues: Arc<JobQueues>,
    feed: Publisher,
    records: Vec<JobRecord>,
}

/// One job of a group, with the request it is recorded for.
pub struct GroupJob<J> {
    /// Its id, from [`GroupOfWork::new_job_id`], chosen before it is
    /// recorded so the rows that name it can be written first.
    pub id: Uuid,
    /// The job.
    pub job: J,
    /// The request that caused it, for joining logs and traces.
    pub origin: records::Origin,
}

impl GroupOfWork {
    /// Begins the group's transaction on `pool`; its jobs go to `queues`.
    pub async fn begin(
        pool: &PgPool,
        queues: &Arc<JobQueues>,
        feed: &Publisher,
    ) -> Result<Self, sqlx::Error> {
        Ok(Self {
            tx: pool.begin().await?,
            pool: pool.clone(),
            queues: queues.clone(),
            feed: feed.clone(),
            records: Vec::new(),
        })
    }

    /// An id for a job about to be recorded (also its BullMQ job id).
    pub fn new_job_id() -> Uuid {
        Uuid::now_v7()
    }

    /// The transaction's connection, for the owners' transitions.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Records every job, due at once, in one statement.
    pub async fn record_all<J: Job>(&mut self, jobs: &[GroupJob<J>]) -> Result<(), sqlx::Error> {
        let max_attempts = self.queues.settings(J::QUEUE).attempts;
        let mut recorded = Vec::with_capacity(jobs.len());
        for job in jobs {
            recorded.push(JobRecord {
                id: job.id,
                queue: J::QUEUE,
                payload: serde_json::to_value(&job.job)
                    .map_err(|e| sqlx::Error::Encode(Box::new(e)))?,
                delay: std::time::Duration::ZERO,
                owner: job.job.owner(),
            });
        }
        let rows: Vec<_> = recorded
            .iter()
            .zip(jobs)
            .map(|(record, job)| {
                let row = records::NewRecord {
                    job_id: record.id,
                    owner: record.owner,
                    queue: record.queue,
                    payload: &record.payload,
                    max_attempts,
                    delay: None,
                };
                (row, job.origin.clone())
            })
            .collect();
        records::insert_all(&mut self.tx, &rows).await?;
        self.records.append(&mut recorded);
        Ok(())
    }

    /// Commits (every request of the group may now be answered), then
    /// hands the records to Redis in the background: until a worker or the
    /// relay confirms it, a record is unconfirmed, and the relay's after its
    /// grace if this hand-over fails.
    pub async fn commit_and_hand_over_later(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await?;
        if !self.records.is_empty() {
            let (pool, queues, feed, records) = (self.pool, self.queues, self.feed, self.records);
            tokio::spawn(async move { dispatch(&pool, &queues, &feed, &records).await });
        }
        Ok(())
    }
}
