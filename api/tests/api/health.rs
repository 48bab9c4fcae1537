use serde_json::Value;
use testkit::TestApp;

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
