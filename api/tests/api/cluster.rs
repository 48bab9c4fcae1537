//! The whole product on a real Redis Cluster (`REDIS_CLUSTER_NODES`): the
//! api and the worker connect to it, every queue lives on one shard and the
//! queues spread over the shards, and the shared limits live there too.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use testkit::images::{jpeg, photo};
use testkit::redis_cluster::RedisCluster;
use testkit::{DEADLINE, TestApp};

/// Which primaries (by port) hold keys of each queue, read from the nodes.
fn shards_of_queues(cluster: &RedisCluster) -> BTreeMap<String, BTreeSet<u16>> {
    let mut shards: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    for port in cluster.primaries() {
        for key in cluster
            .cli(port, &["--scan", "--pattern", "bull:{*"])
            .lines()
        {
            let queue = key
                .split_once('{')
                .and_then(|(_, rest)| rest.split_once('}'))
                .map(|(tag, _)| tag.to_owned())
                .expect("a queue key carries its queue as a hash tag");
            shards.entry(queue).or_default().insert(port);
        }
    }
    shards
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_and_a_photo_complete_on_a_redis_cluster_with_the_queues_spread_over_its_shards() {
    let cluster = RedisCluster::start(3, 0);
    let nodes = cluster.nodes();
    let app = TestApp::spawn_with_worker_with(move |s| {
        s.redis.cluster_nodes = Some(nodes.into());
        s.auth.rate_limit = 100;
    })
    .await;

    let signup = app.sign_up("cluster@example.com", "Cluster").await;
    app.wait_for_signup_jobs(&signup).await;
    let token = signup["token"].as_str().expect("token");
    let upload = app
        .upload(token, "photo", &jpeg(640, 480, &photo(640, 480)))
        .await;
    assert_eq!(upload.status(), 202);
    let upload: Value = upload.json().await.expect("JSON");
    let resize = upload["job"]["id"].as_str().expect("job id");
    app.wait_for_job_state(resize, "completed", DEADLINE).await;
    assert!(
        app.me(token).await["avatar"]["large"].is_string(),
        "the photo became the avatar"
    );

    let shards = shards_of_queues(&cluster);
    for queue in [
        "welcome-email",
        "stripe-customer",
        "slack-notify",
        "image-resize",
    ] {
        assert_eq!(
            shards.get(queue).map(BTreeSet::len),
            Some(1),
            "{queue} lives on one shard: {shards:?}"
        );
    }
    let used: BTreeSet<u16> = shards.values().flatten().copied().collect();
    assert!(
        used.len() > 1,
        "the queues spread over the shards: {shards:?}"
    );
    let limits: usize = cluster
        .primaries()
        .into_iter()
        .map(|port| {
            cluster
                .cli(port, &["--scan", "--pattern", "bull:limits:{auth:*"])
                .lines()
                .count()
        })
        .sum();
    assert!(
        limits > 0,
        "the signup and login limit is counted on the cluster"
    );
    let ready: Value = app.get("/readyz", None).await.json().await.expect("JSON");
    assert_eq!(ready["checks"]["redis"], "up", "{ready}");
    assert_eq!(ready["status"], "ready", "{ready}");
}
