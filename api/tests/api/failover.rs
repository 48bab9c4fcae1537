//! Machines dying under load: a Redis Cluster primary (its replica takes
//! over) and one of three workers, at the same moment, while signups and
//! uploads keep coming through two api instances. Nothing may be lost;
//! what runs twice is counted and reported, since Redis replicates
//! asynchronously and a killed worker's job runs again (at least once).

use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::wait;

use crate::fleet::{Fleet, Shape, SlackLimit, load};

/// The primary holding `queue`'s keys.
fn primary_of(cluster: &testkit::redis_cluster::RedisCluster, queue: &str) -> u16 {
    let pattern = format!("bull:{{{queue}}}:*");
    cluster
        .primaries()
        .into_iter()
        .find(|&port| {
            !cluster
                .cli(port, &["--scan", "--pattern", &pattern])
                .trim()
                .is_empty()
        })
        .expect("some primary holds the queue")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_and_a_worker_killed_under_load_lose_no_job() {
    let mut fleet = Fleet::start(Shape {
        apis: 2,
        workers: 3,
        cluster: Some((3, 1)),
        slack: SlackLimit::Lifted,
        hash_cost: None,
    })
    .await;
    let mut cluster = fleet.cluster.take().expect("a cluster");
    let mut workers = std::mem::take(&mut fleet.workers);
    let fleet = Arc::new(fleet);
    let (before, during, after) = (0..12, 12..24, 24..36);
    let (mut jobs, _) = load(&fleet, before, 4, 4).await;

    let under_load = tokio::spawn({
        let fleet = fleet.clone();
        async move { load(&fleet, during, 4, 4).await }
    });
    wait::until(
        "the load to be under way",
        Duration::from_secs(30),
        || async {
            let users: i64 = sqlx::query_scalar("select count(*) from users")
                .fetch_one(&fleet.app.pool)
                .await
                .expect("counted");
            (users >= 15).then_some(())
        },
    )
    .await;
    let doomed = primary_of(&cluster, "account-email");
    cluster.kill(doomed);
    workers[0].kill().await;
    let killed = Instant::now();
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.wait_until_ok();
        cluster
    })
    .await
    .expect("the cluster settles");
    let failed_over = killed.elapsed();
    assert_eq!(cluster.primaries().len(), 3, "a replica took over");
    jobs.extend(under_load.await.expect("the load ran").0);
    jobs.extend(load(&fleet, after, 4, 4).await.0);
    fleet.wait_for(&jobs, Duration::from_secs(120)).await;
    let converged = killed.elapsed();

    let effects = fleet.side_effects(36).await;
    let (lost, duplicated) = effects.lost_and_duplicated();
    let twice: Vec<_> = duplicated
        .iter()
        .map(|n| (n, effects.per_user[n]))
        .collect();
    eprintln!(
        "failover: replica promoted {failed_over:?} after the kill, every job completed \
         {converged:?} after it; users with a side effect twice ([emails, Stripe, Slack]): \
         {twice:?} of 36"
    );
    assert!(lost.is_empty(), "lost for users {lost:?}: {effects:?}");
    assert_eq!(effects.pdfs, 36, "one onboarding guide per user");
    assert_eq!(effects.photo_sizes, 3 * 9, "three sizes per photo");
    drop(cluster);
}
