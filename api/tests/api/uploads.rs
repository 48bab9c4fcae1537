//! One account, or one instance, against the upload limits: rate, quota,
//! concurrent uploads, and uploads that stall or are abandoned.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use testkit::images::{jpeg, noise, photo};
use testkit::{TestApp, wait};
use tokio::io::AsyncWriteExt as _;

use crate::raw;

async fn sign_up(app: &TestApp, email: &str) -> String {
    app.sign_up(email, "Uploader").await["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// Photos that are, or are becoming, someone's picture: what a failed or
/// cut-off upload must not leave.
async fn photo_rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from photos where state <> 'failed'")
        .fetch_one(&app.pool)
        .await
        .expect("count")
}

/// Uploads that failed or were cut off: each counts against its hour.
async fn failed_uploads(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "select count(*) from photos
         where state = 'failed' and bytes = 0 and error = 'the upload did not complete'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("count")
}

/// Files in the spool and under `photos/`: what an upload may leave behind.
fn leftovers(app: &TestApp) -> Vec<PathBuf> {
    let mut files = testkit::files_under(&app.storage_dir().join(".spool"));
    files.extend(testkit::files_under(&app.storage_dir().join("photos")));
    files
}

/// Starts a multipart upload of `file` over raw TCP and sends only the
/// first `sent` bytes of its body.
async fn start_upload(
    app: &TestApp,
    token: &str,
    file: &[u8],
    sent: usize,
) -> tokio::net::TcpStream {
    start_upload_at(&app.address, token, file, sent).await
}

/// [`start_upload`] to the api instance at `address`.
async fn start_upload_at(
    address: &str,
    token: &str,
    file: &[u8],
    sent: usize,
) -> tokio::net::TcpStream {
    let (content_type, body) = testkit::multipart("photo", file);
    let head = format!(
        "POST /api/photos HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
         content-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .expect("the api accepts connections");
    stream.write_all(head.as_bytes()).await.expect("sent");
    stream.write_all(&body[..sent]).await.expect("sent");
    stream
}

fn big_photo() -> Vec<u8> {
    // Noise compresses badly: about a megabyte, well past the sniffed head.
    jpeg(1000, 800, &noise(1000, 800))
}

#[tokio::test]
async fn uploads_past_the_hourly_limit_get_429_with_retry_after() {
    let app = TestApp::spawn_without_worker_with(move |s| s.photos.uploads.per_hour = 2).await;
    let token = sign_up(&app, "hourly@example.com").await;
    let file = jpeg(64, 64, &photo(64, 64));

    let first = app.upload(&token, "photo", &file).await.status().as_u16();
    let second = app.upload(&token, "photo", &file).await.status().as_u16();
    let third = app.upload(&token, "photo", &file).await;

    assert_eq!((first, second), (202, 202));
    assert_eq!(third.status(), 429);
    let retry_after: u64 = third.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let body: Value = third.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(photo_rows(&app).await, 2);
    let other = sign_up(&app, "someone-else@example.com").await;
    assert_eq!(
        app.upload(&other, "photo", &file).await.status(),
        202,
        "limits are per account"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_concurrent_uploads_from_one_account_gets_exactly_the_hourly_limit() {
    let app = TestApp::spawn_without_worker_with(move |s| {
        s.photos.uploads.per_hour = 3;
        s.photos.uploads.max_concurrent_per_account = 0;
    })
    .await;
    let token = sign_up(&app, "burst@example.com").await;
    let file = jpeg(64, 64, &photo(64, 64));

    let answers = futures::future::join_all(
        (0..12).map(|_| async { app.upload(&token, "photo", &file).await.status().as_u16() }),
    )
    .await;

    let accepted = answers.iter().filter(|&&status| status == 202).count();
    let limited = answers.iter().filter(|&&status| status == 429).count();
    assert_eq!((accepted, limited), (3, 9), "{answers:?}");
    assert_eq!(photo_rows(&app).await, 3);
}

#[tokio::test]
async fn uploads_past_the_storage_quota_get_403_and_leave_nothing() {
    let file = big_photo();
    let quota = file.len() as u64 * 3 / 2;
    let app =
        TestApp::spawn_without_worker_with(move |s| s.photos.uploads.quota_bytes = quota).await;
    let token = sign_up(&app, "quota@example.com").await;

    let first = app.upload(&token, "photo", &file).await.status();
    let second = app.upload(&token, "photo", &file).await;

    assert_eq!(first, 202);
    assert_eq!(second.status(), 403);
    let body: Value = second.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert_eq!(photo_rows(&app).await, 1, "the refused upload is no photo");
    assert_eq!(failed_uploads(&app).await, 1, "but it counts as an upload");
    wait::until(
        "the refused upload's files to go",
        Duration::from_secs(10),
        || async { (leftovers(&app).len() == 1).then_some(()) },
    )
    .await;
    let third = app.upload(&token, "photo", &file).await.status();
    assert_eq!(third, 403, "a full quota refuses before reading the file");
}

#[tokio::test]
async fn uploads_past_the_instance_cap_get_503_with_retry_after() {
    let app =
        TestApp::spawn_without_worker_with(move |s| s.photos.uploads.max_concurrent = 1).await;
    let token = sign_up(&app, "cap@example.com").await;
    let file = big_photo();
    let stalled = start_upload(&app, &token, &file, file.len() / 2).await;
    // The first upload holds the only slot once its row is reserved.
    wait::until(
        "the first upload to start",
        Duration::from_secs(10),
        || async { (photo_rows(&app).await == 1).then_some(()) },
    )
    .await;

    let second = app.upload(&token, "photo", &file).await;

    assert_eq!(second.status(), 503);
    assert!(second.headers().contains_key("retry-after"));
    let body: Value = second.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "overloaded");
    drop(stalled);
}

#[tokio::test]
async fn an_upload_that_stalls_halfway_is_cut_off_and_leaves_no_file_and_no_photo() {
    let app = TestApp::spawn_without_worker_with(move |s| {
        s.server.http.body_window = Duration::from_secs(1)
    })
    .await;
    let token = sign_up(&app, "stall@example.com").await;
    let file = big_photo();

    let mut stream = start_upload(&app, &token, &file, file.len() / 2).await;
    let answer = raw::read_to_close(&mut stream).await;

    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    wait::until(
        "the stalled upload to be marked failed and its files to go",
        Duration::from_secs(10),
        || async { (failed_uploads(&app).await == 1 && leftovers(&app).is_empty()).then_some(()) },
    )
    .await;
    assert_eq!(photo_rows(&app).await, 0);
}

#[tokio::test]
async fn an_upload_the_client_abandons_leaves_no_file_and_no_photo() {
    let app = TestApp::spawn_without_worker().await;
    let token = sign_up(&app, "gone@example.com").await;
    let file = big_photo();
    let stream = start_upload(&app, &token, &file, file.len() / 2).await;
    wait::until("the upload to start", Duration::from_secs(10), || async {
        (photo_rows(&app).await == 1).then_some(())
    })
    .await;

    drop(stream);

    wait::until(
        "the abandoned upload to be marked failed and its files to go",
        Duration::from_secs(10),
        || async { (failed_uploads(&app).await == 1 && leftovers(&app).is_empty()).then_some(()) },
    )
    .await;
    assert_eq!(photo_rows(&app).await, 0);
    assert_eq!(
        app.upload(&token, "photo", &file).await.status(),
        202,
        "the account can upload again"
    );
}

#[tokio::test]
async fn uploads_that_fail_count_against_the_hourly_limit() {
    let app = TestApp::spawn_without_worker_with(move |s| s.photos.uploads.per_hour = 2).await;
    let token = sign_up(&app, "failing@example.com").await;
    let file = big_photo();
    for n in 1..=2 {
        // Started, then cut off by the client: costs the server a transfer.
        let stream = start_upload(&app, &token, &file, file.len() / 2).await;
        wait::until("the upload to start", Duration::from_secs(10), || async {
            (photo_rows(&app).await == 1).then_some(())
        })
        .await;
        drop(stream);
        wait::until("the upload to fail", Duration::from_secs(10), || async {
            (failed_uploads(&app).await == n).then_some(())
        })
        .await;
    }

    let third = app.upload(&token, "photo", &file).await;

    assert_eq!(third.status(), 429);
    let body: Value = third.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "rate_limited");
}

#[tokio::test]
async fn an_account_may_have_only_two_uploads_in_progress_on_any_instance() {
    let app = TestApp::spawn_without_worker().await;
    let other_instance = app.start_another_api().await;
    let token = sign_up(&app, "trickler@example.com").await;
    let file = big_photo();
    // Two uploads trickling, one on each instance.
    let first = start_upload(&app, &token, &file, file.len() / 2).await;
    let second = start_upload_at(&other_instance, &token, &file, file.len() / 2).await;
    wait::until("both uploads to start", Duration::from_secs(10), || async {
        (photo_rows(&app).await == 2).then_some(())
    })
    .await;

    let third = app.upload(&token, "photo", &file).await;

    assert_eq!(third.status(), 429);
    assert_eq!(third.headers()["retry-after"], "5");
    let body: Value = third.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("2 uploads in progress")),
        "{body}"
    );
    let someone_else = sign_up(&app, "patient@example.com").await;
    assert_eq!(
        app.upload(&someone_else, "photo", &file).await.status(),
        202,
        "other accounts are not held up"
    );
    drop(first);
    wait::until(
        "the first upload to fail",
        Duration::from_secs(10),
        || async { (failed_uploads(&app).await == 1).then_some(()) },
    )
    .await;
    assert_eq!(
        app.upload(&token, "photo", &file).await.status(),
        202,
        "a place is free again"
    );
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_upload_is_answered_even_while_the_client_is_still_sending() {
    let app = TestApp::spawn_without_worker_with(move |s| s.photos.uploads.per_hour = 1).await;
    let token = sign_up(&app, "insistent@example.com").await;
    assert_eq!(
        app.upload(&token, "photo", &jpeg(64, 64, &photo(64, 64)))
            .await
            .status(),
        202
    );
    // Megabytes the api refuses after its first 64 KiB: without draining
    // them, closing the connection resets it and the client sees no answer.
    let big = jpeg(3400, 2600, &noise(3400, 2600));
    assert!(big.len() > 6_000_000, "{} bytes", big.len());

    for _ in 0..5 {
        let refused = app.upload(&token, "photo", &big).await;

        assert_eq!(refused.status(), 429);
        assert!(refused.headers().contains_key("retry-after"));
    }
}
