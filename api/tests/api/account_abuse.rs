//! The account flows read as an attacker would: links that outlive the
//! credentials they were issued for, mail budgets per address, caps under
//! concurrent requests, a confirmation followed twice at once, and a
//! stranger's lockout against the owner's own session.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::TestApp;

const DEADLINE: Duration = Duration::from_secs(20);
const OWNER: &str = "owner@example.com";
const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a brand new password";
const RESET_LINK: &str = "http://app.test/reset-password#token=";
const VERIFY_LINK: &str = "http://app.test/verify-email#token=";
const CONFIRM_SUBJECT: &str = "Confirm your email address for Acme";
const NEW_ADDRESS_SUBJECT: &str = "Confirm your new email address for Acme";
const RESET_SUBJECT: &str = "Reset your Acme password";
const MOVE_NOTICE_SUBJECT: &str = "Someone asked to move your Acme account to another address";

fn token(body: &Value) -> &str {
    body["token"].as_str().expect("a session token")
}

async fn forgot(app: &TestApp, email: &str) -> u16 {
    app.post_json("/api/password/forgot", &json!({ "email": email }))
        .await
        .status()
        .as_u16()
}

async fn reset(app: &TestApp, link: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/api/password/reset",
        &json!({ "token": link, "password": password }),
    )
    .await
}

async fn verify(app: &TestApp, link: &str) -> reqwest::Response {
    app.post_json("/api/email/verify", &json!({ "token": link }))
        .await
}

async fn change_email(app: &TestApp, session: &str, to: &str) -> reqwest::Response {
    app.send_json(
        reqwest::Method::POST,
        "/api/me/email",
        session,
        &json!({ "password": PASSWORD, "email": to }),
    )
    .await
}

async fn resend(app: &TestApp, session: &str) -> u16 {
    app.send_json(
        reqwest::Method::POST,
        "/api/email/verify/resend",
        session,
        &json!({}),
    )
    .await
    .status()
    .as_u16()
}

async fn login(app: &TestApp, email: &str, password: &str) -> u16 {
    app.post_json(
        "/api/login",
        &json!({ "email": email, "password": password }),
    )
    .await
    .status()
    .as_u16()
}

/// Emails titled `subject` sent to `to` so far.
fn sent_to(app: &TestApp, subject: &str, to: &str) -> usize {
    app.smtp
        .received_titled(subject)
        .iter()
        .filter(|email| email.to.iter().any(|address| address == to))
        .count()
}

/// Job records of `queue` belonging to the account `user_id`.
async fn records_of(app: &TestApp, queue: &str, user_id: &str) -> i64 {
    sqlx::query_scalar("select count(*) from jobs where queue = $1 and user_id = $2::uuid")
        .bind(queue)
        .bind(user_id)
        .fetch_one(&app.pool)
        .await
        .expect("counted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_change_link_followed_after_a_password_reset_is_refused_and_the_account_keeps_its_address()
 {
    const ATTACKER: &str = "attacker@evil.example";
    let app = TestApp::spawn_with_worker().await;
    let signup = app.sign_up(OWNER, "Owner").await;
    app.wait_for_signup_jobs(&signup).await;

    // Someone who once had the password asks to move the account.
    assert_eq!(
        change_email(&app, token(&signup), ATTACKER).await.status(),
        202
    );
    let kept = app
        .smtp
        .wait_for_titled(NEW_ADDRESS_SUBJECT, 1, DEADLINE)
        .await;
    let attackers_link = kept[0].link_token(VERIFY_LINK);
    // The owner hears of it at once, without the new address in full.
    let notice = app
        .smtp
        .wait_for_titled(MOVE_NOTICE_SUBJECT, 1, DEADLINE)
        .await;
    assert_eq!(notice[0].to, [OWNER]);
    let text = notice[0].parsed().body_text(0).expect("text").into_owned();
    assert!(text.contains("a•••@evil.example"), "{text}");
    assert!(!text.contains(ATTACKER), "the new address in full: {text}");

    // The owner resets the password.
    assert_eq!(forgot(&app, OWNER).await, 202);
    let reset_email = app.smtp.wait_for_titled(RESET_SUBJECT, 1, DEADLINE).await;
    let reset_answer = reset(&app, &reset_email[0].link_token(RESET_LINK), NEW_PASSWORD).await;
    assert_eq!(reset_answer.status(), 200);
    let owner: Value = reset_answer.json().await.expect("JSON");

    let followed = verify(&app, &attackers_link).await;
    assert_eq!(
        followed.status(),
        400,
        "the link died with the old password"
    );
    let error: Value = followed.json().await.expect("JSON");
    assert_eq!(error["error"]["code"], "invalid_verification_link");
    assert_eq!(app.me(token(&owner)).await["email"], OWNER);
    assert_eq!(login(&app, ATTACKER, NEW_PASSWORD).await, 401);
    assert_eq!(login(&app, OWNER, NEW_PASSWORD).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_sent_before_an_address_change_is_refused_after_it() {
    const NEW: &str = "new.owner@example.com";
    let app = TestApp::spawn_with_worker().await;
    let signup = app.sign_up(OWNER, "Owner").await;
    app.wait_for_signup_jobs(&signup).await;
    assert_eq!(forgot(&app, OWNER).await, 202);
    let reset_email = app.smtp.wait_for_titled(RESET_SUBJECT, 1, DEADLINE).await;
    let old_link = reset_email[0].link_token(RESET_LINK);

    assert_eq!(change_email(&app, token(&signup), NEW).await.status(), 202);
    let link = app
        .smtp
        .wait_for_titled(NEW_ADDRESS_SUBJECT, 1, DEADLINE)
        .await[0]
        .link_token(VERIFY_LINK);
    assert_eq!(verify(&app, &link).await.status(), 200);

    let refused = reset(&app, &old_link, NEW_PASSWORD).await;
    assert_eq!(refused.status(), 400);
    let error: Value = refused.json().await.expect("JSON");
    assert_eq!(error["error"]["code"], "invalid_reset_link");
    assert_eq!(login(&app, NEW, PASSWORD).await, 200, "the password stands");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_everywhere_ends_every_session_but_not_the_owners_reset_link() {
    let app = TestApp::spawn_with_worker().await;
    let signup = app.sign_up(OWNER, "Owner").await;
    app.wait_for_signup_jobs(&signup).await;
    assert_eq!(forgot(&app, OWNER).await, 202);
    let link = app.smtp.wait_for_titled(RESET_SUBJECT, 1, DEADLINE).await[0].link_token(RESET_LINK);

    // Whoever knows the password can end every session, silently; that
    // must not void the link in the owner's mailbox.
    let ended = app
        .send_json(
            reqwest::Method::DELETE,
            "/api/sessions",
            token(&signup),
            &json!({}),
        )
        .await;
    assert_eq!(ended.status(), 204);
    let me = app.get("/api/me", Some(token(&signup))).await;
    assert_eq!(me.status(), 401);

    assert_eq!(reset(&app, &link, NEW_PASSWORD).await.status(), 200);
    assert_eq!(login(&app, OWNER, NEW_PASSWORD).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_accounts_moving_to_one_address_send_it_at_most_three_links_and_an_unproven_address_no_notice()
 {
    const TARGET: &str = "target@example.com";
    let mut app = TestApp::spawn_with_worker_with(|s| s.auth.rate_limit = 0).await;
    let mut statuses = Vec::new();
    for n in 0..4 {
        let account = app.sign_up(&format!("mover{n}@example.com"), "Mover").await;
        statuses.push(
            change_email(&app, token(&account), TARGET)
                .await
                .status()
                .as_u16(),
        );
    }
    let unproven = app
        .sign_up_unverified("unproven@example.com", "Unproven")
        .await;
    assert_eq!(
        change_email(&app, token(&unproven), "elsewhere@example.com")
            .await
            .status(),
        202
    );
    app.run_jobs_until_idle().await;

    assert_eq!(
        statuses,
        [202, 202, 202, 429],
        "the address's budget, whoever asks"
    );
    assert_eq!(sent_to(&app, NEW_ADDRESS_SUBJECT, TARGET), 3);
    assert_eq!(
        sent_to(&app, MOVE_NOTICE_SUBJECT, "unproven@example.com"),
        0,
        "an address nobody proved gets no notice naming another"
    );
    assert_eq!(sent_to(&app, MOVE_NOTICE_SUBJECT, "mover0@example.com"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dozen_signups_for_one_unconfirmed_address_send_it_at_most_three_emails() {
    const VICTIM: &str = "victim@example.com";
    let mut app = TestApp::spawn_with_worker_with(|s| s.auth.rate_limit = 0).await;
    let mut answers = Vec::new();
    for n in 0..12 {
        let signup = app
            .sign_up_unverified(VICTIM, &format!("Squatter {n}"))
            .await;
        answers.push(signup["confirmation_email"].as_str().map(str::to_owned));
    }
    app.run_jobs_until_idle().await;

    let sent = answers
        .iter()
        .filter(|a| a.as_deref() == Some("sent"))
        .count();
    let recently = answers
        .iter()
        .filter(|a| a.as_deref() == Some("sent_recently"))
        .count();
    assert_eq!((sent, recently), (3, 9), "{answers:?}");
    // Fewer when the next signup took the address before the worker sent
    // the last one's email (a link for an account being deleted is not sent).
    let received = sent_to(&app, CONFIRM_SUBJECT, VICTIM);
    assert!((1..=3).contains(&received), "{received} emails");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dozen_concurrent_forgot_password_requests_send_at_most_three() {
    let mut app = TestApp::spawn_with_worker_with(|s| s.auth.rate_limit = 0).await;
    app.sign_up(OWNER, "Owner").await;

    let answers = futures::future::join_all((0..12).map(|_| forgot(&app, OWNER))).await;
    assert!(answers.iter().all(|&status| status == 202), "{answers:?}");
    app.run_jobs_until_idle().await;

    assert_eq!(sent_to(&app, RESET_SUBJECT, OWNER), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dozen_concurrent_resends_send_what_is_left_of_the_budget_and_no_more() {
    let mut app = TestApp::spawn_with_worker_with(|s| s.auth.rate_limit = 0).await;
    let signup = app.sign_up_unverified(OWNER, "Owner").await;
    let session = token(&signup);

    let answers = futures::future::join_all((0..12).map(|_| resend(&app, session))).await;
    let accepted = answers.iter().filter(|&&status| status == 202).count();
    let limited = answers.iter().filter(|&&status| status == 429).count();
    assert_eq!(
        (accepted, limited),
        (2, 10),
        "the signup's email counts: {answers:?}"
    );
    app.run_jobs_until_idle().await;

    assert_eq!(sent_to(&app, CONFIRM_SUBJECT, OWNER), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dozen_concurrent_email_changes_send_at_most_three_links() {
    let mut app = TestApp::spawn_with_worker_with(|s| s.auth.rate_limit = 0).await;
    let signup = app.sign_up(OWNER, "Owner").await;
    let session = token(&signup);

    let app_ref = &app;
    let answers = futures::future::join_all((0..12).map(|n| async move {
        change_email(app_ref, session, &format!("new{n}@example.com"))
            .await
            .status()
            .as_u16()
    }))
    .await;
    let accepted = answers.iter().filter(|&&status| status == 202).count();
    assert_eq!(accepted, 3, "{answers:?}");
    app.run_jobs_until_idle().await;

    assert_eq!(app.smtp.received_titled(NEW_ADDRESS_SUBJECT).len(), 3);
    assert_eq!(sent_to(&app, MOVE_NOTICE_SUBJECT, OWNER), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_confirmation_links_followed_at_once_make_one_stripe_customer_and_one_welcome_email() {
    let mut app = TestApp::spawn_with_worker_with(|s| s.auth.rate_limit = 0).await;
    let signup = app.sign_up_unverified(OWNER, "Owner").await;
    let user_id = signup["user"]["id"].as_str().expect("an id").to_owned();
    assert_eq!(resend(&app, token(&signup)).await, 202);
    let links: Vec<String> = app
        .smtp
        .wait_for_titled(CONFIRM_SUBJECT, 2, DEADLINE)
        .await
        .iter()
        .map(|email| email.link_token(VERIFY_LINK))
        .collect();

    let (first, second) = tokio::join!(verify(&app, &links[0]), verify(&app, &links[1]));
    let (first, second) = (first.status().as_u16(), second.status().as_u16());
    // The same link followed twice answers like the first time too.
    let again = verify(&app, &links[0]).await.status().as_u16();
    app.run_jobs_until_idle().await;

    assert_eq!((first, second, again), (200, 200, 200));
    assert_eq!(records_of(&app, "welcome-email", &user_id).await, 1);
    assert_eq!(records_of(&app, "stripe-customer", &user_id).await, 1);
    assert_eq!(app.smtp.received_titled("Welcome to Acme").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_lockout_does_not_block_the_owners_password_change_from_their_session() {
    let app = TestApp::spawn_without_worker_with(|s| {
        s.auth.login_failures.max = 3;
        s.auth.rate_limit = 0;
    })
    .await;
    let signup = app.sign_up(OWNER, "Owner").await;
    for n in 0..4 {
        assert_eq!(login(&app, OWNER, &format!("stranger {n}")).await, 401);
    }
    assert_eq!(
        login(&app, OWNER, PASSWORD).await,
        401,
        "locked for strangers"
    );

    let changed = app
        .send_json(
            reqwest::Method::POST,
            "/api/me/password",
            token(&signup),
            &json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD }),
        )
        .await;

    assert_eq!(changed.status(), 204);
}
