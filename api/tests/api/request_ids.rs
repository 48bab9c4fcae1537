//! One request id from click to job, the api's side: taken from the client
//! when well-formed, else made; returned; on the request's log lines; stored
//! with the jobs it records. (The worker's side is in the worker's tests.)

use serde_json::Value;
use testkit::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signups_request_id_is_answered_logged_and_stored_with_its_jobs() {
    let app = TestApp::spawn_without_worker().await;
    let api = app.spawn_api_process(env!("CARGO_BIN_EXE_api")).await;

    let response = app
        .client
        .post(format!("{}/api/signup", api.address))
        .header("x-request-id", "click-42")
        .json(&serde_json::json!({"email": "traced@example.com", "password": "correct horse battery", "name": "Traced"}))
        .send()
        .await
        .expect("signup");

    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], "click-42");
    let stored: Vec<Option<String>> = sqlx::query_scalar("select request_id from jobs")
        .fetch_all(&app.pool)
        .await
        .expect("records");
    assert_eq!(
        stored,
        vec![Some("click-42".to_owned()); 3],
        "every job of the signup"
    );
    let lines = api.log_lines();
    let created = lines
        .iter()
        .find(|line| line["message"] == "account created")
        .unwrap_or_else(|| panic!("the signup is logged: {lines:?}"));
    assert!(
        created.to_string().contains(r#""request_id":"click-42""#),
        "with the request's id: {created}"
    );
}

#[tokio::test]
async fn an_id_is_made_when_none_or_a_malformed_one_is_sent() {
    let app = TestApp::spawn_without_worker().await;
    for sent in [
        None,
        Some("has spaces and \"quotes\""),
        Some(&*"x".repeat(200)),
    ] {
        let mut request = app.client.get(format!("{}/healthz", app.address));
        if let Some(sent) = sent {
            request = request.header("x-request-id", sent);
        }
        let response = request.send().await.expect("answer");
        let id = response.headers()["x-request-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert_eq!(id.len(), 32, "a fresh id for {sent:?}: {id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    let signup: Value = app.sign_up("one@example.com", "One").await;
    assert!(signup["token"].is_string());
}
