//! The account screens in a real headless Chromium: asking for a reset
//! link, following it from the email, and a spent link. Screenshots in
//! `target/browser/screens/`.

use std::time::Duration;

use testkit::TestApp;
use testkit::browser::{Browser, Screen, evidence_dir};

async fn screenshot(browser: &Browser, name: &str) {
    browser
        .screenshot(&evidence_dir().join("screens").join(format!("{name}.png")))
        .await;
}

/// The reset link of the newest reset email.
async fn reset_link(app: &TestApp) -> String {
    testkit::wait::until("the reset email", Duration::from_secs(20), || async {
        app.smtp.received().iter().rev().find_map(|email| {
            let text = email.parsed().body_text(0)?.into_owned();
            let start = text.find("http")?;
            let link = text[start..].split_whitespace().next()?;
            link.contains("/reset-password#token=")
                .then(|| link.to_owned())
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_reset_from_the_emailed_link_and_a_spent_link_says_so() {
    let app = TestApp::spawn_for_browser(|_| {}).await;
    app.sign_up("mary@example.com", "Mary").await;
    let browser = Browser::start(Screen::Phone).await;
    browser
        .run("password-reset", async |browser| {
            browser.open(&app.address).await;
            browser.click("#switch").await;
            browser.click("#forgot-link").await;
            browser.fill("#forgot-email", "mary@example.com").await;
            browser.click("#forgot-form button[type=submit]").await;
            browser
                .wait_for_text("#forgot-done", "If an account uses this address")
                .await;
            screenshot(browser, "forgot-phone").await;

            let link = reset_link(&app).await;
            browser.open(&link).await;
            browser
                .wait_for_text("#auth-title", "Choose a new password")
                .await;
            browser
                .fill("#reset-password", "a brand new password")
                .await;
            screenshot(browser, "reset-phone").await;
            browser.click("#reset-form button[type=submit]").await;
            browser.wait_for_text("#profile-name", "Mary").await;
            browser
                .wait_for_text("#notice", "Your password is changed")
                .await;
            let path = browser
                .eval("return location.pathname + location.hash")
                .await;
            assert_eq!(path, "/", "the spent link leaves the address bar");
            screenshot(browser, "reset-done-phone").await;

            browser.eval("sessionStorage.clear()").await;
            browser.open(&link).await;
            browser
                .fill("#reset-password", "another new password")
                .await;
            browser.click("#reset-form button[type=submit]").await;
            browser
                .wait_for_text("#forgot-error", "This link is used or expired.")
                .await;
            screenshot(browser, "reset-spent-phone").await;
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_changes_the_password_and_the_address_then_deletes_the_account() {
    let app = TestApp::spawn_for_browser(|_| {}).await;
    app.sign_up("ruth@example.com", "Ruth").await;
    let browser = Browser::start(Screen::Desktop).await;
    browser
        .run("account-settings", async |browser| {
            browser.open(&app.address).await;
            browser.click("#switch").await;
            browser.fill("#login-email", "ruth@example.com").await;
            browser
                .fill("#login-password", "correct horse battery")
                .await;
            browser.click("#login-form button[type=submit]").await;
            browser.wait_for_text("#profile-name", "Ruth").await;

            browser
                .fill("#change-current_password", "not my password")
                .await;
            browser
                .fill("#change-new_password", "a brand new password")
                .await;
            browser.click("#change-form button[type=submit]").await;
            browser
                .wait_for_text(
                    "#change-current_password-error",
                    "Current password is not right.",
                )
                .await;
            screenshot(browser, "change-wrong-desktop").await;
            browser
                .fill("#change-current_password", "correct horse battery")
                .await;
            browser.click("#change-form button[type=submit]").await;
            browser
                .wait_for_text("#change-done", "Your password is changed")
                .await;
            screenshot(browser, "change-done-desktop").await;

            browser.fill("#email-email", "ruth.new@example.com").await;
            browser
                .fill("#email-password", "a brand new password")
                .await;
            browser.click("#email-form button[type=submit]").await;
            browser
                .wait_for_text("#email-done", "We sent a link to ruth.new@example.com.")
                .await;
            screenshot(browser, "email-sent-desktop").await;
            let link = testkit::wait::until(
                "the link to the new address",
                Duration::from_secs(20),
                || async {
                    app.smtp.received().iter().find_map(|email| {
                        if email.to != ["ruth.new@example.com"] {
                            return None;
                        }
                        let text = email.parsed().body_text(0)?.into_owned();
                        text.split_whitespace()
                            .find(|word| word.contains("/verify-email#token="))
                            .map(str::to_owned)
                    })
                },
            )
            .await;
            browser.open(&link).await;
            browser
                .wait_for_text("#notice", "Your email address is confirmed.")
                .await;
            browser
                .wait_for_text("#profile-email", "ruth.new@example.com")
                .await;

            browser
                .fill("#delete-password", "a brand new password")
                .await;
            browser.click("#delete-form button[type=submit]").await;
            browser
                .wait_for_text("#notice", "Your account and everything in it are deleted.")
                .await;
            browser
                .wait_for_text("#auth-title", "Create your account")
                .await;
            screenshot(browser, "deleted-desktop").await;
            let device = browser
                .eval("return localStorage.getItem('acme.device')")
                .await;
            assert_eq!(device, serde_json::Value::Null, "the device is forgotten");
        })
        .await;
    let left: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&app.pool)
        .await
        .expect("readable");
    assert_eq!(left, 0, "the account is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_emails_read_well_and_carry_nothing_the_signer_typed() {
    let app = TestApp::spawn_for_browser(|_| {}).await;
    let name = r#"<a href="https://evil.example">Claim your prize</a>"#;
    let signup = app.sign_up("nora@example.com", name).await;
    app.wait_for_signup_jobs(&signup).await;
    app.post_json(
        "/api/password/forgot",
        &serde_json::json!({ "email": "nora@example.com" }),
    )
    .await;
    let link = reset_link(&app).await;
    let token = link.split("#token=").nth(1).expect("the link's token");
    let reset = app
        .post_json(
            "/api/password/reset",
            &serde_json::json!({ "token": token, "password": "a brand new password" }),
        )
        .await;
    assert_eq!(reset.status(), 200);
    // The confirmation (sent before the address was confirmed), then the
    // welcome (after: it may name the signer), the reset and the notice.
    let emails = testkit::wait::until("the notice", Duration::from_secs(20), || async {
        let received = app.smtp.received();
        (received.len() >= 4).then_some(received)
    })
    .await;
    let account_emails: Vec<_> = emails
        .iter()
        .filter(|email| {
            !email
                .parsed()
                .subject()
                .is_some_and(|subject| subject.starts_with("Welcome"))
        })
        .collect();
    assert_eq!(account_emails.len(), 3, "confirmation, reset, notice");

    let folder = evidence_dir().join("emails");
    std::fs::create_dir_all(&folder).expect("a folder for the emails");
    let browser = Browser::start(Screen::Phone).await;
    browser
        .run("account-emails", async |browser| {
            for email in &account_emails {
                let parsed = email.parsed();
                let subject = parsed.subject().expect("a subject").to_owned();
                let html = parsed.body_html(0).expect("an HTML part").into_owned();
                let text = parsed.body_text(0).expect("a text part").into_owned();
                for part in [&subject, &html, &text] {
                    assert!(
                        !part.contains("evil.example") && !part.contains("Claim your prize"),
                        "the signer's text reached {subject}: {part}"
                    );
                }
                let file = if subject.contains("Reset") {
                    "password-reset"
                } else if subject.contains("Confirm") {
                    "verify-email"
                } else {
                    "password-changed"
                };
                let path = folder.join(format!("{file}.html"));
                std::fs::write(&path, &html).expect("written");
                browser.open(&format!("file://{}", path.display())).await;
                screenshot(browser, &format!("email-{file}-phone")).await;
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_the_plan_and_unsubscribes_from_the_emailed_link_then_opts_back_in() {
    use serde_json::json;
    use testkit::stripe::{WEBHOOK_SECRET, event, now, subscription};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    const SECRET: &str = "a web test's unsubscribe secret, 32+ chars";

    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "cus_web", "object": "customer" })),
        )
        .mount(&stripe)
        .await;
    let api_base = stripe.uri();
    let app = TestApp::spawn_for_browser(move |s| {
        s.providers.stripe_secret_key = Some("sk_test_web".into());
        s.providers.stripe_api_base = api_base;
        s.providers.stripe_webhook_secret = Some(WEBHOOK_SECRET.into());
        s.mail.unsubscribe_secret = Some(SECRET.into());
        s.mail.follow_up_delay = Duration::from_secs(3600);
    })
    .await;
    let signup = app.sign_up("sam@example.com", "Sam").await;
    let customer = testkit::job_id(&signup, "stripe-customer");
    app.wait_for_job_state(&customer, "completed", testkit::DEADLINE)
        .await;
    let (status, answer) = app
        .deliver_stripe_event(&event(
            "evt_web",
            "customer.subscription.created",
            now(),
            subscription(
                "sub_web",
                "cus_web",
                "active",
                "price_pro",
                now() + 30 * 86_400,
            ),
        ))
        .await;
    assert_eq!(status, 200, "{answer}");
    let applied = answer["job_id"].as_str().expect("a job");
    app.wait_for_job_state(applied, "completed", testkit::DEADLINE)
        .await;
    // The link the follow-up email will carry (the worker's tests read it
    // from the email; here the email is an hour away).
    let user_id = signup["user"]["id"]
        .as_str()
        .expect("an id")
        .parse()
        .expect("a uuid");
    let token = store::unsubscribe::UnsubscribeKey::new(&SECRET.into()).token(user_id);
    let link = format!("{}/unsubscribe#token={token}", app.address);

    let browser = Browser::start(Screen::Desktop).await;
    browser
        .run("unsubscribe", async |browser| {
            browser.open(&app.address).await;
            browser.click("#switch").await;
            browser.fill("#login-email", "sam@example.com").await;
            browser
                .fill("#login-password", "correct horse battery")
                .await;
            browser.click("#login-form button[type=submit]").await;
            browser
                .wait_for_text("#profile-plan", "price_pro · active · renews")
                .await;
            let checked = browser
                .eval("return document.getElementById('product-email').checked")
                .await;
            assert_eq!(checked, true, "subscribed to tips at first");
            browser
                .wait_for_text("li[data-state=delayed] .state", "Scheduled")
                .await;
            screenshot(browser, "plan-desktop").await;
            browser
                .eval("document.getElementById('mail-title').scrollIntoView()")
                .await;
            screenshot(browser, "preferences-desktop").await;

            // The visible link asks first; a scanner's visit changes nothing.
            browser.open(&link).await;
            browser
                .wait_for_text("#unsubscribe-title", "Unsubscribe from tips")
                .await;
            assert_eq!(app.me(&signup_token(&signup)).await["product_email"], true);
            browser.click("#unsubscribe-confirm").await;
            browser
                .wait_for_text("#unsubscribe-done", "You are unsubscribed.")
                .await;
            screenshot(browser, "unsubscribed-desktop").await;
            assert_eq!(app.me(&signup_token(&signup)).await["product_email"], false);

            browser.open(&app.address).await;
            browser.wait_for_text("#profile-name", "Sam").await;
            let checked = browser
                .eval("return document.getElementById('product-email').checked")
                .await;
            assert_eq!(checked, false, "the account shows the choice");
            browser.click("#product-email").await;
            browser
                .wait_for_text("#mail-done", "you will get tips and reminders")
                .await;
            assert_eq!(app.me(&signup_token(&signup)).await["product_email"], true);
        })
        .await;
}

fn signup_token(signup: &serde_json::Value) -> String {
    signup["token"].as_str().expect("a token").to_owned()
}
