//! The web app in a real headless Chromium: what a person does and sees.
//! Screenshots of the main screens are kept in `target/browser/screens/`.

use testkit::TestApp;
use testkit::browser::{Browser, Screen, evidence_dir};
use testkit::images::{jpeg, noise, photo};

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";

/// Signs up through the form, as a person would, and waits for the profile.
/// Chooses `file` in the photo field and submits the upload form.
pub(crate) async fn upload(browser: &Browser, file: &std::path::Path) {
    browser
        .visible("#photo")
        .await
        .send_keys(&file.display().to_string())
        .await
        .expect("file chosen");
    browser.click("#upload-form button[type=submit]").await;
}

pub(crate) async fn sign_up(browser: &Browser, name: &str, email: &str) {
    browser.fill("#signup-name", name).await;
    browser.fill("#signup-email", email).await;
    browser
        .fill("#signup-password", "correct horse battery")
        .await;
    browser.click("#signup-form button[type=submit]").await;
    browser.wait_for_text("#profile-email", email).await;
}

pub(crate) async fn screenshot(browser: &Browser, name: &str) {
    browser
        .screenshot(&evidence_dir().join("screens").join(format!("{name}.png")))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_up_and_confirming_the_address_shows_every_job_reach_done_and_the_guide_downloads()
{
    let app = TestApp::spawn_for_browser(|_| {}).await;
    let browser = Browser::start(Screen::Desktop).await;
    browser
        .run("signup", async |browser| {
            browser.open(&app.address).await;
            let unlabelled = browser
                .eval("return [...document.querySelectorAll('input')].filter(i => i.labels.length === 0).map(i => i.id)")
                .await;
            assert_eq!(unlabelled, serde_json::json!([]), "every input has a label");

            sign_up(browser, "Ada Lovelace", "ada@example.com").await;
            assert_eq!(browser.text("#profile-name").await.as_deref(), Some("Ada Lovelace"));
            browser
                .wait_until(
                    "the three signup jobs are done",
                    "return document.querySelectorAll('#jobs .job[data-state=completed]').length === 3",
                )
                .await;
            browser.wait_for_text("#verify-address", "ada@example.com").await;
            browser.wait_for_text("#profile-stripe", "After you confirm your address.").await;
            screenshot(browser, "verify-banner-desktop").await;

            // The owner follows the link in the confirmation email.
            let received = app.smtp.received();
            assert_eq!(received.len(), 1, "only the confirmation before the proof");
            let text = received[0].parsed().body_text(0).expect("text").into_owned();
            let link = text
                .split_whitespace()
                .find(|word| word.contains("/verify-email#token="))
                .expect("a confirmation link")
                .replace("http://app.test", &app.address);
            browser.open(&link).await;
            browser.wait_for_text("#notice", "Your email address is confirmed.").await;
            assert_eq!(browser.eval("return location.pathname + location.hash").await, "/");
            browser
                .wait_until("the banner to go", "return document.getElementById('verify-banner').hidden")
                .await;
            browser
                .wait_until(
                    "all five jobs are done",
                    "return document.querySelectorAll('#jobs .job[data-state=completed]').length === 5",
                )
                .await;
            let panel = browser.text("#jobs").await.unwrap_or_default();
            for job in ["Welcome email", "Billing account", "Team notification", "Onboarding guide (PDF)", "Account email"] {
                assert!(panel.contains(job), "{job} is listed: {panel}");
            }
            assert_eq!(app.smtp.received().len(), 2, "the welcome email followed the proof");

            browser.click("#guide").await;
            let pdf = browser.downloaded("onboarding.pdf").await;
            assert!(pdf.starts_with(b"%PDF-"), "a PDF was downloaded");
            screenshot(browser, "home-desktop").await;

            browser.click("#logout").await;
            browser.visible("#login-form").await;
            assert_eq!(browser.text("#auth-title").await.as_deref(), Some("Log in"));
            browser.wait_for_text("#notice", "You are logged out.").await;
            let token = browser.eval("return sessionStorage.getItem('acme.token')").await;
            assert_eq!(token, serde_json::Value::Null, "the token is forgotten");
            assert!(
                browser.console().await.iter().all(|line| !line.starts_with("SEVERE")),
                "no console errors: {:?}",
                browser.console().await
            );
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_photo_shows_its_progress_then_becomes_the_avatar_at_the_right_size() {
    let app = TestApp::spawn_for_browser(|_| {}).await;
    let browser = Browser::start(Screen::Desktop).await;
    let file = tempfile_with(&jpeg(1600, 1200, &photo(1600, 1200)), "photo.jpg");
    browser
        .run("upload", async |browser| {
            browser.open(&app.address).await;
            sign_up(browser, "Grace Hopper", "grace@example.com").await;
            // Slow enough to watch: about two seconds for the file.
            browser.throttle_uploads(file.1 as u64 / 2).await;
            browser
                .eval(
                    "const bar = document.getElementById('upload-progress');
                     window.seenProgress = [];
                     new MutationObserver(() => window.seenProgress.push(bar.value))
                       .observe(bar, { attributes: true, attributeFilter: ['value'] });",
                )
                .await;
            upload(browser, &file.0).await;

            browser
                .wait_for_text("#upload-label", "Your new photo is ready.")
                .await;
            let seen = browser.eval("return window.seenProgress").await;
            let seen: Vec<f64> = serde_json::from_value(seen).expect("numbers");
            assert!(
                seen.iter().any(|value| *value > 0.0 && *value < 100.0),
                "the bar moved through the upload: {seen:?}"
            );
            let shown = browser
                .wait_until(
                    "the avatar shows",
                    "const img = document.getElementById('avatar');
                     return !img.hidden && img.complete && img.naturalWidth > 0
                       && [img.currentSrc.split('/').pop(), Math.round(img.getBoundingClientRect().width)];",
                )
                .await;
            // A 300 px slot: the browser picks the 600 px square, not the 150 px one.
            assert_eq!(shown, serde_json::json!(["medium.jpg", 300]));
            assert!(
                browser
                    .text("#jobs")
                    .await
                    .unwrap_or_default()
                    .contains("Photo processing"),
                "the resize job is in the panel"
            );
            screenshot(browser, "photo-desktop").await;
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_in_words_and_the_right_one_logs_in_by_keyboard_alone() {
    let app = TestApp::spawn_for_browser(|_| {}).await;
    app.sign_up("linus@example.com", "Linus").await;
    let browser = Browser::start(Screen::Phone).await;
    browser
        .run("login", async |browser| {
            browser.open(&app.address).await;
            browser.click("#switch").await;
            browser.fill("#login-email", "linus@example.com").await;
            browser.fill("#login-password", "wrong password").await;
            browser.click("#login-form button[type=submit]").await;
            browser
                .wait_for_text("#login-error", "The email or password is wrong.")
                .await;
            screenshot(browser, "login-error-phone").await;

            // Keyboard only: from the email field, Tab to the password and Enter.
            browser
                .eval("document.getElementById('login-email').focus()")
                .await;
            browser.press(TAB).await;
            let focused = browser.eval("return document.activeElement.id").await;
            assert_eq!(focused, "login-password", "Tab moves to the password");
            browser
                .eval("document.getElementById('login-password').value = ''")
                .await;
            browser.press("correct horse battery").await;
            browser.press(ENTER).await;
            browser.wait_for_text("#profile-name", "Linus").await;
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_over_the_limit_is_refused_with_the_limit_named() {
    let app = TestApp::spawn_for_browser(move |s| s.photos.max_bytes = 200000).await;
    let browser = Browser::start(Screen::Phone).await;
    let file = tempfile_with(&jpeg(1200, 1200, &noise(1200, 1200)), "big.jpg");
    assert!(file.1 > 200_000, "the file is over the limit");
    browser
        .run("too-large", async |browser| {
            browser.open(&app.address).await;
            sign_up(browser, "Barbara Liskov", "barbara@example.com").await;
            upload(browser, &file.0).await;
            let message = browser
                .wait_for_text("#photo-error", "The photo is larger than the 196 KB limit.")
                .await;
            assert!(!message.contains("payload"), "in words: {message}");
            screenshot(browser, "too-large-phone").await;
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_written_as_markup_is_shown_as_text_and_runs_nothing() {
    let app = TestApp::spawn_for_browser(|_| {}).await;
    let browser = Browser::start(Screen::Desktop).await;
    let name = r#"<img src=x onerror="window.ran=1">"#;
    browser
        .run("markup-name", async |browser| {
            browser.open(&app.address).await;
            sign_up(browser, name, "mallory@example.com").await;
            // Upload-free account: the avatar slot shows initials from the name.
            assert_eq!(browser.text("#profile-name").await.as_deref(), Some(name));
            let injected = browser
                .eval("return document.querySelectorAll('main img:not(#avatar)').length")
                .await;
            assert_eq!(injected, 0, "no element was made from the name");
            let ran = browser.eval("return window.ran === undefined").await;
            assert_eq!(ran, true, "nothing ran");
        })
        .await;
}

/// Writes `bytes` to a file the browser can pick; returns its path and size.
pub(crate) fn tempfile_with(bytes: &[u8], name: &str) -> (std::path::PathBuf, usize) {
    let dir = std::env::temp_dir().join(format!("acme-upload-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("file written");
    (path, bytes.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_retries_a_failed_job_pauses_a_queue_and_looks_a_job_up() {
    let app = TestApp::spawn_for_browser(|_| {}).await;
    let signup = app
        .sign_up_and_meanwhile("bounced@example.com", "Bounced", |app| {
            app.smtp.refuse_next("550 5.7.1 relaying denied")
        })
        .await;
    let job = testkit::job_id(&signup, "welcome-email");
    app.wait_for_job_state(&job, "failed", testkit::DEADLINE)
        .await;
    let browser = Browser::start(Screen::Desktop).await;
    browser
        .run("dashboard", async |browser| {
            browser.open(&format!("{}/admin", app.address)).await;
            browser.fill("#admin-token", "wrong").await;
            browser.click("#sign-in-form button[type=submit]").await;
            browser
                .wait_for_text("#admin-token-error", "That is not the admin token.")
                .await;
            browser
                .fill("#admin-token", testkit::app::ADMIN_TOKEN)
                .await;
            browser.click("#sign-in-form button[type=submit]").await;
            let row = browser
                .wait_for_text("tr[data-queue=welcome-email]", "welcome-email")
                .await;
            assert!(row.contains("Failed (1)"), "{row}");
            let cookie = browser.eval("return document.cookie").await;
            assert_eq!(cookie, "", "the session cookie is out of the page's reach");

            browser
                .click("tr[data-queue=welcome-email] td .actions button:nth-child(2)")
                .await;
            let reason = browser
                .wait_for_text("#failed-jobs", "relaying denied")
                .await;
            assert!(reason.contains(&job), "{reason}");
            screenshot(browser, "dashboard-desktop").await;
            browser
                .click(&format!(
                    "li[data-job-id='{job}'] .actions button:first-child"
                ))
                .await;
            browser
                .wait_for_text("#failed-empty", "No failed jobs in this queue.")
                .await;
            app.wait_for_job_state(&job, "completed", testkit::DEADLINE)
                .await;

            browser
                .click("tr[data-queue=image-resize] td .actions button:first-child")
                .await;
            browser
                .wait_for_text("tr[data-queue=image-resize] th", "paused")
                .await;
            browser
                .click("tr[data-queue=image-resize] td .actions button:first-child")
                .await;
            browser
                .wait_until(
                    "image-resize resumed",
                    "const th = document.querySelector('tr[data-queue=image-resize] th');
                     return th && !th.textContent.includes('paused');",
                )
                .await;

            browser.fill("#job-id", &job).await;
            browser.click("#lookup-form button[type=submit]").await;
            browser
                .wait_for_text("#job-record", "\"state\": \"completed\"")
                .await;
            browser
                .wait_for_text("#job-bullmq", "\"state\": \"completed\"")
                .await;
            screenshot(browser, "dashboard-lookup").await;

            // Each provider's shared budget, with the default settings.
            let budgets = browser.wait_for_text("#providers tbody", "slack").await;
            for provider in ["stripe", "slack", "mail"] {
                assert!(budgets.contains(provider), "{provider} in {budgets}");
            }
            browser
                .eval("document.getElementById('providers-title').scrollIntoView(); return 1")
                .await;
            screenshot(browser, "dashboard-providers").await;

            // Every action above is in the log, under this session.
            let audit = browser.wait_for_text("#audit", "resume").await;
            for action in ["sign in", "retry", "pause", "resume"] {
                assert!(audit.contains(action), "{action} in {audit}");
            }
            assert!(audit.contains("session "), "{audit}");
            browser
                .eval("document.getElementById('audit-title').scrollIntoView(); return 1")
                .await;
            screenshot(browser, "dashboard-audit").await;
            browser.click("#sign-out-all").await;
            browser
                .wait_for_text("#admin-token-error", "Every session signed out (1).")
                .await;
            let after = app
                .get("/api/admin/audit", Some(testkit::app::ADMIN_TOKEN))
                .await
                .text()
                .await
                .expect("text");
            assert!(after.contains("sign_out_everyone"), "{after}");
        })
        .await;
}
