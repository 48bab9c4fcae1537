//! The load tests across instances (`scripts/load-test`, not part of the
//! suite). In both, users sign up, confirm their address (after their
//! confirmation email, as a person would) and every second one uploads a
//! photo, spread over the api instances while the workers run; both fail
//! on any lost or duplicated side effect and print what each user cost:
//! CPU of the api and worker processes, of Redis and of Postgres, Redis
//! commands, Postgres rows written (the capacity model's inputs).
//!
//! - [`load_across_instances`]: a fixed number of users, a fixed number at
//!   a time, in each configuration of `LOAD_SHAPES`: throughput.
//! - [`load_at_the_target_rate`]: signups sent at `LOAD_RATE` a second for
//!   `LOAD_SECS` through 2 apis and 3 workers on one Redis, with Slack
//!   taking one message a second as the real one does: whether the
//!   deployment keeps up (no queue's oldest waiting job older than 5 s at
//!   the end, Redis's memory flat).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fleet::paced::{Pace, at_rate};
use crate::fleet::{Fleet, Shape, SlackLimit, load};

/// How long the idle cost is measured.
const IDLE: Duration = Duration::from_secs(5);

/// `apis+workers[@cluster]`, e.g. `2+3@cluster`.
fn shape(spec: &str) -> Shape {
    let (counts, cluster) = match spec.split_once('@') {
        Some((counts, "cluster")) => (counts, Some((3, 0))),
        Some((_, other)) => panic!("unknown Redis {other:?}: say @cluster or nothing"),
        None => (spec, None),
    };
    let (apis, workers) = counts.split_once('+').expect("apis+workers");
    Shape {
        apis: apis.parse().expect("a number of apis"),
        workers: workers.parse().expect("a number of workers"),
        cluster,
        slack: SlackLimit::Lifted,
        hash_cost: None,
    }
}

fn env(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a load test: run it with scripts/load-test"]
async fn load_across_instances() {
    let users: usize = env("LOAD_USERS", "200").parse().expect("LOAD_USERS");
    let at_once: usize = env("LOAD_AT_ONCE", "16").parse().expect("LOAD_AT_ONCE");
    let shapes = env("LOAD_SHAPES", "1+1,2+3,1+1@cluster,2+3@cluster");
    let mut table = vec![
        "| shape | users | photos | users/s (all side effects done) | signup p50 | signup p99 | lost | twice |".to_owned(),
        "|---|---:|---:|---:|---:|---:|---:|---:|".to_owned(),
    ];
    let mut costs = vec![
        "| shape | api CPU ms/user | worker CPU ms/user | Redis CPU ms/user | Postgres CPU ms/user | Redis commands/user | Postgres rows written/user |".to_owned(),
        "|---|---:|---:|---:|---:|---:|---:|".to_owned(),
    ];
    for spec in shapes.split(',') {
        let fleet = Arc::new(Fleet::start(shape(spec)).await);
        let idle_from = fleet.costs().await;
        // A window must pass: what the deployment spends idle (blocking
        // reads, stall checks, the relay and monitor), to subtract from what
        // the load costs.
        tokio::time::sleep(IDLE).await;
        let idle = (fleet.costs().await - idle_from).per_second(IDLE.as_secs_f64());
        let before = fleet.costs().await;
        let started = Instant::now();
        let (jobs, mut latencies) = load(&fleet, 0..users, at_once, 2).await;
        fleet.wait_for(&jobs, Duration::from_secs(600)).await;
        let elapsed = started.elapsed();
        let spent = (fleet.costs().await - before).beyond(idle, elapsed.as_secs_f64());
        let per_user = |total: f64| total / users as f64;
        costs.push(format!(
            "| {spec} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} |",
            per_user(spent.api_cpu) * 1000.0,
            per_user(spent.worker_cpu) * 1000.0,
            per_user(spent.redis_cpu) * 1000.0,
            per_user(spent.postgres_cpu) * 1000.0,
            per_user(spent.redis_commands),
            per_user(spent.postgres_rows),
        ));
        let effects = fleet.side_effects(users).await;
        let (lost, twice) = effects.lost_and_duplicated();
        latencies.sort();
        table.push(format!(
            "| {spec} | {users} | {} | {:.1} | {:.0} ms | {:.0} ms | {} | {} |",
            users.div_ceil(2),
            users as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
            lost.len(),
            twice.len(),
        ));
        eprintln!("{}", table.last().expect("a row"));
        assert!(lost.is_empty(), "{spec}: lost for users {lost:?}");
        assert!(twice.is_empty(), "{spec}: twice for users {twice:?}");
        assert_eq!(effects.pdfs, users, "{spec}: one guide per user");
        assert_eq!(
            effects.photo_sizes,
            3 * users.div_ceil(2),
            "{spec}: three sizes per photo"
        );
    }
    println!("{}\n\n{}", table.join("\n"), costs.join("\n"));
}

/// The load test's hashing cost (`ARGON2_MEMORY_KIB`, `ARGON2_ITERATIONS`):
/// production's 19 MiB and 2 passes take about 28 ms of a core, so 100
/// signups a second would need almost 3 cores for hashing alone on a
/// machine of 2. Never a deployment's (the api warns at start).
const TEST_PROFILE: (u32, u32) = (1024, 1);

/// The goal: no queue's oldest waiting job older than this at the end.
const KEEPS_UP: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a load test: run it with LOAD_RATE=100 scripts/load-test"]
async fn load_at_the_target_rate() {
    let rate: f64 = env("LOAD_RATE", "100").parse().expect("LOAD_RATE");
    let secs: u64 = env("LOAD_SECS", "300").parse().expect("LOAD_SECS");
    let in_flight: usize = env("LOAD_IN_FLIGHT", "2000")
        .parse()
        .expect("LOAD_IN_FLIGHT");
    let drain: u64 = env("LOAD_DRAIN_SECS", "60")
        .parse()
        .expect("LOAD_DRAIN_SECS");
    let fleet = Arc::new(
        Fleet::start(Shape {
            apis: 2,
            workers: 3,
            cluster: None,
            slack: SlackLimit::OneASecond,
            hash_cost: Some(TEST_PROFILE),
        })
        .await,
    );
    let idle_from = fleet.costs().await;
    // A window must pass: what the deployment spends idle, to subtract.
    tokio::time::sleep(IDLE).await;
    let idle = (fleet.costs().await - idle_from).per_second(IDLE.as_secs_f64());
    let before = fleet.costs().await;
    let started = Instant::now();
    let mut paced = at_rate(
        &fleet,
        &Pace {
            rate,
            duration: Duration::from_secs(secs),
            in_flight,
            photo_every: 2,
        },
    )
    .await;
    let records = fleet.oldest_records_not_started().await;
    let unfinished = fleet
        .unfinished(&paced.jobs, Duration::from_secs(drain))
        .await;
    let elapsed = started.elapsed();
    let spent = (fleet.costs().await - before).beyond(idle, elapsed.as_secs_f64());
    let effects = fleet.side_effects(paced.users).await;
    // Those whose signup was answered 503 have no account to announce.
    let signed_up: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&fleet.app.pool)
        .await
        .expect("read");
    let signed_up = usize::try_from(signed_up).expect("a count");
    let (slack_messages, slack_refused) = {
        let slack = fleet.slack();
        (slack.messages.len(), slack.refused)
    };

    let behind: BTreeSet<usize> = unfinished.iter().map(|job| job.user).collect();
    let counted = |users: Vec<usize>| -> Vec<usize> {
        users
            .into_iter()
            .filter(|n| !behind.contains(n) && !paced.failures.contains_key(n))
            .collect()
    };
    let (lost, twice) = effects.lost_and_duplicated();
    let (lost, twice) = (counted(lost), twice);
    let mut unfinished_per_queue: BTreeMap<&str, usize> = BTreeMap::new();
    let mut unfinished_per_state: BTreeMap<String, usize> = BTreeMap::new();
    for job in &unfinished {
        *unfinished_per_queue.entry(job.queue.as_str()).or_default() += 1;
        *unfinished_per_state
            .entry(format!("{} ({})", job.queue, job.state))
            .or_default() += 1;
    }
    let photos = paced.users.div_ceil(2);
    paced.latencies.sort();
    let at_end = paced.samples.last().expect("the end's sample").clone();
    let memory = |index: usize| paced.samples[index].redis_memory / 1e6;
    let per_signup = |total: f64| total / paced.users as f64;
    let ms_per_signup = |seconds: f64| per_signup(seconds) * 1000.0;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    let mut report = vec![
        format!(
            "Rate run: {rate}/s asked for {secs} s, 2 apis + 3 workers, one Redis, Argon2 {} KiB × {} (load average at the end: {})",
            TEST_PROFILE.0,
            TEST_PROFILE.1,
            load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        ),
        String::new(),
        "| signups | achieved/s (sent) | all users done in | photos | signup p50 | signup p99 | failed | lost | twice | jobs not done after the drain |".into(),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|".into(),
        format!(
            "| {} | {:.1} | {:.1} s | {photos} | {:.0} ms | {:.0} ms | {} | {} | {} | {} |",
            paced.users,
            paced.users as f64 / paced.sending.as_secs_f64(),
            paced.finished.as_secs_f64(),
            percentile(&paced.latencies, 0.5).as_secs_f64() * 1000.0,
            percentile(&paced.latencies, 0.99).as_secs_f64() * 1000.0,
            paced.failures.len(),
            lost.len(),
            twice.len(),
            unfinished.len(),
        ),
        String::new(),
        "| queue | oldest waiting at the end (Redis) | worst during the run | oldest record not started at the end (Postgres) | not done after the drain |".into(),
        "|---|---:|---:|---:|---:|".into(),
    ];
    let mut goals_missed = Vec::new();
    for (queue, age) in &at_end.oldest_waiting {
        let during = paced
            .samples
            .iter()
            .filter_map(|sample| sample.oldest_waiting.get(queue))
            .max()
            .copied()
            .unwrap_or_default();
        let record = records.get(queue.as_str()).copied().unwrap_or_default();
        report.push(format!(
            "| {queue} | {:.1} s | {:.1} s | {:.1} s | {} |",
            age.as_secs_f64(),
            during.as_secs_f64(),
            record.as_secs_f64(),
            unfinished_per_queue
                .get(queue.as_str())
                .copied()
                .unwrap_or(0),
        ));
        if (*age).max(record) > KEEPS_UP {
            goals_missed.push(format!(
                "{queue}: its oldest job waited {:.1} s at the end (goal: {} s)",
                (*age).max(record).as_secs_f64(),
                KEEPS_UP.as_secs()
            ));
        }
    }
    let middle = paced.samples.len() / 2;
    report.extend([
        String::new(),
        format!(
            "Redis used_memory: {:.1} MB at the start, {:.1} MB in the middle, {:.1} MB at the end ({} samples, every 5 s); Slack took {slack_messages} messages announcing {} signups and answered 429 to {slack_refused}.",
            memory(0),
            memory(middle),
            memory(paced.samples.len() - 1),
            paced.samples.len(),
            effects.announced,
        ),
        String::new(),
        "| per signup | api CPU | worker CPU | Redis CPU | Postgres CPU | Redis commands | Postgres rows written |".into(),
        "|---|---:|---:|---:|---:|---:|---:|".into(),
        format!(
            "| {} signups | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} | {:.1} |",
            paced.users,
            ms_per_signup(spent.api_cpu),
            ms_per_signup(spent.worker_cpu),
            ms_per_signup(spent.redis_cpu),
            ms_per_signup(spent.postgres_cpu),
            per_signup(spent.redis_commands),
            per_signup(spent.postgres_rows),
        ),
    ]);
    println!("{}", report.join("\n"));

    if !paced.failures.is_empty() {
        let some: Vec<_> = paced.failures.iter().take(5).collect();
        goals_missed.push(format!(
            "{} users failed, e.g. {some:?}",
            paced.failures.len()
        ));
    }
    if !lost.is_empty() || !twice.is_empty() {
        goals_missed.push(format!(
            "side effects lost for {lost:?}, twice for {twice:?}"
        ));
    }
    if !unfinished.is_empty() {
        goals_missed.push(format!(
            "jobs not done {drain} s after the load: {unfinished_per_state:?}"
        ));
    } else if effects.announced != signed_up {
        goals_missed.push(format!(
            "Slack's messages announced {} signups for {signed_up} users",
            effects.announced,
        ));
    } else if effects.pdfs != paced.users || effects.photo_sizes != 3 * photos {
        goals_missed.push(format!(
            "{} guides for {} users, {} photo sizes for {photos} photos",
            effects.pdfs, paced.users, effects.photo_sizes
        ));
    }
    assert!(
        goals_missed.is_empty(),
        "goals missed:\n  {}",
        goals_missed.join("\n  ")
    );
}
