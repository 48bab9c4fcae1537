//! Runs one BullMQ worker per queue, keeps job records current, logs every
//! job once, and shuts down gracefully.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bullmq::worker::WorkerEvent;
use serde_json::Value;
use shared::config::Settings;
use shared::jobs::QueueName;
use shared::queue::worker_options;
use tokio::task::JoinHandle;
use tracing::Instrument;
use uuid::Uuid;

use crate::context::Context;
use crate::error::JobError;
use crate::jobs::{Catalogue, Handler, JobMeta};
use crate::records;

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
    run_with(settings, queues, Arc::new(Catalogue), shutdown).await
}

/// [`run`] with another [`Handler`] doing the work, e.g. a no-op for benchmarks.
pub async fn run_with<H: Handler>(
    settings: &Settings,
    queues: &[QueueName],
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let ctx = Arc::new(Context::build(settings)?);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut workers = Vec::with_capacity(queues.len());
    for &queue in queues {
        tokio::select! {
            worker = connect(settings, &ctx, &handler, queue) => workers.push(worker),
            () = &mut shutdown => return Ok(()),
        }
    }
    shutdown.await;

    tracing::info!(
        timeout_secs = settings.shutdown_timeout.as_secs(),
        "stopping: no new jobs; waiting for in-flight jobs"
    );
    let timeout_ms = u64::try_from(settings.shutdown_timeout.as_millis()).unwrap_or(u64::MAX);
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
    ctx: &Arc<Context>,
    handler: &Arc<H>,
    queue: QueueName,
) -> RunningWorker {
    loop {
        let (for_jobs, handler) = (ctx.clone(), handler.clone());
        let processor = move |job, _cancel| process(for_jobs.clone(), handler.clone(), queue, job);
        let options = worker_options(settings, queue);
        let concurrency = options.concurrency;
        match bullmq::Worker::with_options(queue.as_str(), processor, options)
            .await
            .with_context(|| format!("cannot start consuming {queue}"))
        {
            Ok(worker) => {
                tracing::info!(%queue, concurrency, "consuming queue");
                let worker = Arc::new(worker);
                let events = tokio::spawn(watch_events(queue, worker.clone(), ctx.pool.clone()));
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
async fn watch_events(queue: QueueName, worker: Arc<bullmq::Worker>, pool: sqlx::PgPool) {
    while let Some(event) = worker.next_event().await {
        match event {
            WorkerEvent::Error(error) => tracing::warn!(%queue, %error, "queue error"),
            WorkerEvent::Stalled { job_id } => {
                tracing::warn!(%queue, job.id = %job_id, "job stalled; it will run again");
            }
            WorkerEvent::Failed { job_id, error } => {
                let Ok(id) = Uuid::parse_str(&job_id) else {
                    continue;
                };
                match records::failed_by_queue(&pool, id, &error).await {
                    Ok(true) => tracing::error!(%queue, job.id = %job_id, %error, "job failed"),
                    Ok(false) => {} // our handler failed it and already said so
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

/// One attempt at one job: record, run, record, log once.
async fn process<H: Handler>(
    ctx: Arc<Context>,
    handler: Arc<H>,
    queue: QueueName,
    job: bullmq::Job,
) -> Result<Value, bullmq::Error> {
    let meta = JobMeta {
        id: job.id().to_owned(),
        attempt: job.attempts_made() + 1,
        // Jobs we enqueued carry their record's id as BullMQ job id.
        record: Uuid::parse_str(job.id()).ok(),
    };
    let max_attempts = job.opts().attempts.unwrap_or(1).max(1);
    let record = meta.record;
    let span = tracing::info_span!("job", %queue, job.id = %meta.id, attempt = meta.attempt);
    async move {
        let started = Instant::now();
        tracing::info!("job started");
        let outcome = attempt(&ctx, &*handler, queue, &meta, job.data()).await;
        let duration_ms = started.elapsed().as_millis();
        match outcome {
            Ok(result) => {
                tracing::info!(duration_ms, "job completed");
                Ok(result)
            }
            Err(JobError::RateLimited(wait, cause)) => {
                let reason = format!("{cause:#}; queue paused for {wait:?}");
                tracing::warn!(duration_ms, error = %reason, "rate limited by the provider");
                let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
                if let Err(redis) = pause_queue(&ctx, queue, wait_ms).await {
                    // The job still goes back to wait; it will just be tried sooner.
                    tracing::warn!(error = %redis, "could not pause the queue");
                }
                if let Some(id) = record
                    && let Err(db) = records::requeued(&ctx.pool, id, &reason).await
                {
                    tracing::warn!(error = %db, "could not record the requeue");
                }
                Err(bullmq::Error::RateLimited { delay_ms: wait_ms })
            }
            Err(error) => {
                let retrying = !error.is_permanent() && meta.attempt < max_attempts;
                let reason = error.to_string();
                tracing::error!(
                    duration_ms,
                    error = %reason,
                    permanent = error.is_permanent(),
                    retrying,
                    "job failed"
                );
                if let Some(id) = record
                    && let Err(db) =
                        records::attempt_failed(&ctx.pool, id, meta.attempt, &reason, retrying)
                            .await
                {
                    tracing::warn!(error = %db, "could not record the failure");
                }
                Err(if error.is_permanent() {
                    bullmq::Error::Unrecoverable(reason)
                } else {
                    bullmq::Error::ProcessingError(reason)
                })
            }
        }
    }
    .instrument(span)
    .await
}

/// Tells BullMQ to hand out no job of `queue` for `wait_ms`, on every worker.
async fn pause_queue(ctx: &Context, queue: QueueName, wait_ms: u64) -> anyhow::Result<()> {
    ctx.queues.queue(queue).await?.rate_limit(wait_ms).await?;
    Ok(())
}

async fn attempt<H: Handler>(
    ctx: &Context,
    handler: &H,
    queue: QueueName,
    meta: &JobMeta,
    data: &Value,
) -> Result<Value, JobError> {
    if let Some(id) = meta.record {
        records::started(&ctx.pool, id).await?;
    }
    let result = handler.handle(ctx, queue, meta, data).await?;
    if let Some(id) = meta.record {
        // If this fails, the job is retried and the idempotent handler
        // finds its work done, so the record catches up.
        records::completed(&ctx.pool, id, meta.attempt, &result).await?;
    }
    Ok(result)
}
