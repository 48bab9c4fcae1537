//! Queue benchmark, Rust side: our worker runtime with a no-op job handler,
//! on the same Redis and with the same scenarios as `bench/node/bench.mjs`.
//! Driven by `scripts/bench-queue`, which compares the two; one scenario per
//! process so peak RSS belongs to that scenario alone.
//!
//! ```text
//! queue add <jobs>                  bulk add, 1000 per batch
//! queue work <jobs> <concurrency>   process pre-loaded jobs
//! queue engine <jobs> <concurrency> the same with a bare bullmq Worker (our
//!                                   options, no runtime), to see what ours costs
//! queue mixed <jobs> <concurrency>  a producer (bulks of 100) and the worker together
//! queue latency <samples>           idle queue: enqueue → handler start, one at a time
//! queue signup <samples>            a signup's four jobs enqueued concurrently, no worker
//! ```
//! Each prints one JSON line. Logs are off, as in the Node worker.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bullmq::types::RemoveOnFinish;
use bullmq::{BulkJob, JobOptions, Queue};
use catalogue::QueueName;
use platform::config::Settings;
use queue::JobQueues;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use worker::context::JobContext;
use worker::error::JobError;
use worker::jobs::{Handler, JobMeta};

const QUEUE: QueueName = QueueName::WelcomeEmail;

/// Counts jobs and optionally reports when each one started.
struct NoOp {
    done: AtomicUsize,
    target: usize,
    finished: Notify,
    started: Option<mpsc::UnboundedSender<Instant>>,
}

impl Handler for NoOp {
    async fn handle(
        &self,
        _ctx: &JobContext,
        _queue: QueueName,
        _job: &JobMeta,
        _data: &Value,
    ) -> Result<Value, JobError> {
        if let Some(started) = &self.started {
            let _ = started.send(Instant::now());
        }
        if self.done.fetch_add(1, Ordering::Relaxed) + 1 == self.target {
            self.finished.notify_one();
        }
        Ok(Value::Null)
    }
}

fn settings(concurrency: usize) -> Settings {
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut settings = Settings::from_lookup(|key| match key {
        // Never connected: no-op jobs have no records to update.
        "DATABASE_URL" => Some("postgres://unused@127.0.0.1:1/unused".into()),
        "REDIS_URL" => Some(redis.clone()),
        _ => None,
    })
    .expect("benchmark settings are valid");
    settings.queues.welcome_email.concurrency = concurrency;
    settings.worker.shutdown_timeout = Duration::from_secs(30);
    settings
}

fn no_op_jobs(count: usize, offset: usize) -> Vec<BulkJob> {
    (offset..offset + count)
        .map(|n| {
            BulkJob::new(QUEUE.as_str(), json!({ "n": n }))
                .options(JobOptions::new().remove_on_complete(RemoveOnFinish::Bool(true)))
        })
        .collect()
}

async fn add(queue: &Queue, jobs: usize, batch: usize) {
    let mut added = 0;
    while added < jobs {
        let count = batch.min(jobs - added);
        queue
            .add_bulk(no_op_jobs(count, added))
            .await
            .expect("redis accepts the batch");
        added += count;
    }
}

/// Runs our worker runtime until `handler` has seen `target` jobs, then
/// shuts it down gracefully (so every completion is written).
async fn work_until_done(concurrency: usize, handler: Arc<NoOp>) {
    let settings = settings(concurrency);
    let finished = handler.clone();
    worker::runtime::run_with(&settings, &[QUEUE], handler, async move {
        finished.finished.notified().await;
    })
    .await
    .expect("the runtime runs");
}

fn no_op(target: usize, started: Option<mpsc::UnboundedSender<Instant>>) -> Arc<NoOp> {
    Arc::new(NoOp {
        done: AtomicUsize::new(0),
        target,
        finished: Notify::new(),
        started,
    })
}

fn report(line: &Value) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").expect("stdout is writable");
}

fn throughput(op: &str, jobs: usize, concurrency: Option<usize>, elapsed: Duration) -> Value {
    json!({
        "impl": "rust",
        "op": op,
        "jobs": jobs,
        "concurrency": concurrency,
        "secs": elapsed.as_secs_f64(),
        "jobs_per_sec": jobs as f64 / elapsed.as_secs_f64(),
        "peak_rss_mb": testkit::peak_rss_mb(),
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let number = |i: usize| -> usize {
        args.get(i)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("argument {i} must be a number: {args:?}"))
    };
    let producer = settings(1);
    let queues = JobQueues::new(&producer.redis, producer.queues);
    let queue = queues.queue(QUEUE).await.expect("redis is reachable");
    match args.first().map(String::as_str) {
        Some("add") => {
            let jobs = number(1);
            let started = Instant::now();
            add(queue, jobs, 1000).await;
            report(&throughput("add", jobs, None, started.elapsed()));
        }
        Some("work") => {
            let (jobs, concurrency) = (number(1), number(2));
            let started = Instant::now();
            work_until_done(concurrency, no_op(jobs, None)).await;
            report(&throughput(
                "work",
                jobs,
                Some(concurrency),
                started.elapsed(),
            ));
        }
        Some("engine") => {
            let (jobs, concurrency) = (number(1), number(2));
            let handler = no_op(jobs, None);
            let counter = handler.clone();
            let started = Instant::now();
            let consumer = settings(concurrency);
            let options =
                worker::queue_options::worker_options(&consumer.redis, &consumer.queue(QUEUE));
            let engine = bullmq::Worker::with_options(
                QUEUE.as_str(),
                move |_job, _cancel| {
                    let counter = counter.clone();
                    async move {
                        if counter.done.fetch_add(1, Ordering::Relaxed) + 1 == counter.target {
                            counter.finished.notify_one();
                        }
                        Ok(Value::Null)
                    }
                },
                options,
            )
            .await
            .expect("redis is reachable");
            let events = async {
                // Drained as our runtime does; unread, the channel grows per job.
                while engine.next_event().await.is_some() {}
            };
            tokio::select! {
                () = handler.finished.notified() => {}
                () = events => {}
            }
            engine.close(30_000).await.expect("closes");
            report(&throughput(
                "engine",
                jobs,
                Some(concurrency),
                started.elapsed(),
            ));
        }
        Some("mixed") => {
            let (jobs, concurrency) = (number(1), number(2));
            let started = Instant::now();
            let producer = add(queue, jobs, 100);
            let worker = work_until_done(concurrency, no_op(jobs, None));
            tokio::join!(producer, worker);
            report(&throughput(
                "mixed",
                jobs,
                Some(concurrency),
                started.elapsed(),
            ));
        }
        Some("latency") => {
            let samples = number(1);
            let (tx, mut rx) = mpsc::unbounded_channel();
            // One extra job warms the worker up before measuring.
            let handler = no_op(samples + 1, Some(tx));
            let worker = tokio::spawn(work_until_done(1, handler));
            let mut latencies = Vec::with_capacity(samples);
            for n in 0..=samples {
                let sent = Instant::now();
                add(queue, 1, 1).await;
                let began = rx.recv().await.expect("the handler reports each start");
                if n > 0 {
                    latencies.push(began.duration_since(sent).as_secs_f64() * 1_000.0);
                }
            }
            worker.await.expect("the worker stops");
            latencies.sort_by(f64::total_cmp);
            let at = |p: f64| {
                latencies
                    [((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
            };
            report(&json!({
                "impl": "rust", "op": "latency", "samples": samples,
                "p50_ms": at(0.5), "p99_ms": at(0.99), "peak_rss_mb": testkit::peak_rss_mb(),
            }));
        }
        Some("signup") => {
            // What a signup does after commit: one job into each signup
            // queue, concurrently, through the api's own `JobQueues`.
            let samples = number(1);
            let payload = json!({ "user_id": uuid::Uuid::now_v7() });
            let signup_queues = [
                QueueName::WelcomeEmail,
                QueueName::StripeCustomer,
                QueueName::SlackNotify,
                QueueName::OnboardingPdf,
            ];
            let mut latencies = Vec::with_capacity(samples);
            for n in 0..=samples {
                let sent = Instant::now();
                let added = futures::future::join_all(signup_queues.iter().map(|&queue| {
                    queues.enqueue(queue, uuid::Uuid::now_v7(), &payload, Duration::ZERO)
                }))
                .await;
                assert!(added.iter().all(Result::is_ok), "redis takes the jobs");
                // The first round connects and loads scripts; not measured.
                if n > 0 {
                    latencies.push(sent.elapsed().as_secs_f64() * 1_000.0);
                }
            }
            latencies.sort_by(f64::total_cmp);
            let at = |p: f64| {
                latencies
                    [((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
            };
            report(&json!({
                "impl": "rust", "op": "signup-enqueue", "jobs_per_signup": signup_queues.len(),
                "samples": samples, "p50_ms": at(0.5), "p99_ms": at(0.99),
            }));
        }
        _ => panic!("usage: queue add|work|mixed|latency|signup …"),
    }
}
