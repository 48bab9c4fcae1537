//! Several api and worker processes at once, as a deployment behind a load
//! balancer runs them: every side effect happens exactly once, whichever
//! instance took the request, whichever relay or worker got the job, on
//! one Redis and on a cluster.

use std::sync::Arc;

use testkit::DEADLINE;

use crate::fleet::{Fleet, Shape, SlackLimit, load};

const USERS: usize = 12;
const PHOTO_EVERY: usize = 3;

async fn every_side_effect_exactly_once(shape: Shape) {
    let fleet = Arc::new(Fleet::start(shape).await);

    let (jobs, _) = load(&fleet, 0..USERS, 4, PHOTO_EVERY).await;
    fleet.wait_for(&jobs, DEADLINE * 2).await;

    let effects = fleet.side_effects(USERS).await;
    let (lost, duplicated) = effects.lost_and_duplicated();
    assert!(lost.is_empty(), "lost for users {lost:?}: {effects:?}");
    assert!(
        duplicated.is_empty(),
        "twice for users {duplicated:?}: {effects:?}"
    );
    assert_eq!(effects.pdfs, USERS, "one onboarding guide per user");
    assert_eq!(
        effects.photo_sizes,
        3 * USERS.div_ceil(PHOTO_EVERY),
        "three sizes per photo"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apis_and_three_workers_on_one_redis_do_every_side_effect_exactly_once() {
    every_side_effect_exactly_once(Shape {
        apis: 2,
        workers: 3,
        cluster: None,
        slack: SlackLimit::Lifted,
        hash_cost: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apis_and_three_workers_on_a_redis_cluster_do_every_side_effect_exactly_once() {
    every_side_effect_exactly_once(Shape {
        apis: 2,
        workers: 3,
        cluster: Some((3, 0)),
        slack: SlackLimit::Lifted,
        hash_cost: None,
    })
    .await;
}
