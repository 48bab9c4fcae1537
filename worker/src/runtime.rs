//! Runs one BullMQ worker per queue, keeps job records current, logs every
//! job once, and shuts down gracefully.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::queue_options::worker_options;
use anyhow::Context as _;
use bullmq::worker::WorkerEvent;
use metrics::{counter, histogram};
use serde_json::{Value, json};
use shared::config::Settings;
use shared::jobs::QueueName;
use shared::records::{self, Failure, JobState, PublicError, Started};
use tokio::task::JoinHandle;
use tracing::Instrument;
use uuid::Uuid;

use crate::context::JobContext;
use crate::error::JobError;
use crate::jobs::{Dispatcher, Handler, JobMeta, service};

/// A task that ends with its owner (the worker's HTTP server ends with the runtime).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How long to wait before trying Redis again when it is down at start-up.
const CONNECT_RETRY: Duration = Duration::from_secs(2);

/// Consumes `queues` until `shutdown` resolves, then drains in-flight jobs
/// for up to `SHUTDOWN_TIMEOUT_SECS`. Jobs still running after that keep
/// their Redis lock until it expires, when BullMQ's stalled-job check hands
/// them to another worker: nothing is lost.
pub async fn run(
    settings: &Settings,
    queues: &[QueueName],
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_with(settings, queues, Arc::new(Dispatcher), shutdown).await
}

/// [`run`] with another [`Handler`] doing the work, e.g. a no-op for benchmarks.
pub async fn run_with<H: Handler>(
    settings: &Settings,
    queues: &[QueueName],
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let ctx = Arc::new(JobContext::build(settings)?);
    let stopping = Arc::new(AtomicBool::new(false));
    let _server = match settings.worker_http_port {
        Some(port) => {
            let listener = crate::http::bind(port).await?;
            shared::metrics::handle();
            let probe = crate::http::Probe {
                queues: Arc::new(queues.to_vec()),
                redis: Arc::new(shared::queue::JobQueues::new(settings)),
                stopping: stopping.clone(),
            };
            tracing::info!(port, "serving /healthz and /metrics");
            Some(AbortOnDrop(tokio::spawn(crate::http::serve(
                listener, probe,
            ))))
        }
        None => None,
    };
    if let (true, Some(interval)) = (
        queues.contains(&QueueName::Maintenance),
        settings.maintenance.interval,
    ) {
        // Best effort at start: with Redis down the workers below wait for
        // it anyway, and the next start (or another worker) schedules.
        match crate::jobs::maintenance::schedule(&ctx.queues, interval).await {
            Ok(()) => tracing::info!(every_secs = interval.as_secs(), "maintenance scheduled"),
            Err(error) => tracing::warn!(
                error = format!("{error:#}"),
                "could not schedule maintenance"
            ),
        }
    }
    let mut shutdown = std::pin::pin!(shutdown);
    let mut workers = Vec::with_capacity(queues.len());
    for &queue in queues {
        tokio::select! {
            worker = connect(settings, &ctx, &handler, queue) => workers.push(worker),
            () = &mut shutdown => return Ok(()),
        }
    }
    shutdown.await;
    stopping.store(true, Ordering::Relaxed);

    tracing::info!(
        timeout_secs = settings.shutdown_timeout.as_secs(),
        "stopping: no new jobs; waiting for in-flight jobs"
    );
    let timeout_ms = shared::millis(settings.shutdown_timeout);
    let closing = workers.iter().map(|running| async move {
        if let Err(error) = running.worker.close(timeout_ms).await {
            tracing::warn!(queue = %running.queue, %error, "worker did not close cleanly");
        }
        running.events.abort();
    });
    futures::future::join_all(closing).await;
    tracing::info!("worker stopped");
    Ok(())
}

struct RunningWorker {
    queue: QueueName,
    worker: Arc<bullmq::Worker>,
    events: JoinHandle<()>,
}

/// Starts consuming `queue`, retrying until Redis answers: a worker started
/// before Redis (or during an outage) waits instead of crash-looping.
async fn connect<H: Handler>(
    settings: &Settings,
    ctx: &Arc<JobContext>,
    handler: &Arc<H>,
    queue: QueueName,
) -> RunningWorker {
    let lane = Arc::new(Lane {
        queue,
        timeout: settings.queue(queue).timeout,
        misconfigured: AtomicBool::new(false),
        reported: Mutex::new(HashSet::new()),
    });
    loop {
        let (for_jobs, handler, for_lane) = (ctx.clone(), handler.clone(), lane.clone());
        let processor =
            move |job, _cancel| process(for_jobs.clone(), handler.clone(), for_lane.clone(), job);
        let options = worker_options(settings, queue);
        let concurrency = options.concurrency;
        match bullmq::Worker::with_options(queue.as_str(), processor, options)
            .await
            .with_context(|| format!("cannot start consuming {queue}"))
        {
            Ok(worker) => {
                tracing::info!(%queue, concurrency, "consuming queue");
                let worker = Arc::new(worker);
                let events =
                    tokio::spawn(watch_events(lane.clone(), worker.clone(), ctx.pool.clone()));
                return RunningWorker {
                    queue,
                    worker,
                    events,
                };
            }
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "redis unavailable; retrying");
                tokio::time::sleep(CONNECT_RETRY).await;
            }
        }
    }
}

/// Drains the worker's event channel (it is unbounded: left unread, it would
/// grow with every job), surfaces what the runtime does not log itself, and
/// records failures BullMQ decides without running our handler.
async fn watch_events(lane: Arc<Lane>, worker: Arc<bullmq::Worker>, pool: sqlx::PgPool) {
    let queue = lane.queue;
    while let Some(event) = worker.next_event().await {
        match event {
            WorkerEvent::Error(error) => tracing::warn!(%queue, %error, "queue error"),
            WorkerEvent::Stalled { job_id } => {
                tracing::warn!(%queue, job.id = %job_id, "job stalled; it will run again");
            }
            WorkerEvent::Failed { job_id, error } => {
                if lane.reported().remove(&job_id) {
                    continue; // our handler failed it and already said so
                }
                let Ok(id) = Uuid::parse_str(&job_id) else {
                    continue;
                };
                let public = PublicError {
                    code: "interrupted",
                    message: format!(
                        "{} was interrupted too often and has stopped; our team has been told.",
                        service(queue)
                    ),
                };
                let failure = Failure {
                    public: &public,
                    detail: &error,
                };
                match records::fail_unowned(&pool, id, JobState::Active, failure).await {
                    Ok(true) => tracing::error!(%queue, job.id = %job_id, %error, "job failed"),
                    Ok(false) => {} // a worker's handler already recorded it
                    Err(db) => {
                        tracing::warn!(%queue, job.id = %job_id, error = %db, "could not record the failure")
                    }
                }
            }
            WorkerEvent::Closed => break,
            _ => {}
        }
    }
}

/// What the runtime keeps per queue between jobs.
struct Lane {
    queue: QueueName,
    /// An attempt running longer fails (`QUEUE_<NAME>_TIMEOUT_SECS`).
    timeout: Duration,
    /// A provider refused our credentials and no job has succeeded since:
    /// the operator has been told once, and is told again only after it heals.
    misconfigured: AtomicBool,
    /// Jobs whose failure our handler reported (and recorded, if it still
    /// owned the record). BullMQ announces every failure as an event; these
    /// are skipped there, so only failures BullMQ decides by itself (a job
    /// that stalled too often) are recorded from the event.
    reported: Mutex<HashSet<String>>,
}

impl Lane {
    fn reported(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panic while holding it cannot leave the set inconsistent.
        self.reported
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One attempt at one job: record, run, record, log once.
async fn process<H: Handler>(
    ctx: Arc<JobContext>,
    handler: Arc<H>,
    lane: Arc<Lane>,
    job: bullmq::Job,
) -> Result<Value, bullmq::Error> {
    let queue = lane.queue;
    let attempt = job.attempts_made() + 1;
    let max_attempts = job.opts().attempts.unwrap_or(1).max(1);
    let span = tracing::info_span!(
        "job",
        %queue,
        job.id = %job.id(),
        attempt,
        user_id = tracing::field::Empty,
        request_id = tracing::field::Empty
    );
    let started = Instant::now();
    // Jobs we enqueued carry their record's id as BullMQ job id. The record
    // is taken before the span is first entered: the span continues the
    // trace of the request that recorded the job, and a trace's parent is
    // fixed once its span has started.
    let start = match Uuid::parse_str(job.id()) {
        Ok(id) => Some(records::start(&ctx.pool, id).await),
        Err(_) => None,
    };
    if let Some(Ok(Started::Run(_, origin))) = &start {
        if let Some(request_id) = &origin.request_id {
            // The api's log lines of the request that recorded the job have it too.
            span.record("request_id", request_id.as_str());
        }
        if let Some(trace_parent) = &origin.trace_parent {
            shared::telemetry::continue_trace(&span, trace_parent);
        }
    }
    async move {
        let run = match start {
            Some(start) => match start {
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
            },
            None => None,
        };
        let meta = JobMeta {
            id: job.id().to_owned(),
            attempt,
            run,
            // A tenth before the runtime gives up: work that checks it stops
            // first and can say why (a photo too slow to decode fails for
            // good instead of being retried as a timeout).
            deadline: started + lane.timeout - lane.timeout / 10,
            queued: job.clone(),
        };
        tracing::info!("job started");
        let name = queue.as_str();
        counter!("jobs_started_total", "queue" => name).increment(1);
        let work = handler.handle(&ctx, queue, &meta, job.data());
        let outcome = match tokio::time::timeout(lane.timeout, work).await {
            Ok(outcome) => outcome,
            // Dropping the handler's future stops its I/O; CPU work on a
            // blocking thread checks `meta.deadline` and stops by itself.
            Err(_) => Err(JobError::TimedOut(anyhow::anyhow!(
                "the attempt ran longer than the queue's {:?} timeout",
                lane.timeout
            ))),
        };
        let duration_ms = started.elapsed().as_millis();
        let seconds = started.elapsed().as_secs_f64();
        let outcome = match (outcome, run) {
            // If this write fails the job is retried, and the idempotent
            // handler finds its work done, so the record catches up.
            (Ok(result), Some(run)) => records::completed(&ctx.pool, run, attempt, &result)
                .await
                .map(|taken| {
                    if !taken {
                        tracing::warn!(
                            "a newer attempt owns the record; this result is not recorded"
                        );
                    }
                    result
                })
                .map_err(JobError::from),
            (outcome, _) => outcome,
        };
        match outcome {
            Ok(result) => {
                tracing::info!(duration_ms, "job completed");
                counter!("jobs_completed_total", "queue" => name).increment(1);
                histogram!("job_duration_seconds", "queue" => name, "outcome" => "completed")
                    .record(seconds);
                if lane.misconfigured.swap(false, Ordering::Relaxed) {
                    tracing::info!("the provider accepts our credentials again");
                }
                Ok(result)
            }
            Err(error @ (JobError::RateLimited(..) | JobError::Misconfigured(_))) => {
                let wait = match &error {
                    JobError::RateLimited(wait, _) => *wait,
                    _ => ctx.config_fault_pause,
                };
                let detail = format!("{error}; queue paused for {wait:?}");
                let reason = if matches!(error, JobError::RateLimited(..)) {
                    "rate_limited"
                } else {
                    "misconfigured"
                };
                counter!("jobs_deferred_total", "queue" => name, "reason" => reason).increment(1);
                if matches!(error, JobError::RateLimited(..)) {
                    tracing::warn!(duration_ms, error = %detail, "rate limited by the provider");
                } else if !lane.misconfigured.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        duration_ms,
                        error = %detail,
                        "the provider refused our credentials: fix the configuration; \
                         jobs wait (they are not failed) and are retried every pause"
                    );
                } else {
                    tracing::debug!(error = %detail, "still misconfigured");
                }
                let wait_ms = shared::millis(wait).max(1);
                if let Err(redis) = pause_queue(&ctx, queue, wait_ms).await {
                    // The job still goes back to wait; it will just be tried sooner.
                    tracing::warn!(error = %redis, "could not pause the queue");
                }
                let public = error.public(queue, true);
                if let Some(run) = run {
                    let failure = Failure {
                        public: &public,
                        detail: &detail,
                    };
                    if let Err(db) = records::requeued(&ctx.pool, run, failure).await {
                        tracing::warn!(error = %db, "could not record the requeue");
                    }
                }
                Err(bullmq::Error::RateLimited { delay_ms: wait_ms })
            }
            Err(error) => {
                let retrying = !error.is_permanent() && attempt < max_attempts;
                let outcome = if retrying { "retried" } else { "failed" };
                if retrying {
                    counter!("jobs_retried_total", "queue" => name).increment(1);
                } else {
                    counter!("jobs_failed_total", "queue" => name).increment(1);
                }
                histogram!("job_duration_seconds", "queue" => name, "outcome" => outcome)
                    .record(seconds);
                let detail = error.to_string();
                let public = error.public(queue, retrying);
                tracing::error!(
                    duration_ms,
                    error = %detail,
                    code = public.code,
                    permanent = error.is_permanent(),
                    retrying,
                    "job failed"
                );
                if let Some(run) = run {
                    let failure = Failure {
                        public: &public,
                        detail: &detail,
                    };
                    match records::attempt_failed(&ctx.pool, run, attempt, failure, retrying).await
                    {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(
                            "a newer attempt owns the record; this failure is not recorded"
                        ),
                        Err(db) => tracing::warn!(error = %db, "could not record the failure"),
                    }
                }
                lane.reported().insert(meta.id.clone());
                // BullMQ keeps the full reason: operators read it in the
                // dead-letter set.
                Err(if error.is_permanent() {
                    bullmq::Error::Unrecoverable(detail)
                } else {
                    bullmq::Error::ProcessingError(detail)
                })
            }
        }
    }
    .instrument(span)
    .await
}

/// Tells BullMQ to hand out no job of `queue` for `wait_ms`, on every worker.
async fn pause_queue(ctx: &JobContext, queue: QueueName, wait_ms: u64) -> anyhow::Result<()> {
    ctx.queues.queue(queue).await?.rate_limit(wait_ms).await?;
    Ok(())
}
