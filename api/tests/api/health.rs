use std::time::Duration;

use serde_json::Value;
use testkit::{TestApp, wait};

const API: &str = env!("CARGO_BIN_EXE_api");

#[tokio::test]
async fn healthz_and_readyz_are_200_when_everything_is_up() {
    let app = TestApp::spawn_without_worker().await;

    let health = app.get("/healthz", None).await;
    let ready = app.get("/readyz", None).await;

    assert_eq!(health.status(), 200);
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["checks"]["postgres"], "up");
    assert_eq!(body["checks"]["redis"], "up");
    assert_eq!(body["checks"]["redis_maxmemory_policy"], "noeviction");
    assert_eq!(body["status"], "ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_may_evict_jobs_is_reported_at_start_and_by_readyz() {
    let app = TestApp::spawn_without_worker().await;
    app.redis
        .cli(&["config", "set", "maxmemory-policy", "allkeys-lru"]);

    let api = app.spawn_api_process(API).await;
    let ready: Value = app
        .client
        .get(format!("{}/readyz", api.address))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");

    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["checks"]["redis"], "up");
    assert_eq!(ready["checks"]["redis_maxmemory_policy"], "allkeys-lru");
    assert!(
        ready["message"]
            .as_str()
            .is_some_and(|m| m.contains("noeviction")),
        "{ready}"
    );
    wait::until(
        "the api to log the policy",
        Duration::from_secs(10),
        || async {
            api.log_lines()
                .iter()
                .any(|line| {
                    line["level"] == "ERROR"
                        && line.to_string().contains(r#""policy":"allkeys-lru""#)
                        && line["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("maxmemory-policy"))
                })
                .then_some(())
        },
    )
    .await;

    app.redis
        .cli(&["config", "set", "maxmemory-policy", "noeviction"]);
    let ready: Value = app.get("/readyz", None).await.json().await.expect("json");
    assert_eq!(ready["status"], "ready", "fixed live, no restart: {ready}");
}

#[tokio::test]
async fn with_redis_down_readyz_stays_200_but_says_degraded() {
    let mut app = TestApp::spawn_without_worker().await;
    app.redis.stop();

    let ready = app.get("/readyz", None).await;
    let health = app.get("/healthz", None).await;

    assert_eq!(ready.status(), 200, "signups still work through the outbox");
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["checks"]["redis"], "down");
    assert_eq!(body["checks"]["postgres"], "up");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("redis")),
        "{body}"
    );
    assert_eq!(health.status(), 200);
    app.sign_up("during@example.com", "During").await;
}

/// How many times Redis was asked `CONFIG GET` since its stats were reset.
fn config_gets(app: &TestApp) -> u64 {
    app.redis
        .cli(&["info", "commandstats"])
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_config|get:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().expect("a count"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_readiness_probes_asks_redis_for_its_policy_about_once_a_second() {
    let app = TestApp::spawn_without_worker().await;
    app.redis.cli(&["config", "resetstat"]);

    let started = std::time::Instant::now();
    let answers = futures::future::join_all((0..50).map(|_| app.get("/readyz", None))).await;
    let took = started.elapsed();

    assert!(answers.iter().all(|answer| answer.status() == 200));
    let asked = config_gets(&app);
    // One lookup per second the burst lasted, and the policy check the api
    // makes once at start, if it came late.
    let most = took.as_secs() + 2;
    assert!(
        asked <= most,
        "{asked} CONFIG GET for 50 probes in {took:?}"
    );

    // Changed live: the next lookup, a second later at most, sees it.
    app.redis
        .cli(&["config", "set", "maxmemory-policy", "allkeys-lru"]);
    wait::until(
        "readyz to see the new policy",
        Duration::from_secs(10),
        || async {
            let ready: Value = app.get("/readyz", None).await.json().await.ok()?;
            (ready["checks"]["redis_maxmemory_policy"] == "allkeys-lru").then_some(ready)
        },
    )
    .await;
}
