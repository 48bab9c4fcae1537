//! The web app fed by the live stream: a photo is processed before the
//! user's eyes without a single poll, with a notice when it is done; with
//! the stream refused, the same happens by polling, and nothing alarming
//! is said.

use serde_json::Value;
use testkit::TestApp;
use testkit::browser::{Browser, Screen};
use testkit::images::{jpeg, photo};

use crate::web::{screenshot, sign_up, tempfile_with, upload};

/// The job polls the page has made so far (the job list and single jobs).
const POLLS: &str = "return performance.getEntriesByType('resource')
    .filter(r => /\\/api\\/(me\\/jobs|jobs\\/)/.test(new URL(r.name).pathname)).length";

/// Every request the page has made to the api so far (the upload's own
/// XMLHttpRequest included).
const API_REQUESTS: &str = "return performance.getEntriesByType('resource')
    .filter(r => new URL(r.name).pathname.startsWith('/api/')).length";

/// Uploads a photo and waits for it to be the avatar, with its notice.
async fn photo_becomes_the_avatar(browser: &Browser, how: &str) {
    let before = browser
        .eval(API_REQUESTS)
        .await
        .as_u64()
        .unwrap_or_default();
    let file = tempfile_with(&jpeg(1200, 900, &photo(1200, 900)), "photo.jpg");
    upload(browser, &file.0).await;
    browser
        .wait_for_text("#upload-label", "Your new photo is ready.")
        .await;
    browser
        .wait_until(
            "the avatar shows",
            "const img = document.getElementById('avatar');
             return !img.hidden && img.complete && img.naturalWidth > 0",
        )
        .await;
    browser
        .wait_for_text("#toasts", "Photo processing: done.")
        .await;
    let after = browser
        .eval(API_REQUESTS)
        .await
        .as_u64()
        .unwrap_or_default();
    // For docs/benchmarks.md: the requests a tab makes for one photo.
    eprintln!(
        "{how}: {} api requests from upload to avatar",
        after - before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_stream_open_a_photo_is_processed_without_a_single_poll() {
    let app = TestApp::spawn_for_browser(|_| {}).await;
    let browser = Browser::start(Screen::Desktop).await;
    browser
        .run("live", async |browser| {
            browser.open(&app.address).await;
            sign_up(browser, "Live Lee", "lee@example.com").await;
            browser
                .wait_until(
                    "the stream feeds the panel",
                    "return document.getElementById('jobs').dataset.live === 'on'",
                )
                .await;
            let before = browser.eval(POLLS).await;

            photo_becomes_the_avatar(browser, "streamed").await;
            screenshot(browser, "live-photo-done").await;

            let after = browser.eval(POLLS).await;
            assert_eq!(before, after, "no job was polled while the stream was open");
            assert!(
                browser
                    .text("#jobs")
                    .await
                    .unwrap_or_default()
                    .contains("Photo processing"),
                "the resize job is in the panel"
            );
            let notice: Value = browser
                .eval("return document.getElementById('notice').hidden")
                .await;
            assert_eq!(notice, Value::Bool(true), "nothing alarming was said");
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_stream_refused_a_photo_is_still_processed_by_polling_and_nothing_alarms() {
    let app = TestApp::spawn_for_browser(|settings| settings.events.max_streams = 0).await;
    let browser = Browser::start(Screen::Desktop).await;
    browser
        .run("live-refused", async |browser| {
            browser.open(&app.address).await;
            sign_up(browser, "Polly Poller", "polly@example.com").await;
            let before = browser.eval(POLLS).await.as_u64().unwrap_or_default();

            photo_becomes_the_avatar(browser, "polled").await;

            let after = browser.eval(POLLS).await.as_u64().unwrap_or_default();
            assert!(
                after > before,
                "the photo was followed by polling ({before} → {after})"
            );
            assert_ne!(
                browser
                    .eval("return document.getElementById('jobs').dataset.live")
                    .await,
                Value::from("on"),
                "the panel never thought it was live"
            );
            let notice: Value = browser
                .eval("return document.getElementById('notice').hidden")
                .await;
            assert_eq!(notice, Value::Bool(true), "nothing alarming was said");
        })
        .await;
}
