//! What the live job-status streams (`GET /api/me/events`) cost one api
//! instance, run by `scripts/bench-events` against a fresh api for each
//! `MODE`:
//!
//! - `idle`: opens `IDLE_STREAMS` streams over the seeded users
//!   (`STREAMS_PER_USER` each at most) and reports the api's resident
//!   memory before and once they have all sat idle for a while;
//! - `keepalive`: the same number of plain keep-alive connections, each
//!   having had one `GET /healthz`: what any idle connection costs, so the
//!   part the stream itself adds is a difference;
//! - `latency`: one stream per user for `STREAMS` users, and
//!   `CHANGES_PER_SEC` job-record changes a second for `SECS` seconds,
//!   each committed then published on the change feed as the worker does;
//!   reports the time from each commit's return to its frame's arrival
//!   (split where the bench hears the change on the feed itself), any
//!   change never delivered, and the api's CPU per delivered event (also
//!   net of what it spends with the same streams idle as long);
//! - `writes`: what open streams cost the job writes: `CLIENTS`
//!   connections update job records as fast as they go, each update
//!   committed then published, in `ROUND_SECS` rounds alternating between
//!   no stream open and one stream for each of `STREAMS` users; reports
//!   each round's updates a second and the CPU of the api and of Postgres
//!   per 1,000 updates, then the medians of each side and their ratio.
//!
//! Every number comes out as a row of a markdown table on standard
//! output (`writes` prints its own table, one row per round); progress
//! goes to standard error. Exits non-zero when a change was not delivered.

mod http;
mod idle;
mod latency;
mod writes;

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use uuid::Uuid;

/// What every mode needs: where the api is, and which process it is.
pub(crate) struct Target {
    /// The api's address.
    pub addr: SocketAddr,
    /// The api's process, whose memory and CPU `/proc` tells.
    pub pid: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let target = Target {
        addr: var("API_ADDR")?,
        pid: var("API_PID")?,
    };
    let mode: String = var("MODE")?;
    let delivered_all = match mode.as_str() {
        "idle" => idle::run(&target, idle::Kind::Streams)
            .await
            .map(|()| true)?,
        "keepalive" => idle::run(&target, idle::Kind::KeepAlive)
            .await
            .map(|()| true)?,
        "latency" => latency::run(&target).await?,
        "writes" => writes::run(&target).await?,
        other => bail!("MODE must be idle, keepalive, latency or writes, not {other:?}"),
    };
    if !delivered_all {
        // The rows say how many; the script's exit status says that any.
        std::process::exit(1);
    }
    Ok(())
}

/// The environment variable `name`, parsed.
pub(crate) fn var<T: std::str::FromStr>(name: &str) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    let text = std::env::var(name).with_context(|| format!("{name} is not set"))?;
    text.parse()
        .map_err(|error| anyhow::anyhow!("{name}={text:?}: {error}"))
}

/// `name`, parsed, or `default` when it is not set.
pub(crate) fn var_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(_) => var(name),
        Err(_) => Ok(default),
    }
}

/// The token the script seeded for user `n` (its hash is in `api_tokens`).
pub(crate) fn token(n: u64) -> String {
    format!("bench-token-{n}")
}

/// The one job the script seeded for user `n` (1-based, as the script
/// numbers users).
pub(crate) fn job_id(n: u64) -> Uuid {
    Uuid::from_u64_pair(0x0000_0000_0000_7000, 0x9000_0000_0000_0000 | n)
}

/// The user number a seeded job id carries.
pub(crate) fn job_number(job: Uuid) -> u64 {
    job.as_u64_pair().1 & 0x0000_ffff_ffff_ffff
}

/// A row of the results table.
pub(crate) fn row(measure: &str, value: impl std::fmt::Display) -> anyhow::Result<()> {
    // The script collects standard output as the table.
    writeln!(std::io::stdout(), "| {measure} | {value} |")?;
    Ok(())
}

/// Progress, on standard error (standard output is the table).
pub(crate) fn say(message: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr(), "    {message}");
}

/// The process's resident memory (`VmRSS`), in KiB.
pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/<pid>/status")
}

/// The process's CPU time so far (user + system), in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    Ok(proc_stat(pid)?.ticks)
}

/// What `/proc/<pid>/stat` tells the bench of a process.
pub(crate) struct ProcStat {
    /// The parent's process id.
    pub ppid: u32,
    /// CPU time so far, user + system, in clock ticks.
    pub ticks: u64,
    /// The same of its children that have exited and been waited for.
    pub children_ticks: u64,
}

/// CPU time the whole machine has been busy so far (every core; user,
/// nice, system, interrupts, steal), in clock ticks, from `/proc/stat`.
pub(crate) fn machine_busy_ticks() -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .context("no cpu line in /proc/stat")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    // user nice system idle iowait irq softirq steal: all but idle, iowait.
    let busy = [0, 1, 2, 5, 6, 7];
    Ok(busy.iter().filter_map(|&at| fields.get(at)).sum())
}

/// Reads `/proc/<pid>/stat`.
pub(crate) fn proc_stat(pid: u32) -> anyhow::Result<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: count from after it.
    let after_name = stat
        .rsplit_once(')')
        .context("malformed /proc/<pid>/stat")?
        .1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Field n of proc(5) is n - 3 after the name: ppid is 4, utime and
    // stime 14 and 15, cutime and cstime 16 and 17.
    let field = |n: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(n - 3)
            .context("short /proc/<pid>/stat")?
            .parse()?)
    };
    Ok(ProcStat {
        ppid: u32::try_from(field(4)?)?,
        ticks: field(14)? + field(15)?,
        children_ticks: field(16)? + field(17)?,
    })
}

/// Waits until the api opens streams: it answers 503 until its change-feed
/// listener has heard its own first probe.
pub(crate) async fn wait_until_streams_open(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match http::Events::open(addr, &token(1)).await {
            Ok(_stream) => return Ok(()),
            Err(error) if error.to_string().contains(" 503") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => return Err(error.context("the api opens no stream")),
        }
    }
}

/// Waits until the api holds no stream: a closed connection leaves the
/// hub once the api notices it.
pub(crate) async fn wait_for_no_streams(addr: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let open = streams_open(addr).await?;
        // A gauge: a float, though it only ever holds counts.
        if open < 0.5 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the api still holds {open} streams 30 s after they were closed");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The api's `events_streams_open` gauge, from `GET /metrics`.
async fn streams_open(addr: SocketAddr) -> anyhow::Result<f64> {
    let (mut conn, head) = http::Conn::get(addr, "/metrics", None).await?;
    anyhow::ensure!(head.status == 200, "/metrics answered {}", head.status);
    let length = head.length.context("/metrics has no Content-Length")?;
    let body = String::from_utf8(conn.body(length).await?)?;
    body.lines()
        .find_map(|line| line.strip_prefix("events_streams_open "))
        .context("no events_streams_open in /metrics")?
        .trim()
        .parse()
        .context("events_streams_open is not a number")
}
