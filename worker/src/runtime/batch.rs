//! Batched queues (`catalogue::Batch`): many users trigger the same
//! expensive operation, so one run serves many jobs.
//!
//! BullMQ still fetches, locks, renews, recovers (stalled-job check) and
//! finishes every job on its own, as on any queue: the queue's processor
//! only hands its job to the queue's batcher ([`Batcher::hold`]) and waits
//! for that job's outcome. The batcher waits for the first job, gathers
//! those still waiting in Redis as BullMQ fetches them (a worker holds up
//! to `BATCH_MAX` jobs; for at most one interval), records their start in
//! one statement, waits for the queue's turn ([`wait_for_turn`]: at most
//! one run per `BATCH_EVERY_MS` across all workers, taken just before the
//! provider is called), runs the handler once over
//! all of them, records the completions in one statement, and settles each
//! job as a single attempt would (completed, deferred by a provider, or
//! failed and retried), each with its own record and log line.
//!
//! A worker killed mid-run holds its jobs' locks no longer: BullMQ's
//! stalled-job check hands them to another worker, whose run announces
//! them again (at least once: if the kill came after the provider took the
//! call and before the records did, those jobs are announced twice). On
//! SIGTERM BullMQ fetches no more, and the jobs already held are run
//! before the worker closes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use catalogue::{Batch, QueueName};
use metrics::counter;
use serde_json::{Value, json};
use store::records;
use store::records::{Run, Started};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;
use uuid::Uuid;

use super::attempt::{Attempt, Lane, follow_origin};
use crate::context::JobContext;
use crate::error::JobError;
use crate::jobs::{Handler, JobMeta};
use queue::feed::Change;

/// A job BullMQ handed to a batched queue's processor, and where its outcome goes.
struct Held {
    job: bullmq::Job,
    answer: oneshot::Sender<Result<Value, bullmq::Error>>,
}

/// Gathers one batched queue's jobs into runs, one run at a time per worker.
pub(super) struct Batcher {
    held: mpsc::UnboundedSender<Held>,
    /// Held for the length of each run: shutdown waits on it, so a run
    /// that called the provider records its jobs before the process ends.
    running: Arc<tokio::sync::Mutex<()>>,
}

impl Batcher {
    /// Starts gathering `lane`'s jobs into runs of `batch`; the task ends
    /// when the batcher is dropped and every job held has run.
    pub(super) fn start<H: Handler>(
        ctx: Arc<JobContext>,
        handler: Arc<H>,
        lane: Arc<Lane>,
        batch: Batch,
    ) -> (Arc<Self>, JoinHandle<()>) {
        let (held, gathered) = mpsc::unbounded_channel();
        let running = Arc::new(tokio::sync::Mutex::new(()));
        let task = tokio::spawn(gather(ctx, handler, lane, batch, gathered, running.clone()));
        (Arc::new(Self { held, running }), task)
    }

    /// Returns once no run is in progress, or after `patience`: a closing
    /// worker waits here before the batcher is stopped.
    pub(super) async fn finish_run(&self, patience: Duration) {
        let _ = tokio::time::timeout(patience, self.running.lock()).await;
    }

    /// The queue's processor: hands `job` to the next run and waits for its
    /// outcome. BullMQ renews the job's lock meanwhile.
    pub(super) async fn hold(&self, job: bullmq::Job) -> Result<Value, bullmq::Error> {
        let (answer, outcome) = oneshot::channel();
        if self.held.send(Held { job, answer }).is_err() {
            return Err(bullmq::Error::ProcessingError(
                "the worker is stopping; the job will run again".into(),
            ));
        }
        outcome.await.unwrap_or_else(|_| {
            Err(bullmq::Error::ProcessingError(
                "the batch ended without an outcome for this job".into(),
            ))
        })
    }
}

/// Waits for a job, then for the queue's turn, then runs every job held.
async fn gather<H: Handler>(
    ctx: Arc<JobContext>,
    handler: Arc<H>,
    lane: Arc<Lane>,
    batch: Batch,
    mut gathered: mpsc::UnboundedReceiver<Held>,
    running: Arc<tokio::sync::Mutex<()>>,
) {
    while let Some(first) = gathered.recv().await {
        let since = Instant::now();
        let mut held = vec![first];
        take(&mut gathered, &mut held, batch.max);
        // What still waits in Redis joins this run (BullMQ is fetching it),
        // for at most one interval: a steady stream never holds a run back.
        while held.len() < batch.max && since.elapsed() < batch.every {
            match ctx.queues.waiting(lane.queue).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    // Paces the poll while BullMQ fetches what waits.
                    tokio::time::sleep(GATHER_POLL).await;
                    take(&mut gathered, &mut held, batch.max);
                }
            }
        }
        // The last jobs fetched reach the batcher just after the wait list empties.
        tokio::time::sleep(GATHER_POLL).await;
        take(&mut gathered, &mut held, batch.max);
        let _run = running.lock().await;
        run(&ctx, &*handler, &lane, batch.every, held).await;
    }
}

/// How often a gathering run looks again for jobs BullMQ is fetching.
const GATHER_POLL: Duration = Duration::from_millis(20);

/// Moves the jobs already held into `held`, up to `max`.
fn take(gathered: &mut mpsc::UnboundedReceiver<Held>, held: &mut Vec<Held>, max: usize) {
    while held.len() < max {
        match gathered.try_recv() {
            Ok(job) => held.push(job),
            Err(_) => break,
        }
    }
}

/// Waits until `queue` may start its next run: at most one per `every`
/// across all workers. The one place batches are paced: a shared budget
/// per provider replaces this function.
async fn wait_for_turn(ctx: &JobContext, queue: QueueName, every: Duration) {
    loop {
        match ctx.queues.take_batch_turn(queue, every).await {
            Ok(None) => return,
            Ok(Some(left)) => tokio::time::sleep(left.clamp(Duration::from_millis(1), every)).await,
            Err(redis) => {
                // Redis is needed to finish the jobs anyway; this worker at
                // least keeps its own pace.
                tracing::warn!(%queue, error = %redis, "could not take the batch's turn");
                tokio::time::sleep(every).await;
                return;
            }
        }
    }
}

/// One run over `held`: records started in one statement, the handler once,
/// completions recorded in one statement, then each job settled.
async fn run<H: Handler>(
    ctx: &JobContext,
    handler: &H,
    lane: &Lane,
    every: Duration,
    held: Vec<Held>,
) {
    let span = tracing::info_span!("batch", queue = %lane.queue, jobs = held.len());
    async move {
        let Some(running) = start(ctx, lane, held).await else {
            return;
        };
        // Last, just before the provider is called: the calls keep the
        // interval, however long gathering and recording took.
        wait_for_turn(ctx, lane.queue, every).await;
        let metas: Vec<JobMeta> = running.iter().map(|job| job.meta.clone()).collect();
        tracing::info!(jobs = metas.len(), "batch started");
        counter!("jobs_started_total", "queue" => lane.queue.as_str())
            .increment(metas.len() as u64);
        let timeout = lane.timeout;
        let work = handler.handle_batch(ctx, lane.queue, &metas);
        let outcomes = match tokio::time::timeout(timeout, work).await {
            Ok(Ok(outcomes)) if outcomes.len() == metas.len() => outcomes,
            Ok(Ok(outcomes)) => shared(
                JobError::Transient(anyhow::anyhow!(
                    "the batch gave {} outcomes for {} jobs",
                    outcomes.len(),
                    metas.len()
                )),
                metas.len(),
            ),
            Ok(Err(error)) => shared(error, metas.len()),
            Err(_) => shared(
                JobError::TimedOut(anyhow::anyhow!(
                    "the batch ran longer than the queue's {timeout:?} timeout"
                )),
                metas.len(),
            ),
        };
        let recorded = record_completions(ctx, &running, &outcomes).await;
        for (job, outcome) in running.into_iter().zip(outcomes) {
            let outcome = match (outcome, &recorded, job.meta.run) {
                (Ok(_), Err(db), Some(_)) => Err(JobError::Transient(anyhow::anyhow!(
                    "could not record the result: {db}"
                ))),
                (Ok(result), Ok(taken), Some(run)) if !taken.contains(&run.job_id) => {
                    job.attempt.span.in_scope(|| {
                        tracing::warn!(
                            "a newer attempt owns the record; this result is not recorded"
                        );
                    });
                    Ok(result)
                }
                (outcome, ..) => outcome,
            };
            let span = job.attempt.span.clone();
            let answer = job
                .attempt
                .settle(ctx, &job.meta, outcome)
                .instrument(span)
                .await;
            let _ = job.answer.send(answer);
        }
    }
    .instrument(span)
    .await
}

/// A job of a run, its record taken.
struct Running<'a> {
    attempt: Attempt<'a>,
    meta: JobMeta,
    answer: oneshot::Sender<Result<Value, bullmq::Error>>,
}

/// The run's attempts take their records, in one statement. Duplicate
/// deliveries are answered at once; `None` when nothing is left to run.
async fn start<'a>(ctx: &JobContext, lane: &'a Lane, held: Vec<Held>) -> Option<Vec<Running<'a>>> {
    let ids: Vec<Option<Uuid>> = held
        .iter()
        .map(|job| Uuid::parse_str(job.job.id()).ok())
        .collect();
    let recorded: Vec<Uuid> = ids.iter().flatten().copied().collect();
    let started = match records::start_batch(&ctx.pool, &recorded).await {
        Ok(started) => started,
        Err(db) => {
            tracing::warn!(error = %db, "could not record the start; retrying");
            for job in held {
                let _ = job.answer.send(Err(bullmq::Error::ProcessingError(format!(
                    "could not record the start: {db}"
                ))));
            }
            return None;
        }
    };
    let mut started = started.into_iter();
    let mut running = Vec::with_capacity(held.len());
    for (job, id) in held.into_iter().zip(ids) {
        let attempt = Attempt::begin(lane, &job.job);
        let found = match id {
            Some(_) => started.next().unwrap_or(Started::Unrecorded),
            None => Started::Unrecorded,
        };
        let run = match found {
            Started::Run(run, origin) => {
                ctx.changed(run.job_id);
                follow_origin(&attempt.span, &origin);
                Some(run)
            }
            Started::Unrecorded => None,
            Started::AlreadyCompleted => {
                attempt.span.in_scope(|| {
                    tracing::info!("job already completed; duplicate delivery skipped");
                });
                let _ = job
                    .answer
                    .send(Ok(json!({ "skipped": "already completed" })));
                continue;
            }
        };
        running.push(Running {
            meta: attempt.meta(&job.job, run),
            attempt,
            answer: job.answer,
        });
    }
    (!running.is_empty()).then_some(running)
}

/// Records every successful result of the run in one statement; the jobs
/// whose records took it.
async fn record_completions(
    ctx: &JobContext,
    running: &[Running<'_>],
    outcomes: &[Result<Value, JobError>],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let done: Vec<(Run, u32, &Value)> = running
        .iter()
        .zip(outcomes)
        .filter_map(|(job, outcome)| match (outcome, job.meta.run) {
            (Ok(result), Some(run)) => Some((run, job.attempt.number, result)),
            _ => None,
        })
        .collect();
    if done.is_empty() {
        return Ok(HashSet::new());
    }
    let taken = records::completed_batch(&ctx.pool, &done).await?;
    ctx.feed.publish_all(taken.iter().copied().map(Change::Job));
    Ok(taken.into_iter().collect())
}

/// One error for a whole run, as each job's outcome: the first job gets
/// it, the others a copy of the same class and words.
fn shared(error: JobError, jobs: usize) -> Vec<Result<Value, JobError>> {
    let mut outcomes: Vec<Result<Value, JobError>> = (1..jobs)
        .map(|_| {
            let cause = anyhow::anyhow!("{error}");
            Err(match &error {
                JobError::Permanent(_) => JobError::Permanent(cause),
                JobError::Transient(_) => JobError::Transient(cause),
                JobError::RateLimited(wait, _) => JobError::RateLimited(*wait, cause),
                JobError::Misconfigured(_) => JobError::Misconfigured(cause),
                JobError::TimedOut(_) => JobError::TimedOut(cause),
            })
        })
        .collect();
    outcomes.insert(0, Err(error));
    outcomes
}
