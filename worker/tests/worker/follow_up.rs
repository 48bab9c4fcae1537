//! The follow-up email: scheduled when an account is verified, visible to
//! its user as a delayed job, sent only to a user who still needs it, with
//! a one-click unsubscribe, and sent once even after Redis lost it.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use testkit::app::Options;
use testkit::images::{jpeg, photo};
use testkit::smtp::ReceivedEmail;
use testkit::{DEADLINE, TestApp, job_id};

const SECRET: &str = "unsubscribe-secret-for-tests-0123456789";
/// The follow-up's subject starts with the user's name.
const NAME: &str = "Ada";
const TITLE: &str = "Ada, one step left";

async fn app_with_follow_up(delay: Duration) -> TestApp {
    TestApp::spawn_with(Options {
        worker: true,
        configure: Some(testkit::app::configure(move |s| {
            s.mail.unsubscribe_secret = Some(SECRET.into());
            s.mail.follow_up_delay = delay;
            s.redis.redeliver_after = Duration::from_secs(1);
            s.queues.account_deletion.backoff = Duration::from_millis(100);
        })),
        ..Options::default()
    })
    .await
}

/// The follow-up job of a confirmed signup: its id, and its status.
async fn follow_up(app: &TestApp, signup: &Value) -> (String, Value) {
    let id = job_id(signup, "follow-up-email");
    let token = signup["token"].as_str();
    let status = app.job_status(&id, token).await;
    (id, status)
}

/// The follow-up job's result once it has run.
async fn outcome(app: &TestApp, signup: &Value) -> Value {
    let (id, _) = follow_up(app, signup).await;
    app.wait_for_job_state(&id, "completed", DEADLINE).await;
    app.job_status(&id, signup["token"].as_str()).await["result"].clone()
}

/// A header of the raw message, unfolded.
fn header(email: &ReceivedEmail, name: &str) -> Option<String> {
    let unfolded = email.data.replace("\r\n ", " ").replace("\r\n\t", " ");
    let prefix = format!("{name}: ");
    unfolded
        .lines()
        .find_map(|line| line.strip_prefix(&prefix).map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_a_photo_gets_the_follow_up_with_a_one_click_unsubscribe() {
    let app = app_with_follow_up(Duration::from_secs(5)).await;
    let signup = app.sign_up("follow@example.com", NAME).await;
    let token = signup["token"].as_str().expect("a token");

    // Answered as delayed by the confirmation, then listed among the
    // user's jobs as delayed, with the time it will run.
    let answered = signup["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|job| job["name"] == "follow-up-email"))
        .expect("the confirmation's answer names the follow-up");
    assert_eq!(answered["state"], "delayed");
    let (id, _) = follow_up(&app, &signup).await;
    testkit::wait::until("the follow-up to be delayed", DEADLINE, || async {
        (app.job_state(&id).await == "delayed").then_some(())
    })
    .await;
    let mine: Value = app
        .get("/api/me/jobs", Some(token))
        .await
        .json()
        .await
        .expect("JSON");
    let listed = mine["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .find(|job| job["name"] == "follow-up-email")
        .expect("the follow-up is listed")
        .clone();
    assert_eq!(listed["state"], "delayed");
    let created: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(listed["created_at"].clone()).expect("a time");
    let run_at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(listed["run_at"].clone()).expect("the time it will run");
    let delay = (run_at - created).num_milliseconds();
    assert!(
        (4_900..=5_100).contains(&delay),
        "due 5 s after it was recorded: {delay} ms"
    );

    let emails = app.smtp.wait_for_titled(TITLE, 1, DEADLINE).await;
    let email = &emails[0];
    assert_eq!(email.to, ["follow@example.com"]);
    let one_click = header(email, "List-Unsubscribe").expect("List-Unsubscribe");
    assert_eq!(
        header(email, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let url = one_click
        .strip_prefix("<http://app.test")
        .and_then(|rest| rest.strip_suffix('>'))
        .expect("an absolute link on PUBLIC_URL");
    assert!(url.starts_with("/api/email/unsubscribe?token="), "{url}");
    let visible = email.link_token("http://app.test/unsubscribe#token=");
    assert!(
        url.ends_with(&visible),
        "the visible link carries the same token"
    );
    assert_eq!(
        outcome(&app, &signup).await["delivered_to"],
        "follow@example.com"
    );

    // A mail client's one-click POST: a form body, no login.
    let clicked = app
        .client
        .post(format!("{}{url}", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("answered");
    assert_eq!(clicked.status(), 200);
    assert_eq!(app.me(token).await["product_email"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsubscribe_token_that_was_changed_or_made_for_another_user_is_refused() {
    let app = app_with_follow_up(Duration::from_secs(3600)).await;
    let signup = app.sign_up("victim@example.com", NAME).await;
    let user_id = signup["user"]["id"]
        .as_str()
        .expect("an id")
        .replace('-', "");
    let other = uuid::Uuid::now_v7().simple().to_string();
    for token in [
        format!("{user_id}.AAAA"),
        format!("{other}.{}", "A".repeat(43)),
        user_id.clone(),
        String::new(),
    ] {
        let response = app
            .client
            .post(format!(
                "{}/api/email/unsubscribe?token={token}",
                app.address
            ))
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), 400, "{token}");
    }
    let me = app.me(signup["token"].as_str().expect("a token")).await;
    assert_eq!(me["product_email"], true, "still subscribed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follow_up_is_skipped_for_a_user_who_uploaded_a_photo() {
    let app = app_with_follow_up(Duration::from_secs(3)).await;
    let signup = app.sign_up("photo@example.com", NAME).await;
    let token = signup["token"].as_str().expect("a token");
    let uploaded = app
        .upload(token, "photo", &jpeg(64, 64, &photo(64, 64)))
        .await;
    assert_eq!(uploaded.status(), 202);

    assert_eq!(
        outcome(&app, &signup).await,
        json!({ "skipped": "the user has a profile photo already" })
    );
    assert!(app.smtp.received_titled(TITLE).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follow_up_is_skipped_for_a_user_who_unsubscribed() {
    let app = app_with_follow_up(Duration::from_secs(3)).await;
    let signup = app.sign_up("optout@example.com", NAME).await;
    let token = signup["token"].as_str().expect("a token");
    let saved = app
        .send_json(
            Method::PUT,
            "/api/me/preferences",
            token,
            &json!({ "product_email": false }),
        )
        .await;
    assert_eq!(saved.status(), 200);
    assert_eq!(app.me(token).await["product_email"], false);

    assert_eq!(
        outcome(&app, &signup).await,
        json!({ "skipped": "the user unsubscribed from product email" })
    );
    assert!(app.smtp.received_titled(TITLE).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_account_cancels_the_follow_up() {
    let app = app_with_follow_up(Duration::from_secs(8)).await;
    let signup = app.sign_up("leaves@example.com", NAME).await;
    let token = signup["token"].as_str().expect("a token");
    // The account's other jobs are done, so the deletion does not wait.
    for queue in [
        "welcome-email",
        "stripe-customer",
        "slack-notify",
        "onboarding-pdf",
    ] {
        let job = job_id(&signup, queue);
        app.wait_for_job_state(&job, "completed", DEADLINE).await;
    }
    let (id, _) = follow_up(&app, &signup).await;
    let key = format!("bull:follow-up-email:{id}");
    testkit::wait::until("the follow-up to be in Redis", DEADLINE, || async {
        (app.redis.cli(&["EXISTS", &key]).trim() == "1").then_some(())
    })
    .await;

    let deleted = app
        .send_json(
            Method::DELETE,
            "/api/me",
            token,
            &json!({ "password": "correct horse battery" }),
        )
        .await;
    assert_eq!(deleted.status(), 202);
    testkit::wait::until("the account to be gone", DEADLINE, || async {
        let users: i64 = sqlx::query_scalar("select count(*) from users")
            .fetch_one(&app.pool)
            .await
            .expect("countable");
        (users == 0).then_some(())
    })
    .await;
    assert_eq!(
        app.redis.cli(&["EXISTS", &key]).trim(),
        "0",
        "taken out of Redis"
    );
    // Past the time it was due, nothing was sent.
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert!(app.smtp.received_titled(TITLE).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_lost_with_redis_before_it_was_due_is_sent_once_after_the_restarts() {
    let mut app = app_with_follow_up(Duration::from_secs(3)).await;
    let signup = app.sign_up("lost@example.com", NAME).await;
    let (id, _) = follow_up(&app, &signup).await;
    testkit::wait::until("the follow-up to be delayed in Redis", DEADLINE, || async {
        (app.job_state(&id).await == "delayed").then_some(())
    })
    .await;

    // The worker is redeployed while Redis restarts without persistence:
    // every key is gone.
    app.stop_worker().await;
    app.redis.restart();
    assert_eq!(app.redis.cli(&["DBSIZE"]).trim(), "0");
    app.start_worker();

    app.smtp.wait_for_titled(TITLE, 1, DEADLINE).await;
    app.wait_for_job_state(&id, "completed", DEADLINE).await;
    // The relay keeps checking; nothing sends it a second time.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(app.smtp.received_titled(TITLE).len(), 1);
}
