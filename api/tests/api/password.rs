use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::TestApp;

const DEADLINE: Duration = Duration::from_secs(20);
const OWNER: &str = "owner@example.com";
const NEW_PASSWORD: &str = "a brand new password";
const RESET_LINK: &str = "http://app.test/reset-password#token=";

async fn forgot(app: &TestApp, email: &str) -> reqwest::Response {
    app.post_json("/api/password/forgot", &json!({ "email": email }))
        .await
}

async fn reset(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/api/password/reset",
        &json!({ "token": token, "password": password }),
    )
    .await
}

async fn login(app: &TestApp, password: &str) -> u16 {
    app.post_json(
        "/api/login",
        &json!({ "email": OWNER, "password": password }),
    )
    .await
    .status()
    .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_works_once_ends_every_session_and_lets_the_owner_back_in_during_a_lockout() {
    let app = TestApp::spawn_with_worker_with(|s| {
        s.auth.login_failures.max = 2;
        s.auth.rate_limit = 0;
    })
    .await;
    let signup = app
        .sign_up(OWNER, "Click <a href=http://evil.test>here</a>")
        .await;
    let old_session = signup["token"].as_str().expect("token").to_owned();
    for _ in 0..2 {
        assert_eq!(login(&app, "a stranger's guess").await, 401);
    }
    assert_eq!(login(&app, "correct horse battery").await, 401, "locked");

    let asked = forgot(&app, OWNER).await;
    assert_eq!(asked.status(), 202);
    let emails = app
        .smtp
        .wait_for_titled("Reset your Acme password", 1, DEADLINE)
        .await;
    assert_eq!(emails[0].to, [OWNER]);
    assert!(
        !emails[0].data.contains("evil.test") && !emails[0].data.contains("Click"),
        "nothing the signer typed reaches the address: {}",
        emails[0].data
    );
    let token = emails[0].link_token(RESET_LINK);

    let done = reset(&app, &token, NEW_PASSWORD).await;
    assert_eq!(done.status(), 200);
    let done: Value = done.json().await.expect("json");
    let new_session = done["token"].as_str().expect("a new session");
    assert!(done["device_token"].is_string());
    assert_eq!(app.get("/api/me", Some(new_session)).await.status(), 200);
    assert_eq!(
        app.get("/api/me", Some(&old_session)).await.status(),
        401,
        "every earlier session ended"
    );
    assert_eq!(
        login(&app, NEW_PASSWORD).await,
        200,
        "the lockout is cleared"
    );
    assert_eq!(
        login(&app, "correct horse battery").await,
        401,
        "the old password is gone"
    );

    let again = reset(&app, &token, "yet another password").await;
    assert_eq!(again.status(), 400, "a link works once");
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["error"]["code"], "invalid_reset_link");

    let notices = app
        .smtp
        .wait_for_titled("Your Acme password was changed", 1, DEADLINE)
        .await;
    assert_eq!(notices[0].to, [OWNER]);
    let text = notices[0].parsed().body_text(0).expect("text").into_owned();
    assert!(text.contains("http://app.test/forgot-password"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_for_an_unknown_address_sends_nothing_and_answers_exactly_like_a_known_one() {
    let mut app = TestApp::spawn_with_worker().await;
    app.sign_up(OWNER, "Owner").await;

    let mut answers = Vec::new();
    for email in [OWNER, "nobody@example.com", "OWNER@example.com"] {
        let started = Instant::now();
        let answer = forgot(&app, email).await;
        let took = started.elapsed();
        answers.push((answer.status(), answer.text().await.expect("body")));
        // The floor that hides a known address's extra work.
        assert!(took >= Duration::from_millis(250), "{email}: {took:?}");
    }
    app.run_jobs_until_idle().await;

    assert!(
        answers.iter().all(|answer| answer == &answers[0]),
        "{answers:?}"
    );
    assert_eq!(answers[0].0, 202);
    let resets = app
        .smtp
        .wait_for_titled("Reset your Acme password", 2, DEADLINE)
        .await;
    assert_eq!(resets.len(), 2, "the address in any letter case");
    assert!(
        app.smtp.received().iter().all(|email| email.to == [OWNER]),
        "nothing went to the unknown address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_is_refused_and_a_weak_password_keeps_the_link() {
    let app =
        TestApp::spawn_with_worker_with(|s| s.links.password_reset_ttl = Duration::from_secs(3))
            .await;
    app.sign_up(OWNER, "Owner").await;
    forgot(&app, OWNER).await;
    let token = app
        .smtp
        .wait_for_titled("Reset your Acme password", 1, DEADLINE)
        .await[0]
        .link_token(RESET_LINK);

    let weak = reset(&app, &token, "short").await;
    assert_eq!(weak.status(), 422);
    let weak: Value = weak.json().await.expect("json");
    assert!(weak["error"]["fields"]["password"].is_string(), "{weak}");
    let forged = reset(&app, "not-a-link", NEW_PASSWORD).await;
    assert_eq!(forged.status(), 400);
    // A window must pass: the link's three-second lifetime.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let late = reset(&app, &token, NEW_PASSWORD).await;

    assert_eq!(late.status(), 400, "the link expired");
    assert_eq!(
        login(&app, "correct horse battery").await,
        200,
        "nothing changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_gets_at_most_three_reset_emails_an_hour() {
    let mut app = TestApp::spawn_with_worker_with(|s| s.auth.rate_limit = 0).await;
    app.sign_up(OWNER, "Owner").await;

    for _ in 0..5 {
        assert_eq!(forgot(&app, OWNER).await.status(), 202);
    }
    app.run_jobs_until_idle().await;

    let resets = app
        .smtp
        .received()
        .into_iter()
        .filter(|email| email.parsed().subject() == Some("Reset your Acme password"))
        .count();
    assert_eq!(resets, 3);
}

async fn change(app: &TestApp, token: &str, current: &str, new: &str) -> reqwest::Response {
    app.send_json(
        reqwest::Method::POST,
        "/api/me/password",
        token,
        &json!({ "current_password": current, "new_password": new }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_needs_the_current_one_ends_the_other_sessions_and_tells_the_owner() {
    let app = TestApp::spawn_with_worker().await;
    let signup = app.sign_up(OWNER, "Owner").await;
    let this = signup["token"].as_str().expect("token");
    let other: Value = app
        .post_json(
            "/api/login",
            &json!({ "email": OWNER, "password": "correct horse battery" }),
        )
        .await
        .json()
        .await
        .expect("JSON");
    let other = other["token"].as_str().expect("token");

    let wrong = change(&app, this, "not it at all", NEW_PASSWORD).await;
    assert_eq!(wrong.status(), 403);
    let wrong: Value = wrong.json().await.expect("JSON");
    assert_eq!(wrong["error"]["code"], "wrong_password");
    let weak = change(&app, this, "correct horse battery", "short").await;
    assert_eq!(weak.status(), 422);
    let weak: Value = weak.json().await.expect("JSON");
    assert!(
        weak["error"]["fields"]["new_password"].is_string(),
        "{weak}"
    );
    assert_eq!(app.get("/api/me", Some(other)).await.status(), 200);

    let changed = change(&app, this, "correct horse battery", NEW_PASSWORD).await;
    assert_eq!(changed.status(), 204);
    assert_eq!(app.get("/api/me", Some(this)).await.status(), 200);
    assert_eq!(app.get("/api/me", Some(other)).await.status(), 401);
    assert_eq!(login(&app, "correct horse battery").await, 401);
    assert_eq!(login(&app, NEW_PASSWORD).await, 200);
    let notice = app
        .smtp
        .wait_for_titled("Your Acme password was changed", 1, DEADLINE)
        .await;
    assert_eq!(notice[0].to, [OWNER]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_session_guesses_the_password_no_faster_than_the_login_form() {
    let app = TestApp::spawn_without_worker_with(|s| {
        s.auth.login_failures.max = 3;
        s.auth.rate_limit = 0;
    })
    .await;
    let signup = app.sign_up(OWNER, "Owner").await;
    let stolen = signup["token"].as_str().expect("token");
    let mut statuses = Vec::new();
    for guess in [
        "guess one!",
        "guess two!",
        "guess three!",
        "correct horse battery",
    ] {
        statuses.push(
            change(&app, stolen, guess, NEW_PASSWORD)
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [403, 403, 403, 429], "even the right one waits");
    let deleting = app
        .send_json(
            reqwest::Method::DELETE,
            "/api/me",
            stolen,
            &json!({ "password": "correct horse battery" }),
        )
        .await;
    assert_eq!(deleting.status(), 429, "the session is locked");
    assert_eq!(
        login(&app, "correct horse battery").await,
        200,
        "a session's failures are its own: the account's owner still logs in"
    );
}
