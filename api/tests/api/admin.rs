use serde_json::Value;
use testkit::TestApp;
use testkit::app::Options;

#[tokio::test]
async fn admin_endpoints_do_not_exist_without_an_admin_token() {
    let app = TestApp::spawn_without_worker_with(vec![("ADMIN_TOKEN", String::new())]).await;

    for path in [
        "/api/admin/queues",
        "/api/admin/jobs/0190c0de-0000-7000-8000-000000000000",
    ] {
        let response = app.get(path, Some("anything")).await;
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_counts_need_the_admin_token_and_show_real_numbers() {
    let mut app = TestApp::spawn_with(Options {
        worker: true,
        env: vec![("ADMIN_TOKEN", "s3cret-operator-token".into())],
        ..Options::default()
    })
    .await;
    let body = app.sign_up("counted@example.com", "Counted").await;
    let job = &testkit::job_id(&body, "welcome-email");
    app.run_jobs_until_idle().await;
    assert_eq!(app.job_state(job).await, "completed");

    let anonymous = app.get("/api/admin/queues", None).await;
    let user_token = app.get("/api/admin/queues", body["token"].as_str()).await;
    let admin = app
        .get("/api/admin/queues", Some("s3cret-operator-token"))
        .await;

    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        user_token.status(),
        401,
        "a user token is not an admin token"
    );
    assert_eq!(admin.status(), 200);
    let counts: Value = admin.json().await.expect("json");
    let queue = &counts["queues"][0];
    assert_eq!(queue["queue"], "welcome-email");
    assert_eq!(queue["completed"], 1);
    for state in ["waiting", "active", "delayed", "failed", "paused"] {
        assert_eq!(queue[state], 0, "{state}: {counts}");
    }
}
