//! Delivery latency: one stream per user, job-record changes at a steady
//! rate, each committed then published on the change feed as the worker
//! does, and the time from the commit's return to the frame's arrival.
//! The bench also listens to the feed itself, as the api does: when it
//! hears a change splits that time into the feed's part (the publisher's
//! batching, Redis) and the api's (reading the record, writing the frame).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use queue::JobQueues;
use queue::feed::{Change, Heard, Publisher, Subscription};
use sqlx::postgres::PgPoolOptions;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::http::Events;
use crate::{Target, cpu_ticks, job_id, job_number, row, say, token, var, var_or};

/// How long changes still undelivered once the last was sent are waited
/// for before they count as missing.
const DRAIN: Duration = Duration::from_secs(10);

/// What the writers and the readers share.
#[derive(Default)]
struct Ledger {
    /// Changes committed and not yet seen, by job (one in flight each).
    sent: HashMap<Uuid, Sent>,
    /// Per user (index 0 is unused): a change of theirs is in flight. The
    /// api reads a job's record when it hears the change, so a second
    /// change before the first's frame could make that frame show the
    /// second's progress: the first would look lost, and was not.
    busy: Vec<bool>,
    /// The progress last written, per user.
    progress: Vec<i16>,
    /// Commit → frame, per change delivered.
    latencies: Vec<Duration>,
    /// Commit → heard on the feed, and heard → frame, where the bench
    /// heard the change first.
    via_feed: Vec<Duration>,
    in_api: Vec<Duration>,
    /// Job frames matching no change sent (a replay, a duplicate).
    unexpected: usize,
    committed: usize,
}

/// A change committed and not yet seen on its stream.
struct Sent {
    progress: i16,
    committed: Instant,
    heard: Option<Instant>,
}

type Shared = Arc<Mutex<Ledger>>;

fn lock(ledger: &Shared) -> MutexGuard<'_, Ledger> {
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A job frame as it arrived.
struct Arrival {
    job: Uuid,
    progress: i16,
    at: Instant,
}

/// Runs the round and reports; `false` when a change was not delivered.
pub async fn run(target: &Target) -> anyhow::Result<bool> {
    let users: u64 = var_or("STREAMS", 1_000)?;
    let rate: u32 = var_or("CHANGES_PER_SEC", 100)?;
    let secs: u32 = var_or("SECS", 20)?;
    let clk_tck: f64 = var_or("CLK_TCK", 100.0)?;
    let settings = platform::config::Settings::from_lookup(|key| std::env::var(key).ok())
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&var::<String>("DATABASE_URL")?)
        .await?;
    let feed = Publisher::spawn(Arc::new(JobQueues::new(&settings.redis, settings.queues)));
    let subscription = Subscription::subscribe(&settings.redis).await?;

    crate::wait_until_streams_open(target.addr).await?;
    say(format!("opening {users} streams, one per user"));
    let (arrivals, mut heard) = mpsc::unbounded_channel();
    let mut readers = Vec::new();
    for user in 1..=users {
        let stream = Events::open(target.addr, &token(user))
            .await
            .with_context(|| format!("user {user}'s stream"))?;
        readers.push(tokio::spawn(read(stream, arrivals.clone())));
    }
    drop(arrivals);
    let ledger: Shared = Arc::new(Mutex::new(Ledger {
        busy: vec![false; usize::try_from(users)? + 1],
        progress: vec![0; usize::try_from(users)? + 1],
        ..Ledger::default()
    }));
    let collector = {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            while let Some(arrival) = heard.recv().await {
                let mut ledger = lock(&ledger);
                let ours = ledger
                    .sent
                    .get(&arrival.job)
                    .is_some_and(|sent| sent.progress == arrival.progress);
                let Some(sent) = ours.then(|| ledger.sent.remove(&arrival.job)).flatten() else {
                    ledger.unexpected += 1;
                    continue;
                };
                ledger.latencies.push(arrival.at - sent.committed);
                if let Some(heard) = sent.heard {
                    ledger.via_feed.push(heard - sent.committed);
                    ledger
                        .in_api
                        .push(arrival.at.saturating_duration_since(heard));
                }
                if let Ok(user) = usize::try_from(job_number(arrival.job)) {
                    ledger.busy[user] = false;
                }
            }
        })
    };
    let listener = tokio::spawn(listen(subscription, ledger.clone()));
    // Past the opening's own work (token lookups, the first heartbeat).
    tokio::time::sleep(Duration::from_secs(2)).await;
    // What the api spends anyway with these streams open (heartbeats, the
    // token sweep, the feed's probes), over as long as the changes take.
    say(format!("{secs} s with the streams idle"));
    let idle_before = cpu_ticks(target.pid)?;
    tokio::time::sleep(Duration::from_secs(u64::from(secs))).await;
    let cpu_idle = (cpu_ticks(target.pid)? - idle_before) as f64 / clk_tck;

    let total = u64::from(rate) * u64::from(secs);
    say(format!("{rate} changes a second for {secs} s"));
    let cpu_before = cpu_ticks(target.pid)?;
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    let mut writers = Vec::new();
    let mut random = 0x853c_49e6_748f_ea9b_u64;
    let mut skipped = 0_u64;
    for _ in 0..total {
        ticks.tick().await;
        let Some((user, progress)) = pick(&ledger, users, &mut random) else {
            skipped += 1;
            continue;
        };
        let (pool, feed, ledger) = (pool.clone(), feed.clone(), ledger.clone());
        // Its own task: a slow commit must not hold the schedule back.
        writers.push(tokio::spawn(async move {
            let job = job_id(user);
            sqlx::query("update jobs set progress = $2, updated_at = now() where job_id = $1")
                .bind(job)
                .bind(progress)
                .execute(&pool)
                .await?;
            let committed = Instant::now();
            {
                let mut ledger = lock(&ledger);
                let sent = Sent {
                    progress,
                    committed,
                    heard: None,
                };
                ledger.sent.insert(job, sent);
                ledger.committed += 1;
            }
            // As the worker does after each commit.
            feed.publish(Change::Job(job));
            anyhow::Ok(())
        }));
    }
    for writer in writers {
        writer.await??;
    }
    let sending = started.elapsed();
    let drain_until = Instant::now() + DRAIN;
    while !lock(&ledger).sent.is_empty() && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = (cpu_ticks(target.pid)? - cpu_before) as f64 / clk_tck;
    // A stream that ended took its user's later changes with it: say why.
    let mut ended = 0_usize;
    for reader in readers {
        if reader.is_finished() {
            ended += 1;
            if let Ok(Err(error)) = reader.await {
                say(format!("a stream ended: {error:#}"));
            }
        } else {
            reader.abort();
        }
    }
    collector.abort();
    listener.abort();

    let mut ledger = lock(&ledger);
    let missing = ledger.sent.len();
    let delivered = ledger.latencies.len();
    row(
        "latency: streams (one per user)",
        format!("{users} ({ended} ended during the run)"),
    )?;
    row(
        "latency: changes committed + published",
        format!(
            "{} in {:.1} s ({:.0}/s; {skipped} not sent: every user busy)",
            ledger.committed,
            sending.as_secs_f64(),
            ledger.committed as f64 / sending.as_secs_f64()
        ),
    )?;
    row(
        "latency: delivered / missing",
        format!(
            "{delivered} / {missing} (unexpected frames: {})",
            ledger.unexpected
        ),
    )?;
    row(
        "latency: commit → frame p50 / p99 / max",
        spread(&mut ledger.latencies),
    )?;
    row(
        "latency: of which commit → heard on the feed",
        spread(&mut ledger.via_feed),
    )?;
    row(
        "latency: of which heard → frame (the api)",
        spread(&mut ledger.in_api),
    )?;
    row(
        "latency: api CPU, changes / idle as long",
        format!("{cpu:.2} s / {cpu_idle:.2} s"),
    )?;
    let per_event = |seconds: f64| seconds * 1e6 / delivered.max(1) as f64;
    row(
        "latency: api CPU per delivered event (net of idle)",
        format!(
            "{:.0} µs ({:.0} µs)",
            per_event(cpu),
            per_event(cpu - cpu_idle)
        ),
    )?;
    Ok(missing == 0 && ledger.committed > 0)
}

/// A user with no change in flight, chosen at random, and the progress
/// their job is set to next (1 to 100, never the one it has).
fn pick(ledger: &Shared, users: u64, random: &mut u64) -> Option<(u64, i16)> {
    let mut ledger = lock(ledger);
    for _ in 0..users {
        *random = random
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let user = (*random >> 33) % users + 1;
        let index = usize::try_from(user).ok()?;
        if !ledger.busy[index] {
            ledger.busy[index] = true;
            let progress = ledger.progress[index] % 100 + 1;
            ledger.progress[index] = progress;
            return Some((user, progress));
        }
    }
    None
}

/// p50 / p99 / max of `durations`, in milliseconds.
fn spread(durations: &mut [Duration]) -> String {
    durations.sort_unstable();
    let at = |quantile: f64| {
        let last = durations.len().saturating_sub(1);
        let index = ((last as f64) * quantile).round() as usize;
        durations
            .get(index)
            .map_or(f64::NAN, |duration| duration.as_secs_f64() * 1000.0)
    };
    format!(
        "{:.2} / {:.2} / {:.2} ms ({} changes)",
        at(0.5),
        at(0.99),
        at(1.0),
        durations.len()
    )
}

/// Notes when the feed carries each change in flight: the api's listener
/// hears the same message at about the same moment.
async fn listen(mut subscription: Subscription, ledger: Shared) {
    while let Heard::Changes(changes) = subscription.next().await {
        let now = Instant::now();
        let mut ledger = lock(&ledger);
        for change in changes.into_iter().flatten() {
            if let Change::Job(job) = change
                && let Some(sent) = ledger.sent.get_mut(&job)
            {
                sent.heard.get_or_insert(now);
            }
        }
    }
}

/// Hands every job frame of `stream` to the collector, with its arrival.
async fn read(mut stream: Events, arrivals: mpsc::UnboundedSender<Arrival>) -> anyhow::Result<()> {
    loop {
        let (frames, at) = stream.next().await?;
        for frame in frames.iter().filter(|frame| frame.event == "job") {
            let status: serde_json::Value = serde_json::from_str(&frame.data)?;
            let job = status["id"]
                .as_str()
                .and_then(|id| Uuid::try_parse(id).ok())
                .context("a job frame without an id")?;
            let progress = status["progress"]
                .as_i64()
                .and_then(|progress| i16::try_from(progress).ok())
                .context("a job frame without a progress")?;
            if arrivals.send(Arrival { job, progress, at }).is_err() {
                return Ok(());
            }
        }
    }
}
