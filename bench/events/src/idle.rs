//! Memory per idle connection: `IDLE_STREAMS` streams (or plain keep-alive
//! connections) opened and left alone, and the api's resident memory
//! before and after.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::http::{Conn, Events};
use crate::{Target, row, rss_kib, say, token, var_or};

/// What is held open.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `GET /api/me/events` streams, each read up to its `ready`.
    Streams,
    /// Keep-alive connections, each after one `GET /healthz`.
    KeepAlive,
}

/// Connections being opened at once: more than the api's accept backlog
/// takes would cost SYN retries (a second each), not measure anything.
const OPENING_AT_ONCE: usize = 128;

/// How long everything stays open, untouched, before memory is read: what
/// was allocated only while opening has been freed by then.
const IDLE_FOR: Duration = Duration::from_secs(5);

/// Opens the connections, waits, reports; closes them on return.
pub async fn run(target: &Target, kind: Kind) -> anyhow::Result<()> {
    let count: u64 = var_or("IDLE_STREAMS", 10_000)?;
    let per_user: u64 = var_or("STREAMS_PER_USER", 10)?;
    let users = count.div_ceil(per_user);
    let label = match kind {
        Kind::Streams => "idle streams",
        Kind::KeepAlive => "keep-alive connections",
    };
    if kind == Kind::Streams {
        crate::wait_until_streams_open(target.addr).await?;
    }
    // Whatever the first stream or the start-up left to settle.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(target.pid)?;
    say(format!("opening {count} {label}"));
    let started = Instant::now();
    let opening = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let mut tasks = JoinSet::new();
    for i in 0..count {
        let (addr, opening) = (target.addr, opening.clone());
        // Round-robin over the users: none gets more than `per_user`.
        let user = i % users + 1;
        tasks.spawn(async move {
            let _permit = opening.acquire_owned().await?;
            match kind {
                Kind::Streams => Events::open(addr, &token(user)).await.map(held),
                Kind::KeepAlive => healthz(addr).await.map(held),
            }
        });
    }
    let mut held = Vec::with_capacity(usize::try_from(count)?);
    let mut failed = 0_usize;
    let mut first_error = None;
    while let Some(result) = tasks.join_next().await {
        match result? {
            Ok(one) => held.push(one),
            Err(error) => {
                failed += 1;
                first_error.get_or_insert(error);
            }
        }
    }
    let opened_in = started.elapsed();
    if let Some(error) = first_error {
        return Err(error.context(format!("{failed} of {count} {label} did not open")));
    }
    say(format!(
        "{} open in {:.1} s; idle for {} s",
        held.len(),
        opened_in.as_secs_f64(),
        IDLE_FOR.as_secs()
    ));
    tokio::time::sleep(IDLE_FOR).await;
    let after = rss_kib(target.pid)?;
    let per = after.saturating_sub(before) as f64 / held.len() as f64;
    row(
        &format!("{label}: open"),
        match kind {
            Kind::Streams => format!(
                "{} ({users} users × {per_user}; opened in {:.1} s)",
                held.len(),
                opened_in.as_secs_f64()
            ),
            Kind::KeepAlive => format!(
                "{} (opened in {:.1} s)",
                held.len(),
                opened_in.as_secs_f64()
            ),
        },
    )?;
    row(&format!("{label}: api RSS before"), mib(before))?;
    row(
        &format!("{label}: api RSS after {} s idle", IDLE_FOR.as_secs()),
        mib(after),
    )?;
    row(
        &format!("{label}: RSS per connection"),
        format!("{per:.1} KiB"),
    )?;
    drop(held);
    Ok(())
}

/// A connection, kept only to be dropped (closed) at the end.
type Held = Box<dyn std::any::Any + Send>;

fn held(connection: impl std::any::Any + Send) -> Held {
    Box::new(connection)
}

/// A keep-alive connection that has had one answer.
async fn healthz(addr: std::net::SocketAddr) -> anyhow::Result<Conn> {
    let (mut conn, head) = Conn::get(addr, "/healthz", None).await?;
    anyhow::ensure!(head.status == 200, "/healthz answered {}", head.status);
    conn.body(head.length.context("/healthz has no Content-Length")?)
        .await?;
    Ok(conn)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
