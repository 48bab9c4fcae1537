use serde_json::Value;
use testkit::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sees_the_job_with_its_real_state() {
    let mut app = TestApp::spawn_with_worker().await;
    let signup = app.sign_up("owner@example.com", "Owner").await;
    let token = signup["token"].as_str().expect("token");
    let job_id = &testkit::job_id(&signup, "welcome-email");
    app.run_jobs_until_idle().await;
    assert_eq!(app.job_state(job_id).await, "completed");

    let response = app.get(&format!("/api/jobs/{job_id}"), Some(token)).await;

    assert_eq!(response.status(), 200);
    let job: Value = response.json().await.expect("json");
    assert_eq!(job["id"], job_id.as_str());
    assert_eq!(job["name"], "welcome-email");
    assert_eq!(job["state"], "completed");
    assert_eq!(job["attempts_made"], 1);
    assert_eq!(job["max_attempts"], 5);
    assert_eq!(job["progress"], 100);
    assert_eq!(job["result"]["delivered_to"], "owner@example.com");
    assert!(job["error"].is_null());
    for field in ["created_at", "started_at", "finished_at"] {
        assert!(job[field].is_string(), "{field} is set: {job}");
    }
}

#[tokio::test]
async fn a_stranger_gets_404_and_an_anonymous_caller_401() {
    let app = TestApp::spawn_without_worker().await;
    let owner = app.sign_up("mine@example.com", "Mine").await;
    let stranger = app.sign_up("yours@example.com", "Yours").await;
    let path = format!("/api/jobs/{}", testkit::job_id(&owner, "welcome-email"));

    let as_stranger = app.get(&path, stranger["token"].as_str()).await;
    let as_nobody = app.get(&path, None).await;

    assert_eq!(as_stranger.status(), 404);
    let error: Value = as_stranger.json().await.expect("json");
    assert_eq!(error["error"]["code"], "not_found");
    assert_eq!(as_nobody.status(), 401);
}

#[tokio::test]
async fn unknown_and_malformed_job_ids_are_404() {
    let app = TestApp::spawn_without_worker().await;
    let user = app.sign_up("asker@example.com", "Asker").await;
    let token = user["token"].as_str();

    let unknown = app
        .get("/api/jobs/01900000-0000-7000-8000-000000000000", token)
        .await;
    let malformed = app.get("/api/jobs/not-a-uuid", token).await;

    assert_eq!(unknown.status(), 404);
    assert_eq!(malformed.status(), 404);
}
