use std::time::Duration;

use serde_json::{Value, json};
use testkit::TestApp;

const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_creates_the_user_and_the_welcome_email_reaches_the_inbox() {
    let app = TestApp::spawn_with_worker().await;

    let body = app.sign_up("ada@example.com", "Ada Lovelace").await;

    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["name"], "Ada Lovelace");
    assert!(body["token"].as_str().is_some_and(|t| t.len() >= 32));
    let jobs = body["jobs"].as_array().expect("jobs is a list");
    let names: Vec<&str> = jobs.iter().filter_map(|job| job["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "welcome-email",
            "stripe-customer",
            "account-email",
            "slack-notify",
            "onboarding-pdf"
        ],
        "{body}"
    );
    let job_id = jobs[0]["id"].as_str().expect("job id");
    assert_eq!(
        jobs[0]["status_url"],
        format!("http://app.test/api/jobs/{job_id}")
    );

    // The confirmation first (sent before the address was confirmed), then
    // the welcome.
    let emails = app.smtp.wait_for(2, DEADLINE).await;
    assert_eq!(emails.len(), 2);
    assert_eq!(
        emails[0].parsed().subject(),
        Some("Confirm your email address for Acme")
    );
    assert_eq!(emails[1].to, vec!["ada@example.com".to_owned()]);
    let message = emails[1].parsed();
    assert_eq!(message.subject(), Some("Welcome to Acme, Ada Lovelace!"));
    let text = message.body_text(0).expect("a plain-text part");
    let html = message.body_html(0).expect("an HTML part");
    assert!(text.contains("Hi Ada Lovelace,"), "{text}");
    assert!(
        text.contains("http://app.test/"),
        "the link uses PUBLIC_URL: {text}"
    );
    // minijinja's HTML escaping writes `/` as `&#x2f;`, which HTML decodes.
    let html = html.replace("&#x2f;", "/");
    assert!(html.contains("Hi Ada Lovelace"), "{html}");
    assert!(html.contains(r#"href="http://app.test/""#), "{html}");

    app.wait_for_job_state(job_id, "completed", DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_returns_before_its_email_is_sent() {
    let app = TestApp::spawn_with_worker().await;
    app.smtp.set_delay(Duration::from_secs(3));

    let body = app.sign_up_unverified("grace@example.com", "Grace").await;

    let job_id = &testkit::job_id(&body, "account-email");
    assert!(app.smtp.received().is_empty(), "the email was sent inline");
    assert_ne!(app.job_state(job_id).await, "completed");
    app.smtp.wait_for(1, DEADLINE).await;
    app.wait_for_job_state(job_id, "completed", DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_email_in_another_letter_case_is_taken() {
    let app = TestApp::spawn_without_worker().await;
    app.sign_up("linus@example.com", "Linus").await;

    let response = app
        .post_json(
            "/api/signup",
            &json!({ "email": "Linus@Example.COM", "password": "another password", "name": "L" }),
        )
        .await;

    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "email_taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_signups_with_one_email_leave_one_user_and_one_email() {
    let mut app = TestApp::spawn_without_worker().await;
    let attempt = |name: &'static str| {
        let body = json!({ "email": "twin@example.com", "password": "correct horse battery", "name": name });
        let app = &app;
        async move { app.post_json("/api/signup", &body).await }
    };

    let (first, second) = tokio::join!(attempt("First"), attempt("Second"));

    // At the same moment the unique index refuses one (409); a moment
    // apart, the later takes the unconfirmed address over and the earlier
    // account is cleaned up. Either way one account is left.
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort_unstable();
    assert!(
        statuses == [201, 409] || statuses == [201, 201],
        "{statuses:?}"
    );
    // Every job done: a (wrong) second email would have been sent by now.
    app.run_jobs_until_idle().await;
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(users, 1, "one user");
    let to_twin = app
        .smtp
        .received()
        .iter()
        .filter(|email| email.to == ["twin@example.com"])
        .count();
    assert_eq!(to_twin, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_while_redis_is_down_succeeds_and_the_job_runs_once_redis_is_back() {
    let mut app = TestApp::spawn_without_worker().await;
    app.redis.stop();

    let body = app.sign_up("offline@example.com", "Offline").await;

    let job_id = &testkit::job_id(&body, "welcome-email");
    assert_eq!(body["jobs"][0]["state"], "pending");
    assert_eq!(app.job_state(job_id).await, "pending");

    let all_jobs: Vec<&str> = body["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|job| job["id"].as_str())
        .collect();
    for id in &all_jobs {
        assert_eq!(app.job_state(id).await, "pending");
    }

    app.redis.restart();
    app.run_jobs_until_idle().await;
    for id in &all_jobs {
        assert_eq!(app.job_state(id).await, "completed");
    }
    let emails = app.smtp.received();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to, ["offline@example.com"]);
}
