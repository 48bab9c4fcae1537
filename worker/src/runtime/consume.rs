//! A BullMQ worker per queue, until shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use catalogue::QueueName;
use platform::config::Settings;
use tokio::task::JoinHandle;

use super::attempt::{Lane, process};
use super::batch::Batcher;
use super::events::watch_events;
use crate::context::JobContext;
use crate::jobs::{Dispatcher, Handler};
use crate::queue_options::worker_options;

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
    if settings.worker.http_port.is_some() {
        // Before the context, whose parts register their metrics.
        platform::metrics::handle();
    }
    let ctx = Arc::new(JobContext::build(settings)?);
    let stopping = Arc::new(AtomicBool::new(false));
    let _server = match settings.worker.http_port {
        Some(port) => {
            let listener = crate::http::bind(port).await?;
            platform::metrics::handle();
            let probe = crate::http::Probe {
                queues: Arc::new(queues.to_vec()),
                redis: Arc::new(queue::JobQueues::new(&settings.redis, settings.queues)),
                stopping: stopping.clone(),
                metrics_token: settings
                    .server
                    .metrics_token
                    .as_ref()
                    .map(store::tokens::hash_setting),
                sampled: Arc::default(),
                eviction: Arc::default(),
                providers: Arc::new(settings.providers.clone()),
            };
            if probe.metrics_token.is_none() {
                tracing::warn!(
                    port,
                    "METRICS_TOKEN is not set: the worker's /metrics is open to anyone who \
                     reaches this port; set it, or keep the port private"
                );
            }
            tracing::info!(port, "serving /healthz and /metrics");
            Some(AbortOnDrop(tokio::spawn(crate::http::serve(
                listener,
                probe,
                settings.server.http,
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
    let context = ctx.clone();
    let _eviction = AbortOnDrop(tokio::spawn(async move {
        queue::watch_eviction_policy(&context.queues).await;
    }));
    let mut shutdown = std::pin::pin!(shutdown);
    let mut workers = Vec::with_capacity(queues.len());
    let mut signalled = false;
    for &queue in queues {
        tokio::select! {
            worker = connect(settings, &ctx, &handler, queue) => workers.push(worker),
            () = &mut shutdown => {
                // The queues already consuming may hold jobs (a batch may
                // be calling its provider): they close as below, never
                // dropped mid-job.
                signalled = true;
                break;
            }
        }
    }
    if !signalled {
        shutdown.await;
    }
    stopping.store(true, Ordering::Relaxed);

    tracing::info!(
        timeout_secs = settings.worker.shutdown_timeout.as_secs(),
        "stopping: no new jobs; waiting for in-flight jobs"
    );
    let timeout_ms = platform::millis(settings.worker.shutdown_timeout);
    // One deadline for the whole drain: an orchestrator's grace period
    // sized to the setting must not end while a batch is still recording.
    let deadline = tokio::time::Instant::now() + settings.worker.shutdown_timeout;
    let closing = futures::future::join_all(workers.iter().map(|running| async move {
        if let Err(error) = running.worker.close(timeout_ms).await {
            tracing::warn!(queue = %running.queue, %error, "worker did not close cleanly");
        }
        // BullMQ's close may return while a batch's run is still calling
        // its provider: the run records its jobs before the batcher stops.
        if let Some(batcher) = &running.batcher {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            batcher.finish_run(left).await;
        }
        running.events.abort();
    }));
    let mut closing = std::pin::pin!(closing);
    // Each close waits for its queue's blocking read to return: a second
    // when the queue is empty, up to 5 s when a delayed job is due later.
    // Woken, they return at once; again and again, because a worker of
    // another process may take the wake-up meant for ours.
    let mut wake = tokio::time::interval(WAKE_EVERY);
    loop {
        tokio::select! {
            // First, so every close has begun before the first wake-up.
            biased;
            _ = &mut closing => break,
            _ = wake.tick() => {
                // Best effort, all at once: with Redis slow or down, one
                // bounded wait per round, and the close only takes longer.
                let wakes = queues.iter().map(|&queue| ctx.queues.wake_consumers(queue));
                let _ = futures::future::join_all(wakes).await;
            }
        }
    }
    tracing::info!("worker stopped");
    Ok(())
}

/// How often a closing worker wakes its queues' blocking reads.
const WAKE_EVERY: Duration = Duration::from_millis(200);

struct RunningWorker {
    queue: QueueName,
    worker: Arc<bullmq::Worker>,
    events: JoinHandle<()>,
    /// A batched queue's batcher, waited on at shutdown.
    batcher: Option<Arc<Batcher>>,
    /// The batcher's task: it runs the jobs the worker holds, so it lives
    /// until the worker has closed.
    _batching: Option<AbortOnDrop<()>>,
}

/// Starts consuming `queue`, retrying until Redis answers: a worker started
/// before Redis (or during an outage) waits instead of crash-looping.
async fn connect<H: Handler>(
    settings: &Settings,
    ctx: &Arc<JobContext>,
    handler: &Arc<H>,
    queue: QueueName,
) -> RunningWorker {
    let lane = Arc::new(Lane::new(queue, settings.queue(queue).timeout));
    // A batched queue's jobs go to its batcher, which runs them together.
    let (batcher, batching) = match settings.queue(queue).batch {
        Some(batch) => {
            let (batcher, task) = Batcher::start(ctx.clone(), handler.clone(), lane.clone(), batch);
            (Some(batcher), Some(AbortOnDrop(task)))
        }
        None => (None, None),
    };
    let batcher_kept = batcher.clone();
    loop {
        let (for_jobs, handler, for_lane) = (ctx.clone(), handler.clone(), lane.clone());
        let batcher = batcher.clone();
        let processor = move |job, _cancel| {
            let (ctx, handler, lane, batcher) = (
                for_jobs.clone(),
                handler.clone(),
                for_lane.clone(),
                batcher.clone(),
            );
            async move {
                match batcher {
                    Some(batcher) => batcher.hold(job).await,
                    None => process(ctx, handler, lane, job).await,
                }
            }
        };
        let options = worker_options(&settings.redis, &settings.queue(queue));
        let concurrency = options.concurrency;
        match bullmq::Worker::with_options(&settings.redis.bullmq_name(queue), processor, options)
            .await
            .with_context(|| format!("cannot start consuming {queue}"))
        {
            Ok(worker) => {
                tracing::info!(%queue, concurrency, "consuming queue");
                let worker = Arc::new(worker);
                let events = tokio::spawn(watch_events(lane.clone(), worker.clone(), ctx.clone()));
                return RunningWorker {
                    queue,
                    worker,
                    events,
                    batcher: batcher_kept,
                    _batching: batching,
                };
            }
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "redis unavailable; retrying");
                tokio::time::sleep(CONNECT_RETRY).await;
            }
        }
    }
}
