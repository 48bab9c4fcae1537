//! Photos built to hurt: scan bombs, files that decode to gigabytes,
//! headers hidden past what the api reads, and phone photos full of private
//! metadata. Each is refused with a sentence for its uploader, costs no one
//! else anything, and leaks nothing.

use std::time::Duration;

use serde_json::Value;
use testkit::TestApp;
use testkit::app::Options;
use testkit::images::{
    close, decode_jpeg, jpeg, photo, pixel, png_header, progressive, rgba16_png, scan_bomb,
    with_gps_exif, with_padding,
};

const DEADLINE: Duration = Duration::from_secs(60);

async fn token_of(app: &TestApp, email: &str) -> String {
    let signup = app.sign_up(email, "Uploader").await;
    signup["token"].as_str().expect("token").to_owned()
}

/// Uploads and expects the contract's 202; returns the job id.
async fn accepted(app: &TestApp, token: &str, bytes: &[u8]) -> String {
    let response = app.upload(token, "photo", bytes).await;
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(status, 202, "{body}");
    body["job"]["id"].as_str().expect("job id").to_owned()
}

/// Uploads and expects a 422 about the `photo` field; returns its text.
async fn refused(app: &TestApp, token: &str, bytes: &[u8]) -> String {
    let response = app.upload(token, "photo", bytes).await;
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "validation_failed", "{body}");
    body["error"]["fields"]["photo"]
        .as_str()
        .expect("the photo field is named")
        .to_owned()
}

/// Waits for the job to fail and returns what its owner is told.
async fn failed_for_its_owner(app: &TestApp, token: &str, job: &str) -> Value {
    app.wait_for_job_state(job, "failed", DEADLINE).await;
    let status = app.job_status(job, Some(token)).await;
    assert_eq!(
        status["attempts_made"], 1,
        "bad input is not retried: {status}"
    );
    status["error"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_bomb_fails_at_once_and_other_users_photos_go_through() {
    let mut app = TestApp::spawn_with_worker().await;
    let attacker = token_of(&app, "bomber@example.com").await;
    let victim = token_of(&app, "victim@example.com").await;
    // A flat picture keeps each repeated scan a few bytes; to the decoder
    // each is still a pass over every block.
    let bomb = scan_bomb(
        &progressive(&jpeg(1600, 1200, &vec![128; 1600 * 1200 * 3])),
        5_000,
    );
    assert!(
        bomb.len() < 1_000_000,
        "a small upload: {} bytes",
        bomb.len()
    );

    // One after another: an account has at most two uploads in progress.
    let mut bombs = Vec::new();
    for _ in 0..4 {
        bombs.push(accepted(&app, &attacker, &bomb).await);
    }
    let honest = accepted(&app, &victim, &jpeg(800, 800, &photo(800, 800))).await;

    for job in &bombs {
        let error = failed_for_its_owner(&app, &attacker, job).await;
        assert_eq!(error["code"], "image_too_complex", "{error}");
    }
    app.run_jobs_until_idle().await;
    assert_eq!(app.job_state(&honest).await, "completed");
    let detail = app.operator_view(&bombs[0]).await["error_detail"].to_string();
    assert!(
        detail.contains("5010 scans"),
        "operators see the count: {detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordinary_progressive_jpeg_is_processed() {
    let mut app = TestApp::spawn_with_worker().await;
    let token = token_of(&app, "prog@example.com").await;
    let job = accepted(
        &app,
        &token,
        &progressive(&jpeg(1600, 1200, &photo(1600, 1200))),
    )
    .await;
    app.run_jobs_until_idle().await;
    assert_eq!(app.job_state(&job).await, "completed");
    assert!(app.me(&token).await["avatar"]["large"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_that_would_decode_past_the_budget_are_refused_at_upload() {
    let app = TestApp::spawn_with(Options {
        worker: false,
        configure: Some(testkit::app::configure(move |s| {
            s.photos.max_decode_bytes = 20000000
        })),
        ..Options::default()
    })
    .await;
    let token = token_of(&app, "budget@example.com").await;
    let flat = vec![128; 3000 * 2000 * 3];

    // The same picture: baseline is decoded scaled, progressive keeps every
    // coefficient of the full size (3000×2000 at 4:2:0: 18 MB).
    let baseline = jpeg(3000, 2000, &flat);
    accepted(&app, &token, &baseline).await;
    let problem = refused(&app, &token, &progressive(&baseline)).await;
    assert!(
        problem.contains("progressive JPEG of 3000×2000"),
        "{problem}"
    );
    assert!(problem.contains("MB"), "{problem}");

    // 16-bit RGBA: a plain PNG is reduced row by row, an interlaced one is
    // decoded whole (48 MB here).
    accepted(&app, &token, &rgba16_png(3000, 2000, [0, 0, 65535, 65535])).await;
    let problem = refused(&app, &token, &png_header(3000, 2000, 16, 6, true)).await;
    assert!(problem.contains("interlaced PNG"), "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_hidden_past_the_first_bytes_is_judged_by_the_worker() {
    let app = TestApp::spawn_with(Options {
        worker: true,
        configure: Some(testkit::app::configure(move |s| {
            s.photos.max_decode_bytes = 20000000
        })),
        ..Options::default()
    })
    .await;
    let token = token_of(&app, "hidden@example.com").await;
    let hidden = with_padding(
        &progressive(&jpeg(3000, 2000, &vec![90; 3000 * 2000 * 3])),
        2,
    );

    let job = accepted(&app, &token, &hidden).await;

    let error = failed_for_its_owner(&app, &token, &job).await;
    assert_eq!(error["code"], "image_too_large", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("3000×2000")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_16_bit_png_that_compresses_to_nothing_still_becomes_an_avatar() {
    let mut app = TestApp::spawn_with_worker().await;
    let token = token_of(&app, "png@example.com").await;
    // 48 MP × 8 bytes: 384 MB decoded whole; read row by row, ~1 MB.
    let png = rgba16_png(8000, 6000, [65535, 0, 0, 32768]);
    assert!(png.len() < 2_000_000, "{} bytes", png.len());

    let job = accepted(&app, &token, &png).await;

    app.run_jobs_until_idle().await;
    assert_eq!(app.job_state(&job).await, "completed");
    let status = app.job_status(&job, Some(&token)).await;
    assert_eq!(status["result"]["width"], 8000, "{status}");
    let avatar = app.me(&token).await["avatar"]["large"].clone();
    let path = avatar
        .as_str()
        .expect("url")
        .trim_start_matches("http://app.test");
    let bytes = app.get(path, None).await.bytes().await.expect("the file");
    let (width, _, pixels) = decode_jpeg(&bytes);
    assert_eq!(width, 1200);
    // Half-transparent red on white.
    let centre = pixel(&pixels, width, 600, 600);
    assert!(close(centre, [255, 127, 127], 6), "{centre:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phones_gps_and_camera_stay_private() {
    let mut app = TestApp::spawn_with_worker().await;
    let owner = token_of(&app, "owner@example.com").await;
    let stranger = token_of(&app, "stranger@example.com").await;
    let original = with_gps_exif(&jpeg(1400, 1400, &photo(1400, 1400)), "AcmeCam Serial 4242");
    let job = accepted(&app, &owner, &original).await;
    app.run_jobs_until_idle().await;
    assert_eq!(app.job_state(&job).await, "completed");
    let avatar = app.me(&owner).await["avatar"].clone();

    for variant in ["large", "medium", "thumbnail"] {
        let path = avatar[variant]
            .as_str()
            .expect("url")
            .trim_start_matches("http://app.test");
        let response = app.get(path, None).await;
        assert_eq!(response.status(), 200, "squares are public");
        let bytes = response.bytes().await.expect("the file");
        assert!(!contains(&bytes, b"Exif"), "{variant} carries EXIF");
        assert!(!contains(&bytes, b"AcmeCam"), "{variant} names the camera");
        assert!(
            !contains(&bytes, b"http://ns.adobe.com/xap"),
            "{variant} carries XMP"
        );
        assert!(
            !contains(&bytes, b"Photoshop 3.0"),
            "{variant} carries IPTC"
        );
    }

    let path = avatar["original"]
        .as_str()
        .expect("url")
        .trim_start_matches("http://app.test");
    assert_eq!(app.get(path, None).await.status(), 401, "anonymous");
    assert_eq!(
        app.get(path, Some(&stranger)).await.status(),
        404,
        "another user"
    );
    let response = app.get(path, Some(&owner)).await;
    assert_eq!(response.status(), 200, "its owner");
    assert_eq!(response.headers()["cache-control"], "private, no-store");
    let bytes = response.bytes().await.expect("the file");
    assert_eq!(
        &bytes[..],
        &original[..],
        "the owner gets their file as uploaded"
    );
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
