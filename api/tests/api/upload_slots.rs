//! An account against the instance's upload slots: it holds at most its
//! uploads in progress of them, from the first byte of each upload on, so
//! one account trickling uploads cannot make everyone else's answer 503.

use std::time::Duration;

use testkit::images::{jpeg, noise, photo};
use testkit::{TestApp, wait};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::raw;

/// Bytes a trickling upload sends each second: twice the default minimum
/// body pace (1 KiB/s), so it is never cut off, and its first 64 KiB take
/// half a minute to arrive.
const TRICKLE: usize = 2048;

async fn sign_up(app: &TestApp, email: &str) -> String {
    app.sign_up(email, "Uploader").await["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// The `uploading` rows: the uploads in progress.
async fn in_progress(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from photos where state = 'uploading'")
        .fetch_one(&app.pool)
        .await
        .expect("count")
}

fn big_photo() -> Vec<u8> {
    jpeg(1000, 800, &noise(1000, 800))
}

/// Sends the head of a multipart upload of `file` and the first `sent`
/// bytes of its body.
async fn start_upload(app: &TestApp, token: &str, file: &[u8], sent: usize) -> TcpStream {
    let (content_type, body) = testkit::multipart("photo", file);
    let head = format!(
        "POST /api/photos HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
         content-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = raw::connect(app).await;
    stream.write_all(head.as_bytes()).await.expect("sent");
    stream.write_all(&body[..sent]).await.expect("sent");
    stream
}

/// An upload whose body arrives [`TRICKLE`] bytes a second, just fast
/// enough to be kept; the connection closes when this is dropped.
struct Trickle(JoinHandle<()>);

impl Trickle {
    async fn start(app: &TestApp, token: &str, file: &[u8]) -> Self {
        let (_, body) = testkit::multipart("photo", file);
        let mut stream = start_upload(app, token, file, TRICKLE).await;
        Self(tokio::spawn(async move {
            for chunk in body[TRICKLE..].chunks(TRICKLE) {
                // A window must pass: the trickle's pace is the point.
                tokio::time::sleep(Duration::from_secs(1)).await;
                if stream.write_all(chunk).await.is_err() {
                    return;
                }
            }
        }))
    }
}

impl Drop for Trickle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_account_uploads_while_one_account_trickles_eight_uploads_at_once() {
    // Its two uploads in progress, and one slot for everyone else.
    let app = TestApp::spawn_without_worker_with(|s| {
        s.photos.uploads.max_concurrent = 3;
        s.photos.uploads.max_concurrent_per_account = 2;
    })
    .await;
    let trickler = sign_up(&app, "trickler@example.com").await;
    let patient = sign_up(&app, "patient@example.com").await;
    let file = big_photo();

    let trickles =
        futures::future::join_all((0..8).map(|_| Trickle::start(&app, &trickler, &file))).await;
    wait::until(
        "the trickling account's two uploads to be in progress",
        Duration::from_secs(10),
        || async { (in_progress(&app).await == 2).then_some(()) },
    )
    .await;
    let other = app
        .upload(&patient, "photo", &jpeg(64, 64, &photo(64, 64)))
        .await;

    assert_eq!(
        other.status(),
        202,
        "the trickling account holds only two of the three slots"
    );
    assert_eq!(in_progress(&app).await, 2, "and only two uploads");
    drop(trickles);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_uploads_of_one_account_never_hold_more_than_its_uploads_in_progress() {
    let app = TestApp::spawn_without_worker_with(|s| {
        s.photos.uploads.max_concurrent_per_account = 2;
        s.server.http.body_window = Duration::from_secs(1);
    })
    .await;
    let token = sign_up(&app, "eight-at-once@example.com").await;
    let file = big_photo();

    // Eight at once, each stalled within its first 64 KiB: the two the
    // account may have wait for their bytes until the pace cuts them off
    // (408); the others are refused before a byte is read (429).
    let answers = futures::future::join_all((0..8).map(|_| async {
        let mut stream = start_upload(&app, &token, &file, 1000).await;
        let answer = raw::read_to_close(&mut stream).await;
        answer.get(9..12).unwrap_or(&answer).to_owned()
    }))
    .await;

    let held = answers.iter().filter(|status| *status == "408").count();
    let refused = answers.iter().filter(|status| *status == "429").count();
    assert_eq!((held, refused), (2, 6), "{answers:?}");
    wait::until(
        "the two cut-off uploads to be over",
        Duration::from_secs(10),
        || async { (in_progress(&app).await == 0).then_some(()) },
    )
    .await;
}
