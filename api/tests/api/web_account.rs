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
