//! What open streams cost the job writes, in the scale issue's terms: job
//! writes a second the writers reach. `CLIENTS` connections update job
//! records (one row by id per transaction, committed, then published on
//! the change feed as the worker does) as fast as they go for
//! `ROUND_SECS` seconds; rounds alternate between (a) no stream open, so
//! the api ignores what it hears, and (b) one stream for each of `STREAMS`
//! users, so the api reads every changed record back (one query per batch
//! of changes) and delivers it. `ROUNDS` of each, a, b, a, b, …
//!
//! Per round: updates a second, and the CPU the api, Postgres (every
//! process of the server) and the bench spent per 1,000 updates, and what
//! every other process used meanwhile. The bench shares the two cores
//! too: its readers are part of (b)'s cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI16, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use queue::JobQueues;
use queue::feed::{Change, Publisher};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::task::JoinHandle;

use crate::http::Events;
use crate::{Target, cpu_ticks, job_id, proc_stat, say, token, var, var_or};

/// How long the deliveries still under way when the writers stop are
/// waited for: their cost belongs to the round.
const DRAIN: Duration = Duration::from_secs(10);

/// The pause before each round, so what opening the streams (or closing
/// them) left to do is not counted as the writes' cost.
const SETTLE: Duration = Duration::from_secs(2);

/// Each job's progress as last written, and as last seen on its owner's
/// stream; index 0 is unused (users are numbered from 1).
struct Jobs {
    written: Vec<AtomicI16>,
    received: Vec<AtomicI16>,
}

/// One round's numbers.
struct Round {
    streams: bool,
    updates: u64,
    per_sec: f64,
    /// CPU seconds of the api, of Postgres and of the bench.
    api: f64,
    postgres: f64,
    bench: f64,
    /// CPU seconds of every other process on the machine (Redis, and
    /// whatever else runs: a build next door shows here), and the wall
    /// time they are over.
    others: f64,
    wall: Duration,
    /// Job frames received; streams that ended; live streams whose last
    /// frame is not their job's last write once the drain is over.
    frames: u64,
    ended: usize,
    stale: usize,
    drain: Duration,
}

/// Runs the rounds and prints their table; `false` when a live stream
/// missed its job's last write.
pub async fn run(target: &Target) -> anyhow::Result<bool> {
    let users: u64 = var_or("STREAMS", 1_000)?;
    let clients: u64 = var_or("CLIENTS", 4)?;
    let secs: u64 = var_or("ROUND_SECS", 10)?;
    let rounds: u32 = var_or("ROUNDS", 3)?;
    let clk_tck: f64 = var_or("CLK_TCK", 100.0)?;
    ensure!(
        (1..=users).contains(&clients),
        "CLIENTS must be 1 to STREAMS ({users})"
    );
    let settings = platform::config::Settings::from_lookup(|key| std::env::var(key).ok())
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(clients)?)
        .connect(&var::<String>("DATABASE_URL")?)
        .await?;
    let postmaster = postmaster(&pool).await?;
    let feed = Publisher::spawn(Arc::new(JobQueues::new(&settings.redis, settings.queues)));
    let slots = usize::try_from(users)? + 1;
    let jobs = Arc::new(Jobs {
        written: (0..slots).map(|_| AtomicI16::new(0)).collect(),
        received: (0..slots).map(|_| AtomicI16::new(0)).collect(),
    });
    crate::wait_until_streams_open(target.addr).await?;

    let mut done = Vec::new();
    for number in 0..rounds * 2 {
        let streams = number % 2 == 1;
        // The last round's streams (and the probe's) are gone from the hub,
        // or this round's changes would still be read for them.
        if !streams {
            crate::wait_for_no_streams(target.addr).await?;
        }
        let frames = Arc::new(AtomicU64::new(0));
        let readers = if streams {
            say(format!("opening {users} streams, one per user"));
            open(target, users, &jobs, &frames).await?
        } else {
            Vec::new()
        };
        tokio::time::sleep(SETTLE).await;
        let side = if streams { "b" } else { "a" };
        say(format!(
            "round {} ({side}): {clients} writers for {secs} s",
            number + 1
        ));
        let before = (
            cpu_ticks(target.pid)?,
            postgres_ticks(postmaster)?,
            cpu_ticks(std::process::id())?,
            crate::machine_busy_ticks()?,
        );
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let writers: Vec<_> = (0..clients)
            .map(|client| {
                let writer = Writer {
                    pool: pool.clone(),
                    feed: feed.clone(),
                    jobs: jobs.clone(),
                    stop: stop.clone(),
                    count: count.clone(),
                };
                tokio::spawn(writer.run(client, clients, users))
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.await??;
        }
        let writing = started.elapsed();
        let drained = Instant::now();
        let drain_until = drained + DRAIN;
        while stale(&jobs, &readers) > 0 && Instant::now() < drain_until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let drain = drained.elapsed();
        let seconds = |after: u64, before: u64| after.saturating_sub(before) as f64 / clk_tck;
        let updates = count.load(Ordering::Relaxed);
        let busy = seconds(crate::machine_busy_ticks()?, before.3);
        let mut round = Round {
            streams,
            updates,
            per_sec: updates as f64 / writing.as_secs_f64(),
            api: seconds(cpu_ticks(target.pid)?, before.0),
            postgres: seconds(postgres_ticks(postmaster)?, before.1),
            bench: seconds(cpu_ticks(std::process::id())?, before.2),
            others: 0.0,
            wall: started.elapsed(),
            frames: frames.load(Ordering::Relaxed),
            ended: 0,
            stale: stale(&jobs, &readers),
            drain,
        };
        round.others = (busy - round.api - round.postgres - round.bench).max(0.0);
        // Under saturation the hub may end a stream that fell behind: that
        // is a finding, not a failure; say why the first one ended.
        let mut told = false;
        for reader in readers {
            if reader.is_finished() {
                round.ended += 1;
                if let Ok(Err(error)) = reader.await
                    && !std::mem::replace(&mut told, true)
                {
                    say(format!("a stream ended: {error:#}"));
                }
            } else {
                reader.abort();
            }
        }
        say(format!(
            "{:.0} updates/s; {} frames, {} ended",
            round.per_sec, round.frames, round.ended
        ));
        done.push(round);
    }
    report(&done, clients, secs)?;
    Ok(done.iter().all(|round| round.stale == 0))
}

/// One writing connection's loop and what it shares with the others.
struct Writer {
    pool: PgPool,
    feed: Publisher,
    jobs: Arc<Jobs>,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
}

impl Writer {
    /// Updates jobs until told to stop: at random among the users whose
    /// number is `client` modulo `clients`, so no job has two writers and
    /// its last write is known for certain.
    async fn run(self, client: u64, clients: u64, users: u64) -> anyhow::Result<()> {
        let mine = (users - client).div_ceil(clients);
        let mut random = 0x853c_49e6_748f_ea9b_u64 ^ client;
        while !self.stop.load(Ordering::Relaxed) {
            random = random
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let user = client + 1 + (random >> 33) % mine * clients;
            let written = &self.jobs.written[usize::try_from(user)?];
            // Never the progress it has, so every frame tells which write.
            let progress = written.load(Ordering::Relaxed) % 100 + 1;
            let job = job_id(user);
            sqlx::query("update jobs set progress = $2, updated_at = now() where job_id = $1")
                .bind(job)
                .bind(progress)
                .execute(&self.pool)
                .await?;
            written.store(progress, Ordering::Relaxed);
            // As the worker does after each commit.
            self.feed.publish(Change::Job(job));
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Opens one stream per user and a task reading each.
async fn open(
    target: &Target,
    users: u64,
    jobs: &Arc<Jobs>,
    frames: &Arc<AtomicU64>,
) -> anyhow::Result<Vec<JoinHandle<anyhow::Result<()>>>> {
    let mut readers = Vec::new();
    for user in 1..=users {
        let stream = Events::open(target.addr, &token(user))
            .await
            .with_context(|| format!("user {user}'s stream"))?;
        let (jobs, frames) = (jobs.clone(), frames.clone());
        let index = usize::try_from(user)?;
        // Nothing is being written while they open: each starts up to date.
        let written = jobs.written[index].load(Ordering::Relaxed);
        jobs.received[index].store(written, Ordering::Relaxed);
        readers.push(tokio::spawn(read(stream, index, jobs, frames)));
    }
    Ok(readers)
}

/// Counts the job frames of `user`'s stream and notes the last progress.
async fn read(
    mut stream: Events,
    user: usize,
    jobs: Arc<Jobs>,
    frames: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    loop {
        let (batch, _) = stream.next().await?;
        for frame in batch.iter().filter(|frame| frame.event == "job") {
            let status: serde_json::Value = serde_json::from_str(&frame.data)?;
            let progress = status["progress"]
                .as_i64()
                .and_then(|progress| i16::try_from(progress).ok())
                .context("a job frame without a progress")?;
            jobs.received[user].store(progress, Ordering::Relaxed);
            frames.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Live streams whose last frame is not their job's last write (one job
/// per user; reader `i` is user `i + 1`'s).
fn stale(jobs: &Jobs, readers: &[JoinHandle<anyhow::Result<()>>]) -> usize {
    readers
        .iter()
        .enumerate()
        .filter(|(i, reader)| {
            let user = i + 1;
            !reader.is_finished()
                && jobs.received[user].load(Ordering::Relaxed)
                    != jobs.written[user].load(Ordering::Relaxed)
        })
        .count()
}

/// Postgres's postmaster: the parent of the backend serving the pool.
async fn postmaster(pool: &PgPool) -> anyhow::Result<u32> {
    let backend: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(pool)
        .await?;
    let ppid = proc_stat(u32::try_from(backend)?)
        .context("Postgres's backend is not in this machine's /proc")?
        .ppid;
    Ok(ppid)
}

/// CPU ticks of every process of the Postgres server so far: the
/// postmaster, its children (backends, checkpointer, WAL writer…), and
/// the children that have exited (autovacuum workers), which the
/// postmaster has waited for.
fn postgres_ticks(postmaster: u32) -> anyhow::Result<u64> {
    let own = proc_stat(postmaster).context("Postgres is gone")?;
    let mut total = own.ticks + own.children_ticks;
    for entry in std::fs::read_dir("/proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // A process may exit between the listing and the read.
        if let Ok(stat) = proc_stat(pid)
            && stat.ppid == postmaster
        {
            total += stat.ticks;
        }
    }
    Ok(total)
}

impl Round {
    /// Updates a second, then the api's, Postgres's and the bench's CPU
    /// seconds per 1,000 updates.
    fn numbers(&self) -> [f64; 4] {
        let per_1k = |seconds: f64| seconds * 1000.0 / self.updates.max(1) as f64;
        [
            self.per_sec,
            per_1k(self.api),
            per_1k(self.postgres),
            per_1k(self.bench),
        ]
    }
}

/// Prints the rounds, then each side's medians and the ratio.
fn report(rounds: &[Round], clients: u64, secs: u64) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "| round ({clients} writers, {secs} s) | updates/s | CPU s per 1,000 updates: api / Postgres / bench | others' CPU (cores) | frames / published | streams ended | drain |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for (number, round) in rounds.iter().enumerate() {
        let [rate, api, postgres, bench] = round.numbers();
        let (side, mut frames, ended) = if round.streams {
            let frames = format!("{} / {}", round.frames, round.updates);
            ("b: a stream per user", frames, round.ended.to_string())
        } else {
            ("a: no stream", "–".to_owned(), "–".to_owned())
        };
        if round.stale > 0 {
            let _ = write!(frames, " ({} jobs' last write not seen)", round.stale);
        }
        writeln!(
            out,
            "| {} ({side}) | {rate:.0} | {api:.3} / {postgres:.3} / {bench:.3} | {:.2} | {frames} | {ended} | {:.2} s |",
            number + 1,
            round.others / round.wall.as_secs_f64(),
            round.drain.as_secs_f64(),
        )?;
    }
    // Each number's median over one side's rounds.
    let medians = |streams: bool| {
        let of_side: Vec<[f64; 4]> = rounds
            .iter()
            .filter(|round| round.streams == streams)
            .map(Round::numbers)
            .collect();
        std::array::from_fn::<f64, 4, _>(|i| median(of_side.iter().map(|n| n[i]).collect()))
    };
    let (a, b) = (medians(false), medians(true));
    for (label, [rate, api, postgres, bench]) in [
        ("median a: no stream", a),
        ("median b: a stream per user", b),
    ] {
        writeln!(
            out,
            "| {label} | {rate:.0} | {api:.3} / {postgres:.3} / {bench:.3} | | | | |"
        )?;
    }
    let ratio = b[0] / a[0];
    writeln!(
        out,
        "| updates/s, b / a | {ratio:.3} ({:+.1} %) | | | | | |",
        (ratio - 1.0) * 100.0
    )?;
    Ok(())
}

/// The median of `values` (the mean of the middle two when even).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
