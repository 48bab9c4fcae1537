//! The whole product on a real Redis Cluster (`REDIS_CLUSTER_NODES`): the
//! api and the worker connect to it, every queue lives on one shard and the
//! queues spread over the shards, and the shared limits live there too;
//! moving to a cluster from one Redis loses nothing; and the Redis memory
//! alert watches the primary nearest its limit.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use testkit::app::ADMIN_TOKEN;
use testkit::app::Options;
use testkit::images::{jpeg, photo};
use testkit::prometheus::Scrape;
use testkit::redis_cluster::RedisCluster;
use testkit::{DEADLINE, TestApp};

const API: &str = env!("CARGO_BIN_EXE_api");

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

/// Every queue as `GET /api/admin/queues` shows it.
async fn queues_seen_by_operators(app: &TestApp) -> Vec<Value> {
    let view: Value = app
        .get("/api/admin/queues", Some(ADMIN_TOKEN))
        .await
        .json()
        .await
        .expect("JSON");
    view["queues"].as_array().expect("queues").clone()
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
    // The change feed is sharded over the cluster (SPUBLISH): the api's
    // probes come back on every channel, so polls are answered from memory.
    testkit::wait::until("the api to hear the change feed", DEADLINE, || async {
        let metrics = app.get("/metrics", None).await.text().await.expect("text");
        metrics
            .lines()
            .any(|line| line == "jobs_feed_live 1")
            .then_some(())
    })
    .await;
    let ready: Value = app.get("/readyz", None).await.json().await.expect("JSON");
    assert_eq!(ready["checks"]["redis"], "up", "{ready}");
    assert_eq!(ready["status"], "ready", "{ready}");
    for queue in queues_seen_by_operators(&app).await {
        assert_eq!(
            queue["consumers"], 1,
            "the worker is seen on every queue's shard (else the no-consumer alert would fire): {queue}"
        );
    }
    let pause = app
        .client
        .post(format!(
            "{}/api/admin/queues/slack-notify/pause",
            app.address
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("answered");
    assert!(pause.status().is_success(), "{}", pause.status());
    let slack = queues_seen_by_operators(&app)
        .await
        .into_iter()
        .find(|queue| queue["queue"] == "slack-notify")
        .expect("listed");
    assert_eq!(slack["is_paused"], true, "{slack}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_from_one_redis_to_a_cluster_loses_no_job_that_waited_in_the_old_one() {
    let cluster = RedisCluster::start(3, 0);
    // The test's own api is the old deployment, on one Redis with no
    // worker left (and its relay's redelivery 5 minutes off); the processes
    // started below are the new one, on the cluster.
    let app = TestApp::spawn_with(Options {
        process_env: vec![
            ("REDIS_CLUSTER_NODES", cluster.nodes()),
            ("OUTBOX_REDELIVER_AFTER_SECS", "2".into()),
        ],
        ..Options::default()
    })
    .await;
    let mut waiting = Vec::new();
    for n in 0..3 {
        let signup = app
            .sign_up_unverified(&format!("early{n}@example.com"), "Early")
            .await;
        for job in signup["jobs"].as_array().expect("jobs") {
            let id = job["id"].as_str().expect("an id").to_owned();
            app.wait_for_job_state(&id, "waiting", DEADLINE).await;
            waiting.push(id);
        }
    }
    assert!(
        app.redis
            .cli(&["keys", "bull:account-email:*"])
            .lines()
            .count()
            > 0,
        "the jobs wait in the old Redis"
    );

    let _api = app.spawn_api_process(API).await;
    let _worker = app.spawn_worker_process(crate::worker_binary());

    for id in &waiting {
        app.wait_for_job_state(id, "completed", DEADLINE).await;
    }
    for n in 0..3 {
        let to = format!("early{n}@example.com");
        let emails = app.smtp.received();
        assert_eq!(
            emails.iter().filter(|email| email.to.contains(&to)).count(),
            1,
            "one confirmation email for {to}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_memory_alert_reads_the_cluster_primary_nearest_its_maxmemory() {
    let cluster = RedisCluster::start(3, 0);
    let nodes = cluster.nodes();
    let app = TestApp::spawn_without_worker_with(move |s| {
        s.redis.cluster_nodes = Some(nodes.into());
    })
    .await;
    let primaries = cluster.primaries();
    let api = app
        .spawn_api_process_with(API, &[("ALERT_CHECK_INTERVAL_SECS", "1")])
        .await;
    let url = format!("{}/metrics", api.address);
    let published = || async {
        let (scrape, _) = Scrape::fetch(&app.client, &url).await;
        Some((
            scrape.get("redis_memory_used_bytes")?,
            scrape.get("redis_memory_max_bytes")?,
        ))
    };
    const MB: f64 = 1024.0 * 1024.0;
    // One primary without a limit, one with plenty of room, one with little:
    // the last is the first to refuse writes, whatever the others use. Then
    // the roles move to other primaries, so no single node's answer passes.
    for (limits, fullest) in [
        (["0", "1gb", "64mb"], 64.0 * MB),
        (["48mb", "1gb", "0"], 48.0 * MB),
    ] {
        for (port, limit) in primaries.iter().zip(limits) {
            cluster.cli(*port, &["config", "set", "maxmemory", limit]);
        }
        testkit::wait::until("the fullest primary measured", DEADLINE, || async {
            let (_, max) = published().await?;
            (max == fullest).then_some(())
        })
        .await;
        // And it stays so, measurement after measurement: a single node's
        // answer would match now and then, never every time.
        for _ in 0..3 {
            // A window: the next measurement (one a second) must pass first.
            tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
            let (used, max) = published().await.expect("published");
            assert_eq!(max, fullest, "{limits:?}");
            assert!(used > 0.0 && used < fullest, "{used}");
        }
    }
}
