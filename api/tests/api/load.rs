//! The load test across instances (`scripts/load-test`, not part of the
//! suite): a fixed number of users sign up, confirm their address (after
//! their confirmation email, as a person would) and every second one
//! uploads a photo, spread over the api instances while the workers run,
//! in each configuration of `LOAD_SHAPES`. It fails on any lost or
//! duplicated side effect and prints throughput and latency per shape, and
//! what each user cost: CPU of the api and worker processes and of Redis,
//! Redis commands, Postgres commits (the capacity model's inputs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fleet::{Fleet, Shape, load};

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
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a load test: run it with scripts/load-test"]
async fn load_across_instances() {
    let env = |key: &str, default: &str| std::env::var(key).unwrap_or_else(|_| default.to_owned());
    let users: usize = env("LOAD_USERS", "200").parse().expect("LOAD_USERS");
    let at_once: usize = env("LOAD_AT_ONCE", "16").parse().expect("LOAD_AT_ONCE");
    let shapes = env("LOAD_SHAPES", "1+1,2+3,1+1@cluster,2+3@cluster");
    let mut table = vec![
        "| shape | users | photos | users/s (all side effects done) | signup p50 | signup p99 | lost | twice |".to_owned(),
        "|---|---:|---:|---:|---:|---:|---:|---:|".to_owned(),
    ];
    let mut costs = vec![
        "| shape | api CPU ms/user | worker CPU ms/user | Redis CPU ms/user | Redis commands/user | Postgres rows written/user |".to_owned(),
        "|---|---:|---:|---:|---:|---:|".to_owned(),
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
            "| {spec} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} |",
            per_user(spent.api_cpu) * 1000.0,
            per_user(spent.worker_cpu) * 1000.0,
            per_user(spent.redis_cpu) * 1000.0,
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
