//! The unit of work of a request that causes jobs: one transaction, the
//! jobs recorded in it, and, once it commits, their hand-over to Redis.
//!
//! ```ignore
//! let mut work = UnitOfWork::begin(&state, &request).await?;
//! users::create(work.conn(), account).await?;
//! work.record(&SlackNotify { user_id }).await?;
//! let committed = work.commit().await?; // committed, then handed over
//! ```
//!
//! Dropped without [`UnitOfWork::commit`], it rolls back, records included.

use std::time::{Duration, Instant};

use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use catalogue::Job;

use super::{JobRecord, JobRef, dispatch, record};
use crate::request_id::RequestId;
use crate::state::AppState;

/// A transaction, the request it serves, and the jobs recorded in it.
pub struct UnitOfWork<'a> {
    tx: Transaction<'static, Postgres>,
    state: &'a AppState,
    request: &'a RequestId,
    /// Jobs the answer points to, in the order recorded.
    answer: Vec<JobRecord>,
    /// Jobs the answer does not name (another account's clean-up).
    aside: Vec<JobRecord>,
    /// Users whose sessions this instance's token cache forgets on commit.
    forget: Vec<Uuid>,
    began: Instant,
}

/// What a committed unit of work hands back for the answer.
#[derive(Debug)]
pub struct Committed {
    /// The answer's jobs, in the order recorded, as the hand-over left them.
    pub jobs: Vec<JobRef>,
    /// From `begin` to the commit: the time in Postgres.
    pub in_transaction: Duration,
    /// From the commit to the end of the hand-over: the time in Redis.
    pub handing_over: Duration,
}

impl<'a> UnitOfWork<'a> {
    /// Begins a transaction on the app's pool, for the jobs of `request`.
    pub async fn begin(state: &'a AppState, request: &'a RequestId) -> Result<Self, sqlx::Error> {
        let began = Instant::now();
        Ok(Self {
            tx: state.pool.begin().await?,
            state,
            request,
            answer: Vec::new(),
            aside: Vec::new(),
            forget: Vec::new(),
            began,
        })
    }

    /// The transaction's connection, for the owners' transitions.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Records `job`, due at once, among the answer's jobs; returns its id
    /// (the BullMQ jobId).
    pub async fn record<J: Job>(&mut self, job: &J) -> Result<Uuid, sqlx::Error> {
        self.add(job, Duration::ZERO, Part::Answer).await
    }

    /// Records `job`, due `delay` after the commit, among the answer's jobs.
    pub async fn record_delayed<J: Job>(
        &mut self,
        job: &J,
        delay: Duration,
    ) -> Result<Uuid, sqlx::Error> {
        self.add(job, delay, Part::Answer).await
    }

    /// Records `job`, due at once, outside the answer: handed over with
    /// the rest, but the client is not pointed to it (it is not theirs).
    pub async fn record_aside<J: Job>(&mut self, job: &J) -> Result<Uuid, sqlx::Error> {
        self.add(job, Duration::ZERO, Part::Aside).await
    }

    async fn add<J: Job>(
        &mut self,
        job: &J,
        delay: Duration,
        part: Part,
    ) -> Result<Uuid, sqlx::Error> {
        let record = record(&mut self.tx, &self.state.queues, self.request, job, delay).await?;
        let id = record.id;
        match part {
            Part::Answer => self.answer.push(record),
            Part::Aside => self.aside.push(record),
        }
        Ok(id)
    }

    /// Once committed (and before the hand-over), this instance's token
    /// cache forgets `user_id`'s sessions, which the transaction revoked;
    /// other instances forget them within the cache's lifetime.
    pub fn forget_sessions(&mut self, user_id: Uuid) {
        self.forget.push(user_id);
    }

    /// Commits, then hands every record to Redis (what Redis does not take
    /// stays `pending` for the relay); returns the answer's jobs.
    pub async fn commit(self) -> Result<Committed, sqlx::Error> {
        let began = self.began;
        let batch = self.commit_records().await?;
        let committed = Instant::now();
        let app = batch.state;
        let dispatched = dispatch(&app.pool, &app.queues, &app.feed, &batch.records).await;
        let handing_over = committed.elapsed();
        let jobs = batch
            .records
            .iter()
            .zip(dispatched)
            .take(batch.answered)
            .map(|(record, dispatch)| JobRef::new(batch.state, record, dispatch))
            .collect();
        Ok(Committed {
            jobs,
            in_transaction: committed - began,
            handing_over,
        })
    }

    /// Commits, and hands the records to Redis after the caller answers:
    /// the answer waits for Postgres only, so its timing tells nothing of
    /// Redis (a password reset answers alike for every address). Pending
    /// until then, the records are the relay's if this hand-over fails.
    pub async fn commit_and_hand_over_later(self) -> Result<(), sqlx::Error> {
        let Batch { state, records, .. } = self.commit_records().await?;
        let state = state.clone();
        tokio::spawn(
            async move { dispatch(&state.pool, &state.queues, &state.feed, &records).await },
        );
        Ok(())
    }

    /// Rolls back: nothing of the transaction happened, and no job is
    /// handed over.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }

    /// Commits and forgets the revoked sessions; what is left is the
    /// hand-over.
    async fn commit_records(mut self) -> Result<Batch<'a>, sqlx::Error> {
        self.tx.commit().await?;
        let ended_sessions = !self.forget.is_empty();
        for user_id in self.forget {
            self.state.tokens.remove_user(user_id);
        }
        if ended_sessions {
            // Their streams too: the sessions kept are told apart by asking.
            self.state.events.check_tokens_now();
        }
        let answered = self.answer.len();
        self.answer.append(&mut self.aside);
        Ok(Batch {
            state: self.state,
            records: self.answer,
            answered,
        })
    }
}

/// Committed records, to hand to Redis in one batch.
struct Batch<'a> {
    state: &'a AppState,
    /// The answer's records first, then those aside.
    records: Vec<JobRecord>,
    /// How many of `records` are the answer's.
    answered: usize,
}

/// Which of the unit's lists a recorded job joins.
enum Part {
    /// The answer points the client to it.
    Answer,
    /// Handed over with the rest, named to nobody.
    Aside,
}
