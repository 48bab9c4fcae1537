//! One round of job-record updates, as the worker writes them (one row by
//! id per transaction: active, attempts, started_at), from `CLIENTS`
//! concurrent connections for `SECS` seconds, and the updates a second it
//! reached. `MODE` says how the api instances are told:
//!
//! - `off`: not at all (the floor);
//! - `feed`: a publish on the change feed in Redis after each commit
//!   (`queue::feed::Publisher`, as the worker does);
//! - `trigger`: the previous release's `NOTIFY` from a row trigger, which
//!   this run installs and removes again.
//!
//! `scripts/bench-job-updates` runs the rounds side by side, with an api
//! listening, and reports the CPU each process spent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::io::Write as _;

use anyhow::Context as _;
use queue::JobQueues;
use queue::feed::{Change, Publisher};
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

/// Records the script seeded: ids `…-000000000001` to this.
const RECORDS: u64 = 10_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let var = |name: &str| std::env::var(name).with_context(|| format!("{name} is not set"));
    let mode = var("MODE")?;
    let clients: u32 = var("CLIENTS")?.parse()?;
    let secs: u64 = var("SECS")?.parse()?;
    let settings = platform::config::Settings::from_lookup(|key| std::env::var(key).ok())
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let pool = PgPoolOptions::new()
        .max_connections(clients + 1)
        .connect(&var("DATABASE_URL")?)
        .await?;
    let feed = (mode == "feed")
        .then(|| Publisher::spawn(Arc::new(JobQueues::new(&settings.redis, settings.queues))));
    if mode == "trigger" {
        sqlx::raw_sql(
            "create or replace function bench_jobs_changed() returns trigger language plpgsql as $$
             begin perform pg_notify('jobs_changed', old.job_id::text); return null; end $$;
             create trigger bench_jobs_changed after update or delete on jobs
                 for each row execute function bench_jobs_changed();",
        )
        .execute(&pool)
        .await?;
    }
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (pool, feed, done, stop) = (pool.clone(), feed.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = u64::from(client);
                while !stop.load(Ordering::Relaxed) {
                    n = n
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    let job = Uuid::from_u64_pair(
                        0x0000_0000_0000_7000,
                        0x8000_0000_0000_0000 | ((n >> 33) % RECORDS + 1),
                    );
                    sqlx::query(
                        "update jobs set state = 'active', attempts_made = attempts_made + 1,
                                started_at = now(), updated_at = now()
                         where job_id = $1",
                    )
                    .bind(job)
                    .execute(&pool)
                    .await?;
                    if let Some(feed) = &feed {
                        feed.publish(Change::Job(job));
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    if mode == "trigger" {
        sqlx::raw_sql(
            "drop trigger bench_jobs_changed on jobs; drop function bench_jobs_changed();",
        )
        .execute(&pool)
        .await?;
    }
    // The script reads the one number from standard output.
    writeln!(std::io::stdout(), "{rate:.0}")?;
    Ok(())
}
