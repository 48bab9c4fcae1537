use std::time::Duration;

use catalogue::RateLimit;
use testkit::TestApp;

use testkit::DEADLINE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_recipient_fails_the_job_at_once_with_the_reason() {
    let app = TestApp::spawn_with_worker().await;
    let body = app
        .sign_up_and_meanwhile("nobody@example.com", "Nobody", |app| {
            app.smtp.refuse_next("550 5.1.1 mailbox does not exist")
        })
        .await;

    let job_id = &testkit::job_id(&body, "welcome-email");
    let token = body["token"].as_str();
    app.wait_for_job_state(job_id, "failed", DEADLINE).await;
    let job = app.job_status(job_id, token).await;
    assert_eq!(
        job["attempts_made"], 1,
        "a permanent failure is not retried: {job}"
    );
    assert!(job["finished_at"].is_string());
    assert_eq!(job["error"]["code"], "failed", "{job}");
    let message = job["error"]["message"].as_str().expect("a sentence");
    assert!(
        !message.contains("mailbox"),
        "SMTP text is for operators: {message}"
    );
    let detail = app.operator_view(job_id).await["error_detail"]
        .as_str()
        .expect("the reason is recorded")
        .to_owned();
    assert!(detail.contains("rejected"), "{detail}");
    assert!(detail.contains("mailbox does not exist"), "{detail}");
    assert_eq!(app.smtp.refused(), 1);
    assert!(app.smtp.received_titled("Welcome").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_smtp_failure_is_retried_and_the_email_sent_once() {
    let app = TestApp::spawn_with_worker().await;
    let body = app
        .sign_up_and_meanwhile("patient@example.com", "Patient", |app| {
            app.smtp.refuse_next("451 4.3.0 try again later")
        })
        .await;

    let job_id = &testkit::job_id(&body, "welcome-email");
    app.wait_for_job_state(job_id, "completed", DEADLINE).await;
    let job = app.job_status(job_id, body["token"].as_str()).await;
    assert_eq!(job["attempts_made"], 2, "{job}");
    assert!(
        job["error"].is_null(),
        "a success clears the last error: {job}"
    );
    assert_eq!(app.smtp.refused(), 1);
    assert_eq!(app.smtp.received_titled("Welcome").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_keeps_failing_stops_after_the_configured_attempts() {
    let app = TestApp::spawn_with(testkit::app::Options {
        worker: true,
        configure: Some(testkit::app::configure(move |s| {
            s.queues.welcome_email.attempts = 3;
            s.queues.welcome_email.backoff = Duration::from_millis(50);
        })),
        ..testkit::app::Options::default()
    })
    .await;
    let body = app
        .sign_up_and_meanwhile("flaky@example.com", "Flaky", |app| {
            for _ in 0..5 {
                app.smtp.refuse_next("421 4.7.0 try again later");
            }
        })
        .await;

    let job_id = &testkit::job_id(&body, "welcome-email");
    app.wait_for_job_state(job_id, "failed", DEADLINE).await;
    let job = app.job_status(job_id, body["token"].as_str()).await;
    assert_eq!(job["max_attempts"], 3);
    assert_eq!(job["attempts_made"], 3, "{job}");
    assert_eq!(job["error"]["code"], "unavailable", "{job}");
    let detail = app.operator_view(job_id).await["error_detail"].to_string();
    assert!(detail.contains("try again later"), "{detail}");
    assert_eq!(
        app.smtp.refused(),
        3,
        "exactly the configured attempts were made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_queue_spaces_its_jobs_out() {
    let app = TestApp::spawn_with(testkit::app::Options {
        worker: true,
        configure: Some(testkit::app::configure(|s| {
            s.queues.welcome_email.rate_limit = Some(RateLimit {
                max: 1,
                per: Duration::from_secs(1),
            });
        })),
        ..testkit::app::Options::default()
    })
    .await;
    let mut jobs = Vec::new();
    for n in 0..3 {
        let body = app.sign_up(&format!("burst{n}@example.com"), "Burst").await;
        jobs.push(testkit::job_id(&body, "welcome-email"));
    }
    for job in &jobs {
        app.wait_for_job_state(job, "completed", DEADLINE).await;
    }

    let mut starts: Vec<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "select started_at from jobs where queue = 'welcome-email' and started_at is not null",
    )
    .fetch_all(&app.pool)
    .await
    .expect("start times");
    starts.sort();
    assert_eq!(starts.len(), 3);
    for pair in starts.windows(2) {
        let gap = pair[1] - pair[0];
        // The limiter's window is 1 s; allow for clock and scheduling slack.
        assert!(gap >= chrono::Duration::milliseconds(900), "{starts:?}");
    }
}
