use std::time::Duration;

use serde_json::Value;
use testkit::TestApp;

const DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_recipient_fails_the_job_at_once_with_the_reason() {
    let app = TestApp::spawn().await;
    app.smtp.refuse_next("550 5.1.1 mailbox does not exist");

    let body = app.sign_up("nobody@example.com", "Nobody").await;

    let job_id = body["jobs"][0]["id"].as_str().expect("job id");
    let token = body["token"].as_str();
    app.wait_for_job_state(job_id, "failed", DEADLINE).await;
    let job: Value = app
        .get(&format!("/api/jobs/{job_id}"), token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        job["attempts_made"], 1,
        "a permanent failure is not retried: {job}"
    );
    assert!(job["finished_at"].is_string());
    let error = job["error"].as_str().expect("the reason is recorded");
    assert!(error.contains("rejected"), "{error}");
    assert!(error.contains("mailbox does not exist"), "{error}");
    assert_eq!(app.smtp.refused(), 1);
    assert!(app.smtp.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_smtp_failure_is_retried_and_the_email_sent_once() {
    let app = TestApp::spawn().await;
    app.smtp.refuse_next("451 4.3.0 try again later");

    let body = app.sign_up("patient@example.com", "Patient").await;

    let job_id = body["jobs"][0]["id"].as_str().expect("job id");
    app.wait_for_job_state(job_id, "completed", DEADLINE).await;
    let job: Value = app
        .get(&format!("/api/jobs/{job_id}"), body["token"].as_str())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(job["attempts_made"], 2, "{job}");
    assert!(
        job["error"].is_null(),
        "a success clears the last error: {job}"
    );
    assert_eq!(app.smtp.refused(), 1);
    assert_eq!(app.smtp.received().len(), 1);
}
