//! One attempt at one job, as a pipeline of named steps:
//!
//! 1. [`take_record`]: the attempt takes the job record over (before the
//!    span is entered, so the span continues the recording request's trace);
//! 2. [`Attempt::execute`]: the handler runs, with the queue's deadline;
//! 3. [`record_completion`]: a result is recorded (a failed write retries);
//! 4. [`Attempt::settle`]: completed, deferred (a provider's 429 or refused
//!    key pauses the queue without spending an attempt), or failed (retried
//!    or not), each logged, measured and recorded once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use catalogue::QueueName;
use metrics::{counter, histogram};
use serde_json::{Value, json};
use store::records;
use store::records::{Failure, Origin, Run, Started};
use tracing::Instrument;
use uuid::Uuid;

use super::events::Reported;
use crate::context::JobContext;
use crate::error::JobError;
use crate::jobs::{Handler, JobMeta, service};

/// How long a queue's misconfigured mark outlives the pause that set it.
const MARK_MARGIN: Duration = Duration::from_secs(30);

/// What the runtime keeps per queue between jobs.
pub(super) struct Lane {
    pub(super) queue: QueueName,
    /// An attempt running longer fails (`QUEUE_<NAME>_TIMEOUT_SECS`).
    pub(super) timeout: Duration,
    /// A provider refused our credentials and no job has succeeded since:
    /// the operator has been told once, and is told again only after it heals.
    misconfigured: AtomicBool,
    /// Failures attempts recorded themselves (see [`Reported`]).
    pub(super) reported: Reported,
}

impl Lane {
    pub(super) fn new(queue: QueueName, timeout: Duration) -> Self {
        Self {
            queue,
            timeout,
            misconfigured: AtomicBool::new(false),
            reported: Reported::default(),
        }
    }
}

/// One attempt at one job: record, run, record, log once.
pub(super) async fn process<H: Handler>(
    ctx: std::sync::Arc<JobContext>,
    handler: std::sync::Arc<H>,
    lane: std::sync::Arc<Lane>,
    job: bullmq::Job,
) -> Result<Value, bullmq::Error> {
    let attempt = Attempt::begin(&lane, &job);
    let taken = take_record(&ctx, &job, &attempt.span).await;
    let span = attempt.span.clone();
    async move {
        let run = match taken {
            Ok(Started::Run(run, _)) => Some(run),
            Ok(Started::Unrecorded) => None,
            Ok(Started::AlreadyCompleted) => {
                tracing::info!("job already completed; duplicate delivery skipped");
                return Ok(json!({ "skipped": "already completed" }));
            }
            Err(db) => {
                tracing::warn!(error = %db, "could not record the start; retrying");
                return Err(bullmq::Error::ProcessingError(format!(
                    "could not record the start: {db}"
                )));
            }
        };
        let meta = attempt.meta(&job, run);
        let outcome = attempt.execute(&ctx, &*handler, &meta).await;
        let outcome = record_completion(&ctx, &meta, outcome).await;
        attempt.settle(&ctx, &meta, outcome).await
    }
    .instrument(span)
    .await
}

/// Step 1: the attempt takes the record over. Jobs we enqueued carry their
/// record's id as BullMQ job id; others run unrecorded. The request id and
/// trace parent the record carries go onto `span` before it is entered: a
/// trace's parent is fixed once its span has started.
async fn take_record(
    ctx: &JobContext,
    job: &bullmq::Job,
    span: &tracing::Span,
) -> Result<Started, sqlx::Error> {
    let Ok(id) = Uuid::parse_str(job.id()) else {
        return Ok(Started::Unrecorded);
    };
    let started = records::start(&ctx.pool, id).await;
    if let Ok(Started::Run(_, origin)) = &started {
        ctx.changed(id);
        follow_origin(span, origin);
    }
    started
}

/// Puts the request id and trace parent a record carries onto the attempt's
/// `span`, before it is entered: a trace's parent is fixed once its span has
/// started.
pub(super) fn follow_origin(span: &tracing::Span, origin: &Origin) {
    if let Some(request_id) = &origin.request_id {
        // The api's log lines of the request that recorded the job have it too.
        span.record("request_id", request_id.as_str());
    }
    if let Some(trace_parent) = &origin.trace_parent {
        platform::telemetry::continue_trace(span, trace_parent);
    }
}

/// Step 3: a successful result is recorded. If this write fails the job is
/// retried, and the idempotent handler finds its work done, so the record
/// catches up.
async fn record_completion(
    ctx: &JobContext,
    meta: &JobMeta,
    outcome: Result<Value, JobError>,
) -> Result<Value, JobError> {
    let (Ok(result), Some(run)) = (&outcome, meta.run) else {
        return outcome;
    };
    let taken = records::completed(&ctx.pool, run, meta.attempt, result).await?;
    if taken {
        ctx.changed(run.job_id);
    } else {
        tracing::warn!("a newer attempt owns the record; this result is not recorded");
    }
    outcome
}

/// An attempt in progress: which one, of how many, since when, in which span.
pub(super) struct Attempt<'a> {
    lane: &'a Lane,
    pub(super) number: u32,
    max: u32,
    started: Instant,
    pub(super) span: tracing::Span,
}

impl<'a> Attempt<'a> {
    pub(super) fn begin(lane: &'a Lane, job: &bullmq::Job) -> Self {
        let number = job.attempts_made() + 1;
        let span = tracing::info_span!(
            "job",
            queue = %lane.queue,
            job.id = %job.id(),
            attempt = number,
            user_id = tracing::field::Empty,
            request_id = tracing::field::Empty
        );
        Self {
            lane,
            number,
            max: job.opts().attempts.unwrap_or(1).max(1),
            started: Instant::now(),
            span,
        }
    }

    pub(super) fn meta(&self, job: &bullmq::Job, run: Option<Run>) -> JobMeta {
        let timeout = self.lane.timeout;
        JobMeta {
            id: job.id().to_owned(),
            attempt: self.number,
            run,
            // A tenth before the runtime gives up: work that checks it stops
            // first and can say why (a photo too slow to decode fails for
            // good instead of being retried as a timeout).
            deadline: self.started + timeout - timeout / 10,
            queued: job.clone(),
        }
    }

    /// Step 2: the handler runs, for at most the queue's timeout.
    async fn execute<H: Handler>(
        &self,
        ctx: &JobContext,
        handler: &H,
        meta: &JobMeta,
    ) -> Result<Value, JobError> {
        tracing::info!("job started");
        counter!("jobs_started_total", "queue" => self.lane.queue.as_str()).increment(1);
        let timeout = self.lane.timeout;
        let work = handler.handle(ctx, self.lane.queue, meta, meta.queued.data());
        match tokio::time::timeout(timeout, work).await {
            Ok(outcome) => outcome,
            // Dropping the handler's future stops its I/O; CPU work on a
            // blocking thread checks `meta.deadline` and stops by itself.
            Err(_) => Err(JobError::TimedOut(anyhow::anyhow!(
                "the attempt ran longer than the queue's {timeout:?} timeout"
            ))),
        }
    }

    /// Step 4: what BullMQ is told, with the log line, metrics and record
    /// that go with it.
    pub(super) async fn settle(
        &self,
        ctx: &JobContext,
        meta: &JobMeta,
        outcome: Result<Value, JobError>,
    ) -> Result<Value, bullmq::Error> {
        match outcome {
            Ok(result) => Ok(self.completed(ctx, result).await),
            Err(error @ (JobError::RateLimited(..) | JobError::Misconfigured(_))) => {
                Err(self.deferred(ctx, meta, error).await)
            }
            Err(error) => Err(self.failed(ctx, meta, error).await),
        }
    }

    async fn completed(&self, ctx: &JobContext, result: Value) -> Value {
        let name = self.lane.queue.as_str();
        tracing::info!(duration_ms = self.duration_ms(), "job completed");
        counter!("jobs_completed_total", "queue" => name).increment(1);
        histogram!("job_duration_seconds", "queue" => name, "outcome" => "completed")
            .record(self.started.elapsed().as_secs_f64());
        if self.lane.misconfigured.swap(false, Ordering::Relaxed) {
            tracing::info!("the provider accepts our credentials again");
            // Ends the incident now; left alone, the mark lapses by itself.
            if let Err(redis) = ctx.queues.clear_misconfigured(self.lane.queue).await {
                tracing::warn!(error = %redis, "could not clear the queue's misconfigured mark");
            }
        }
        result
    }

    /// A provider's 429 or refused key: the queue pauses on every worker
    /// and the job waits, without spending an attempt.
    async fn deferred(&self, ctx: &JobContext, meta: &JobMeta, error: JobError) -> bullmq::Error {
        let (wait, reason) = match &error {
            JobError::RateLimited(wait, _) => (*wait, "rate_limited"),
            _ => (ctx.providers.config_fault_pause, "misconfigured"),
        };
        let detail = format!("{error}; queue paused for {wait:?}");
        meta.log(&format!("deferred without spending an attempt: {detail}"))
            .await;
        let duration_ms = self.duration_ms();
        counter!("jobs_deferred_total", "queue" => self.lane.queue.as_str(), "reason" => reason)
            .increment(1);
        if reason == "rate_limited" {
            tracing::warn!(duration_ms, error = %detail, "rate limited by the provider");
        } else if !self.lane.misconfigured.swap(true, Ordering::Relaxed) {
            tracing::error!(
                duration_ms,
                error = %detail,
                "the provider refused our credentials: fix the configuration; \
                 jobs wait (they are not failed) and are retried every pause"
            );
        } else {
            tracing::debug!(error = %detail, "still misconfigured");
        }
        let wait_ms = platform::millis(wait).max(1);
        if let Err(redis) = pause_queue(ctx, self.lane.queue, wait_ms).await {
            // The job still goes back to wait; it will just be tried sooner.
            tracing::warn!(error = %redis, "could not pause the queue");
        }
        if reason == "misconfigured" {
            // For the alerts: outlives the pause a little, so the next
            // refusal renews it before it lapses.
            let mark = ctx
                .queues
                .mark_misconfigured(self.lane.queue, &error.to_string(), wait + MARK_MARGIN)
                .await;
            if let Err(redis) = mark {
                tracing::warn!(error = %redis, "could not mark the queue misconfigured");
            }
        }
        if let Some(run) = meta.run {
            let public = error.public(service(self.lane.queue), true);
            let failure = Failure {
                public: &public,
                detail: &detail,
            };
            match records::requeued(&ctx.pool, run, failure).await {
                Ok(()) => ctx.changed(run.job_id),
                Err(db) => tracing::warn!(error = %db, "could not record the requeue"),
            }
        }
        bullmq::Error::RateLimited { delay_ms: wait_ms }
    }

    /// The attempt failed: retried with backoff unless it is permanent or
    /// the last one. Recorded here, and reported so the event watcher does
    /// not record it again.
    async fn failed(&self, ctx: &JobContext, meta: &JobMeta, error: JobError) -> bullmq::Error {
        let name = self.lane.queue.as_str();
        let retrying = !error.is_permanent() && self.number < self.max;
        let outcome = if retrying { "retried" } else { "failed" };
        counter!(if retrying { "jobs_retried_total" } else { "jobs_failed_total" }, "queue" => name)
            .increment(1);
        histogram!("job_duration_seconds", "queue" => name, "outcome" => outcome)
            .record(self.started.elapsed().as_secs_f64());
        let detail = error.to_string();
        let public = error.public(service(self.lane.queue), retrying);
        tracing::error!(
            duration_ms = self.duration_ms(),
            error = %detail,
            code = public.code,
            permanent = error.is_permanent(),
            retrying,
            "job failed"
        );
        if let Some(run) = meta.run {
            let failure = Failure {
                public: &public,
                detail: &detail,
            };
            match records::attempt_failed(&ctx.pool, run, self.number, failure, retrying).await {
                Ok(true) => ctx.changed(run.job_id),
                Ok(false) => {
                    tracing::warn!("a newer attempt owns the record; this failure is not recorded")
                }
                Err(db) => tracing::warn!(error = %db, "could not record the failure"),
            }
        }
        self.lane.reported.attempt_failed(&meta.id);
        let next = if retrying {
            "retried after a backoff"
        } else if error.is_permanent() {
            "failed for good (permanent)"
        } else {
            "failed for good (out of attempts)"
        };
        meta.log(&format!(
            "attempt {} of {}: {detail}; {next}",
            self.number, self.max
        ))
        .await;
        // BullMQ keeps the full reason: operators read it in the dead-letter set.
        if error.is_permanent() {
            bullmq::Error::Unrecoverable(detail)
        } else {
            bullmq::Error::ProcessingError(detail)
        }
    }

    fn duration_ms(&self) -> u128 {
        self.started.elapsed().as_millis()
    }
}

/// Tells BullMQ to hand out no job of `queue` for `wait_ms`, on every worker.
async fn pause_queue(ctx: &JobContext, queue: QueueName, wait_ms: u64) -> anyhow::Result<()> {
    ctx.queues.queue(queue).await?.rate_limit(wait_ms).await?;
    Ok(())
}
