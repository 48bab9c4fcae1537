//! Proving an address: the confirmation email and its link, what waits for
//! the proof, an unconfirmed squatter losing the address to its owner, and
//! the limit on resending.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::TestApp;

const DEADLINE: Duration = Duration::from_secs(20);
const ADDRESS: &str = "owner@example.com";
const CONFIRM_SUBJECT: &str = "Confirm your email address for Acme";

async fn verify(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json("/api/email/verify", &json!({ "token": token }))
        .await
}

async fn login(app: &TestApp, password: &str) -> u16 {
    app.post_json(
        "/api/login",
        &json!({ "email": ADDRESS, "password": password }),
    )
    .await
    .status()
    .as_u16()
}

/// Waits until the one account with [`ADDRESS`] is `name`'s: the
/// squatter's has been cleaned up.
async fn only_account_is_named(app: &TestApp, name: &str) {
    testkit::wait::until("the squatter's account to go", DEADLINE, || async {
        let names: Vec<String> =
            sqlx::query_scalar("select name from users where lower(email) = lower($1)")
                .bind(ADDRESS)
                .fetch_all(&app.pool)
                .await
                .ok()?;
        (names == [name]).then_some(())
    })
    .await;
}

fn token(body: &Value) -> &str {
    body["token"].as_str().expect("a session token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_email_to_an_address_carries_no_name_and_its_link_confirms_it_once() {
    let app = TestApp::spawn_with_worker().await;
    let name = r#"<a href="https://evil.example/win">Claim your prize</a>"#;
    let signup = app.sign_up_unverified(ADDRESS, name).await;
    let names: Vec<&str> = signup["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|job| job["name"].as_str())
        .collect();
    assert_eq!(names, ["account-email", "slack-notify", "onboarding-pdf"]);
    assert_eq!(signup["user"]["email_verified"], false);
    app.wait_for_signup_jobs(&signup).await;

    let received = app.smtp.received();
    assert_eq!(received.len(), 1, "only the confirmation, no welcome email");
    let confirmation = &received[0];
    let parsed = confirmation.parsed();
    assert_eq!(parsed.subject(), Some(CONFIRM_SUBJECT));
    assert_eq!(confirmation.to, [ADDRESS]);
    for part in [
        parsed.body_text(0).expect("text").into_owned(),
        parsed.body_html(0).expect("html").into_owned(),
    ] {
        assert!(
            !part.contains("evil.example") && !part.contains("Claim your prize"),
            "the signer's text reached an unconfirmed address: {part}"
        );
    }
    let me = app.me(token(&signup)).await;
    assert_eq!(me["email_verified"], false);
    assert_eq!(me["stripe_customer_id"], Value::Null);

    let link = confirmation.link_token("http://app.test/verify-email#token=");
    let confirmed = verify(&app, &link).await;
    assert_eq!(confirmed.status(), 200);
    let confirmed: Value = confirmed.json().await.expect("JSON");
    assert_eq!(confirmed["user"]["email_verified"], true);
    let followers: Vec<&str> = confirmed["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|job| job["name"].as_str())
        .collect();
    assert_eq!(followers, ["welcome-email", "stripe-customer"]);
    let welcome = app
        .smtp
        .wait_for_titled(&format!("Welcome to Acme, {name}!"), 1, DEADLINE)
        .await;
    assert_eq!(welcome[0].to, [ADDRESS], "the welcome follows the proof");

    // Followed again: answered like the first time, and nothing starts.
    let again = verify(&app, &link).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.expect("JSON");
    assert_eq!(again["user"]["email_verified"], true);
    assert_eq!(again["jobs"], json!([]));
    // Long after, the spent link names nobody.
    sqlx::query("update email_verifications set used_at = now() - interval '1 hour'")
        .execute(&app.pool)
        .await
        .expect("aged");
    let later = verify(&app, &link).await;
    assert_eq!(later.status(), 400);
    let later: Value = later.json().await.expect("JSON");
    assert_eq!(later["error"]["code"], "invalid_verification_link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_confirmation_link_is_refused() {
    let app = TestApp::spawn_without_worker().await;
    let signup = app.sign_up_unverified(ADDRESS, "Owner").await;
    let user_id = signup["user"]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("a user id");
    let (link, hash) = store::tokens::mint().expect("random");
    // Issued with no time to live: expired by the time it is followed.
    store::verifications::issue(&app.pool, user_id, 0, ADDRESS, &hash, Duration::ZERO)
        .await
        .expect("a link");

    let expired = verify(&app, &link).await;
    assert_eq!(expired.status(), 400);
    assert_eq!(app.me(token(&signup)).await["email_verified"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_signup_takes_an_address_back_from_an_unconfirmed_squatter() {
    let app = TestApp::spawn_with_worker().await;
    let squatter = app.sign_up_unverified(ADDRESS, "Squatter").await;
    assert_eq!(
        app.get("/api/me", Some(token(&squatter))).await.status(),
        200
    );

    let owner = app.sign_up(ADDRESS, "Owner").await;
    assert_eq!(
        app.get("/api/me", Some(token(&squatter))).await.status(),
        401
    );
    assert_eq!(app.me(token(&owner)).await["name"], "Owner");
    only_account_is_named(&app, "Owner").await;
    assert_eq!(login(&app, "correct horse battery").await, 200);

    // A confirmed address is nobody else's to take.
    let taken = app
        .post_json(
            "/api/signup",
            &json!({ "email": ADDRESS, "password": "another password", "name": "Late" }),
        )
        .await;
    assert_eq!(taken.status(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_takes_an_address_back_from_an_unconfirmed_squatter_whose_account_goes() {
    let app = TestApp::spawn_with_worker().await;
    let squatter = app.sign_up_unverified(ADDRESS, "Squatter").await;
    app.post_json("/api/password/forgot", &json!({ "email": ADDRESS }))
        .await;
    let email = app
        .smtp
        .wait_for_titled("Reset your Acme password", 1, DEADLINE)
        .await;
    let link = email[0].link_token("http://app.test/reset-password#token=");
    let reset = app
        .post_json(
            "/api/password/reset",
            &json!({ "token": link, "password": "the owner's own password" }),
        )
        .await;
    assert_eq!(reset.status(), 200);
    let reset: Value = reset.json().await.expect("JSON");

    assert_eq!(reset["user"]["email_verified"], true, "the link proved it");
    assert_ne!(reset["user"]["id"], squatter["user"]["id"], "a new account");
    assert_eq!(reset["user"]["name"], "owner", "nothing the squatter typed");
    only_account_is_named(&app, "owner").await;
    assert_eq!(
        app.get("/api/me", Some(token(&squatter))).await.status(),
        401
    );
    assert_eq!(login(&app, "correct horse battery").await, 401);
    assert_eq!(login(&app, "the owner's own password").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_confirmation_is_resent_at_most_three_times_an_hour_and_never_once_confirmed() {
    let app = TestApp::spawn_without_worker_with(|s| s.auth.rate_limit = 0).await;
    let signup = app.sign_up_unverified(ADDRESS, "Owner").await;
    let resend = || async {
        app.send_json(
            reqwest::Method::POST,
            "/api/email/verify/resend",
            token(&signup),
            &json!({}),
        )
        .await
    };
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(resend().await.status().as_u16());
    }
    assert_eq!(statuses, [202, 202, 429], "the signup's email counts");
    let limited = resend().await;
    assert!(limited.headers().contains_key("retry-after"));

    let confirmed = app.sign_up("confirmed@example.com", "Confirmed").await;
    let already = app
        .send_json(
            reqwest::Method::POST,
            "/api/email/verify/resend",
            token(&confirmed),
            &json!({}),
        )
        .await;
    assert_eq!(already.status(), 409);
    let already: Value = already.json().await.expect("JSON");
    assert_eq!(already["error"]["code"], "already_verified");
}

async fn change_email(app: &TestApp, session: &str, password: &str, to: &str) -> reqwest::Response {
    app.send_json(
        reqwest::Method::POST,
        "/api/me/email",
        session,
        &json!({ "password": password, "email": to }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_change_takes_effect_when_the_new_address_confirms_it_and_the_old_one_is_told() {
    const NEW: &str = "new.owner@example.com";
    let app = TestApp::spawn_with_worker().await;
    let signup = app.sign_up(ADDRESS, "Owner").await;
    let session = token(&signup);
    app.wait_for_signup_jobs(&signup).await;

    let wrong = change_email(&app, session, "not the password", NEW).await;
    assert_eq!(wrong.status(), 403);
    let invalid = change_email(&app, session, "correct horse battery", "no-at-sign").await;
    assert_eq!(invalid.status(), 422);
    let same = change_email(&app, session, "correct horse battery", "OWNER@example.com").await;
    assert_eq!(same.status(), 422);
    let taken = app.sign_up("taken@example.com", "Taken").await;
    let _ = taken;
    let conflict = change_email(&app, session, "correct horse battery", "taken@example.com").await;
    assert_eq!(conflict.status(), 409);

    let asked = change_email(&app, session, "correct horse battery", NEW).await;
    assert_eq!(asked.status(), 202);
    let link_email = app
        .smtp
        .wait_for_titled("Confirm your new email address for Acme", 1, DEADLINE)
        .await;
    assert_eq!(
        link_email[0].to,
        [NEW],
        "the link goes to the new address only"
    );
    // Nothing changes until the link is followed.
    assert_eq!(app.me(session).await["email"], ADDRESS);
    assert_eq!(login(&app, "correct horse battery").await, 200);

    let link = link_email[0].link_token("http://app.test/verify-email#token=");
    let moved = verify(&app, &link).await;
    assert_eq!(moved.status(), 200);
    let moved: Value = moved.json().await.expect("JSON");
    assert_eq!(moved["user"]["email"], NEW);
    assert_eq!(moved["user"]["email_verified"], true);
    let notice = app
        .smtp
        .wait_for_titled("Your Acme email address was changed", 1, DEADLINE)
        .await;
    assert_eq!(notice[0].to, [ADDRESS], "the old address is told");

    assert_eq!(
        login(&app, "correct horse battery").await,
        401,
        "the old address is free"
    );
    let by_new = app
        .post_json(
            "/api/login",
            &json!({ "email": NEW, "password": "correct horse battery" }),
        )
        .await;
    assert_eq!(by_new.status(), 200);
    let again = verify(&app, &link).await;
    assert_eq!(again.status(), 200, "followed again: the same answer");
    let again: Value = again.json().await.expect("JSON");
    assert_eq!(
        (&again["user"]["email"], &again["jobs"]),
        (&json!(NEW), &json!([]))
    );
}
