//! The photo pipeline over HTTP: upload, resize in the worker, avatar URLs,
//! serving, and every way an upload can be refused.

use serde_json::Value;
use testkit::TestApp;
use testkit::app::Options;
use testkit::images::{decode_jpeg, jpeg, noise, photo, webp, with_exif_orientation};

use testkit::DEADLINE;

async fn signed_up(app: &TestApp) -> String {
    let signup = app.sign_up("ada@example.com", "Ada Lovelace").await;
    signup["token"].as_str().expect("token").to_owned()
}

/// Uploads and expects the contract's 202; returns its body.
async fn accepted(app: &TestApp, token: &str, bytes: &[u8]) -> Value {
    let response = app.upload(token, "photo", bytes).await;
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(status, 202, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_photo_becomes_the_avatar_in_three_sizes() {
    let mut app = TestApp::spawn_with_worker().await;
    let token = signed_up(&app).await;
    assert_eq!(app.me(&token).await["avatar"], Value::Null);

    let original = with_exif_orientation(&jpeg(1600, 1200, &photo(1600, 1200)), 6);
    let body = accepted(&app, &token, &original).await;
    assert_eq!(body["photo"]["state"], "processing");
    assert_eq!(body["job"]["name"], "image-resize");
    let job = body["job"]["id"].as_str().expect("job id");
    assert_eq!(
        body["job"]["status_url"],
        format!("http://app.test/api/jobs/{job}")
    );
    app.run_jobs_until_idle().await;
    assert_eq!(app.job_state(job).await, "completed");

    let status = app.job_status(job, Some(&token)).await;
    assert_eq!(status["progress"], 100);
    assert_eq!(status["result"]["width"], 1200, "upright width: {status}");
    assert_eq!(status["result"]["height"], 1600, "upright height: {status}");
    let photo_id = body["photo"]["id"].as_str().expect("photo id");
    let avatar = app.me(&token).await["avatar"].clone();
    for (variant, side) in [("large", 1200), ("medium", 600), ("thumbnail", 150)] {
        let url = avatar[variant].as_str().expect("a URL per size");
        assert_eq!(
            url,
            format!("http://app.test/media/photos/{photo_id}/{variant}.jpg")
        );
        let path = url.trim_start_matches("http://app.test");
        let response = app.get(path, None).await;
        assert_eq!(response.status(), 200, "{url}");
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let (width, height, _) = decode_jpeg(&response.bytes().await.expect("bytes"));
        assert_eq!((width, height), (side, side), "{variant}");
    }
    let original_url = avatar["original"].as_str().expect("original URL");
    let response = app
        .get(
            original_url.trim_start_matches("http://app.test"),
            Some(&token),
        )
        .await;
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    assert_eq!(
        response.bytes().await.expect("bytes").as_ref(),
        original.as_slice()
    );
}

/// Progress is only visible while the job runs; a trigger keeps every value
/// the worker wrote, so the test sees them all without racing the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resize_job_reports_its_progress_step_by_step() {
    let mut app = TestApp::spawn_without_worker().await;
    for statement in [
        "create table progress_seen (job_id text, progress smallint, at serial)",
        "create function keep_progress() returns trigger language plpgsql as $$
         begin insert into progress_seen values (new.job_id, new.progress); return new; end $$",
        "create trigger keep_progress after update of progress on jobs
         for each row when (new.progress is distinct from old.progress)
         execute function keep_progress()",
    ] {
        sqlx::query(statement)
            .execute(&app.pool)
            .await
            .expect("trigger");
    }
    let token = signed_up(&app).await;
    let body = accepted(&app, &token, &jpeg(1600, 1200, &photo(1600, 1200))).await;
    let job = body["job"]["id"].as_str().expect("job id");

    app.run_jobs_until_idle().await;

    let seen: Vec<i16> =
        sqlx::query_scalar("select progress from progress_seen where job_id = $1 order by at")
            .bind(job)
            .fetch_all(&app.pool)
            .await
            .expect("progress log");
    assert_eq!(seen, [10, 50, 65, 80, 95, 100]);
    // BullMQ's own job hash shows it too, for Bull Board and Node clients
    // (the last step before completion; BullMQ does not set 100 itself).
    let published = app
        .redis
        .cli(&["HGET", &format!("bull:image-resize:{job}"), "progress"]);
    assert_eq!(published.trim().parse::<f64>().ok(), Some(95.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_uploads_in_a_row_end_with_the_last_one_as_avatar() {
    let mut app = TestApp::spawn_with_worker().await;
    let token = signed_up(&app).await;
    let mut last = (String::new(), String::new());
    for (n, color) in [[200, 0, 0], [0, 200, 0], [0, 0, 200]]
        .into_iter()
        .enumerate()
    {
        let body = accepted(&app, &token, &webp(300 + n as u32, 300, color)).await;
        last = (
            body["photo"]["id"].as_str().expect("id").to_owned(),
            body["job"]["id"].as_str().expect("id").to_owned(),
        );
    }
    app.run_jobs_until_idle().await;
    assert_eq!(app.job_state(&last.1).await, "completed");
    let expected = format!("http://app.test/media/photos/{}/large.jpg", last.0);
    assert_eq!(app.me(&token).await["avatar"]["large"], expected.as_str());
    let states: Vec<String> = sqlx::query_scalar("select state from photos order by photo_id")
        .fetch_all(&app.pool)
        .await
        .expect("photos");
    assert_eq!(
        states,
        ["ready", "ready", "ready"],
        "every upload was processed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_photo_fails_its_job_once_with_a_reason_and_the_worker_carries_on() {
    let app = TestApp::spawn_with_worker().await;
    let token = signed_up(&app).await;
    let valid = jpeg(400, 300, &photo(400, 300));
    let truncated = &valid[..valid.len() / 2];
    let mut garbage = vec![0xFF, 0xD8, 0xFF, 0xE0];
    garbage.extend((0..5000_u32).map(|i| (i * 31 % 251) as u8));

    for broken in [truncated, garbage.as_slice()] {
        let body = accepted(&app, &token, broken).await;
        let job = body["job"]["id"].as_str().expect("job id");
        app.wait_for_job_state(job, "failed", DEADLINE).await;
        let status = app.job_status(job, Some(&token)).await;
        assert_eq!(status["attempts_made"], 1, "no retries: {status}");
        assert_eq!(status["error"]["code"], "image_unreadable", "{status}");
        assert_eq!(
            status["error"]["message"],
            "The image could not be read; it may be damaged or incomplete."
        );
        let detail = app.operator_view(job).await["error_detail"]
            .as_str()
            .expect("the operator's reason")
            .to_owned();
        assert!(detail.contains("cannot be decoded"), "{detail}");
        let photo_id =
            uuid::Uuid::parse_str(body["photo"]["id"].as_str().expect("id")).expect("uuid");
        let state: String = sqlx::query_scalar("select state from photos where photo_id = $1")
            .bind(photo_id)
            .fetch_one(&app.pool)
            .await
            .expect("the photo row");
        assert_eq!(state, "failed");
    }
    assert_eq!(app.me(&token).await["avatar"], Value::Null);

    let body = accepted(&app, &token, &valid).await;
    app.wait_for_job_state(
        body["job"]["id"].as_str().expect("id"),
        "completed",
        DEADLINE,
    )
    .await;
    assert!(app.me(&token).await["avatar"]["large"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_we_cannot_take_are_refused_with_the_right_status() {
    let app = TestApp::spawn_with(Options {
        worker: false,
        configure: Some(testkit::app::configure(move |s| {
            s.photos.max_bytes = 200000;
            s.photos.max_pixels = 1000000;
        })),
        ..Options::default()
    })
    .await;
    let token = signed_up(&app).await;
    let code = |body: &Value| {
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    let too_big: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0]
        .into_iter()
        .chain(vec![0; 300_000])
        .collect();
    let response = app.upload(&token, "photo", &too_big).await;
    assert_eq!(response.status(), 413);
    assert_eq!(
        code(&response.json().await.expect("JSON")),
        "payload_too_large"
    );

    let response = app
        .upload(&token, "photo", b"GIF89a\x01\0\x01\0\0\0\0;")
        .await;
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.expect("JSON");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("JPEG, PNG or WebP")
    );

    let bomb = jpeg(2000, 1000, &vec![0; 2000 * 1000 * 3]);
    let response = app.upload(&token, "photo", &bomb).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("JSON");
    assert!(
        body["error"]["fields"]["photo"]
            .as_str()
            .unwrap_or_default()
            .contains("2000×1000")
    );

    let response = app.upload(&token, "avatar", &webp(10, 10, [0, 0, 0])).await;
    assert_eq!(response.status(), 422);
    assert_eq!(
        code(&response.json().await.expect("JSON")),
        "validation_failed"
    );

    let response = app
        .client
        .post(format!("{}/api/photos", app.address))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "photo": "base64?" }))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 415);

    let response = app
        .client
        .post(format!("{}/api/photos", app.address))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 401);

    // Nothing refused was kept: no photo, no files. Every upload that got
    // as far as its first bytes (the one cut off past its size, the text
    // file, the bomb, the wrong field) holds a failed row that counts
    // against the hour: the account's place is taken before its first
    // byte is read. A body that is not multipart never got that far.
    let kept: Vec<(String, i64)> = sqlx::query_as("select state, bytes from photos")
        .fetch_all(&app.pool)
        .await
        .expect("read");
    assert_eq!(kept, vec![("failed".to_owned(), 0); 4]);
    let stored = testkit::files_under(&app.storage_dir().join("photos"));
    assert_eq!(
        stored,
        Vec::<std::path::PathBuf>::new(),
        "refused uploads leave no files"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_s3_storage_files_live_in_the_bucket_and_media_urls_redirect_to_signed_ones() {
    let s3 = testkit::s3::S3Server::start("acme-media").await;
    let mut app = TestApp::spawn_with(Options {
        worker: true,
        configure: Some(s3.configure()),
        ..Options::default()
    })
    .await;
    let signup = app.sign_up("ada@example.com", "Ada Lovelace").await;
    let token = signup["token"].as_str().expect("token");
    // Noise compresses badly: big enough for a multipart upload of two parts.
    let original = jpeg(3200, 2400, &noise(3200, 2400));
    assert!(original.len() > 5 * 1024 * 1024, "{} bytes", original.len());
    let body = accepted(&app, token, &original).await;
    app.wait_for_job_state(
        body["job"]["id"].as_str().expect("id"),
        "completed",
        DEADLINE,
    )
    .await;

    let large = app.me(token).await["avatar"]["large"]
        .as_str()
        .expect("avatar URL")
        .trim_start_matches("http://app.test")
        .to_owned();
    let response = app.get(&large, None).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.url().as_str().starts_with(&s3.endpoint()),
        "served by S3 through a signed URL: {}",
        response.url()
    );
    assert!(response.url().as_str().contains("X-Amz-Signature="));
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    let (width, height, _) = decode_jpeg(&response.bytes().await.expect("bytes"));
    assert_eq!((width, height), (1200, 1200));
    let original_url = app.me(token).await["avatar"]["original"]
        .as_str()
        .expect("original URL")
        .trim_start_matches("http://app.test")
        .to_owned();
    let stored = app
        .get(&original_url, Some(token))
        .await
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(
        stored.as_ref(),
        original.as_slice(),
        "the original survives the parts intact"
    );

    let job = testkit::job_id(&signup, "onboarding-pdf");
    app.run_jobs_until_idle().await;
    assert_eq!(app.job_state(&job).await, "completed");
    let pdf = app.get("/api/me/onboarding.pdf", Some(token)).await;
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.expect("bytes").starts_with(b"%PDF-"));
}

/// The `logs` of a job's BullMQ view on the operators' job page.
async fn job_log(app: &TestApp, job: &str) -> Vec<String> {
    let view = app.operator_view(job).await;
    serde_json::from_value(view["bullmq"]["logs"].clone())
        .unwrap_or_else(|_| panic!("the job page has BullMQ's log: {view}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_key_steps_and_its_failures_are_in_its_bullmq_log_on_the_job_page() {
    let app = TestApp::spawn_with_worker().await;
    let token = signed_up(&app).await;
    let body = accepted(&app, &token, &jpeg(400, 300, &photo(400, 300))).await;
    let done = body["job"]["id"].as_str().expect("job id").to_owned();
    app.wait_for_job_state(&done, "completed", DEADLINE).await;
    let log = job_log(&app, &done).await;
    assert!(log[0].starts_with("original read: "), "{log:#?}");
    assert_eq!(log[1], "decoded 400×300; 3 sizes made", "{log:#?}");
    assert_eq!(
        log[2..]
            .iter()
            .map(|line| line.split(' ').nth(1).unwrap_or(""))
            .collect::<Vec<_>>(),
        ["large", "medium", "thumbnail"],
        "{log:#?}"
    );

    let broken = accepted(&app, &token, b"\xFF\xD8\xFF\xE0 not a jpeg at all").await;
    let failed = broken["job"]["id"].as_str().expect("job id").to_owned();
    app.wait_for_job_state(&failed, "failed", DEADLINE).await;
    let log = job_log(&app, &failed).await;
    let last = log.last().expect("a line");
    assert!(
        last.starts_with("attempt 1 of ") && last.ends_with("; failed for good (permanent)"),
        "{log:#?}"
    );
    assert!(last.contains("cannot be decoded"), "{last}");
}
