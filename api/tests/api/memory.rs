//! The api process's memory under bursts: measured from outside, on the
//! real binary, so nothing of the test harness counts.

use futures::future::join_all;
use serde_json::json;
use testkit::TestApp;
use testkit::images::{jpeg, noise};

const API: &str = env!("CARGO_BIN_EXE_api");

/// What the api may reach through these bursts (the goal for a
/// friendly load; bursts must not need more).
const PEAK_RSS_MB: f64 = 128.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_signups_and_uploads_keep_the_api_process_small() {
    let app = TestApp::spawn_without_worker().await;
    let api = app.spawn_api_process(API).await;
    let status = |request: testkit::RequestBuilder| async move {
        request.send().await.expect("answered").status().as_u16()
    };

    let signups = join_all((0..64).map(|n| {
        status(
            app.client
                .post(format!("{}/api/signup", api.address))
                .json(&json!({
                    "email": format!("burst{n}@example.com"),
                    "password": "correct horse battery",
                    "name": "Burst",
                })),
        )
    }))
    .await;
    let token = app.sign_up("uploader@example.com", "Uploader").await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let (content_type, body) = testkit::multipart("photo", &jpeg(1600, 1200, &noise(1600, 1200)));
    let uploads = join_all((0..40).map(|_| {
        status(
            app.client
                .post(format!("{}/api/photos", api.address))
                .bearer_auth(&token)
                .header("content-type", &content_type)
                .body(body.clone()),
        )
    }))
    .await;

    assert!(
        signups.iter().all(|s| matches!(s, 201 | 503)),
        "{signups:?}"
    );
    assert!(
        uploads.iter().all(|s| matches!(s, 202 | 429 | 503)),
        "{uploads:?}"
    );
    let peak = api.peak_rss_mb();
    assert!(peak > 0.0, "the peak was read");
    assert!(peak < PEAK_RSS_MB, "the api peaked at {peak:.0} MB");
}
