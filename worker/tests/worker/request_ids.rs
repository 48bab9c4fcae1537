//! One request id from click to job, the worker's side: the job span of
//! every job a request recorded carries that request's id. (The api's side,
//! its own log lines and the stored id, is tested in the api's tests.)

use serde_json::Value;
use testkit::TestApp;

const WORKER: &str = env!("CARGO_BIN_EXE_worker");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_logs_each_job_under_the_id_of_the_request_that_recorded_it() {
    let app = TestApp::spawn_without_worker().await;
    let worker = app.spawn_worker_process_logging(WORKER);

    let response = app
        .client
        .post(format!("{}/api/signup", app.address))
        .header("x-request-id", "click-42")
        .json(&serde_json::json!({"email": "traced@example.com", "password": "correct horse battery", "name": "Traced"}))
        .send()
        .await
        .expect("signup");
    let signup: Value = response.json().await.expect("json");
    app.wait_for_signup_jobs(&signup).await;

    let completed: Vec<String> = worker
        .log_lines()
        .iter()
        .filter(|line| line["message"] == "job completed")
        .map(Value::to_string)
        .collect();
    assert_eq!(completed.len(), 3, "{completed:?}");
    for line in &completed {
        assert!(line.contains(r#""request_id":"click-42""#), "{line}");
    }
}
