//! Scheduled maintenance: each task removes what it should and nothing
//! else, and a schedule fires once per period however many workers run.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use sqlx::PgPool;
use testkit::images::{jpeg, photo};
use testkit::{DEADLINE, TestApp};
use uuid::Uuid;

const WORKER: &str = env!("CARGO_BIN_EXE_worker");

const TWO_DAYS: Duration = Duration::from_secs(2 * 24 * 60 * 60);

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

/// Uploads `bytes` and returns the photo's id once its job has finished.
async fn photo_of(app: &mut TestApp, token: &str, bytes: &[u8]) -> Uuid {
    let response = app.upload(token, "photo", bytes).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    app.run_jobs_until_idle().await;
    Uuid::parse_str(body["photo"]["id"].as_str().expect("id")).expect("uuid")
}

/// A file under the storage folder, written `age` ago.
fn stored_file(storage: &Path, key: &str, age: Duration) {
    let path = storage.join(key);
    std::fs::create_dir_all(path.parent().expect("a folder")).expect("folder");
    std::fs::write(&path, b"bytes").expect("written");
    let file = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_modified(SystemTime::now() - age).expect("mtime");
}

fn photo_files(storage: &Path, photo: Uuid) -> usize {
    std::fs::read_dir(storage.join(format!("photos/{photo}")))
        .map(|files| files.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_task_removes_what_it_should_and_nothing_else() {
    let mut app = TestApp::spawn_with_worker().await;
    let signup = app.sign_up("keeper@example.com", "Keeper").await;
    let token = signup["token"].as_str().expect("token").to_owned();
    let replaced = photo_of(&mut app, &token, &jpeg(300, 300, &photo(300, 300))).await;
    let avatar = photo_of(&mut app, &token, &jpeg(320, 320, &photo(320, 320))).await;
    let mut garbage = vec![0xFF, 0xD8, 0xFF, 0xE0];
    garbage.extend((0..5000_u32).map(|i| (i * 31 % 251) as u8));
    let failed = photo_of(&mut app, &token, &garbage).await;
    let recent_replaced = photo_of(&mut app, &token, &jpeg(200, 200, &photo(200, 200))).await;
    let avatar_now = photo_of(&mut app, &token, &jpeg(210, 210, &photo(210, 210))).await;
    let pool = app.pool.clone();
    // Old enough to go: everything but the newest two photos.
    sqlx::query(
        "update photos set created_at = now() - interval '2 days' where photo_id = any($1)",
    )
    .bind(vec![replaced, avatar, failed])
    .execute(&pool)
    .await
    .expect("backdated");
    // The avatar is an old photo: it must stay however old.
    sqlx::query("update users set avatar_photo_id = $1")
        .bind(avatar)
        .execute(&pool)
        .await
        .expect("avatar");
    let storage = app.storage_dir().to_owned();
    let old_orphan = Uuid::now_v7();
    let new_orphan = Uuid::now_v7();
    stored_file(&storage, &format!("photos/{old_orphan}/original"), TWO_DAYS);
    stored_file(
        &storage,
        &format!("photos/{new_orphan}/original"),
        Duration::ZERO,
    );
    stored_file(&storage, "photos/not-a-photo-id/readme.txt", TWO_DAYS);
    // One expired session and one old finished job record.
    sqlx::query(
        "insert into api_tokens (token_hash, user_id, expires_at)
         select '\\xdeadbeef'::bytea, user_id, now() - interval '1 minute' from users",
    )
    .execute(&pool)
    .await
    .expect("expired token");
    sqlx::query(
        "update jobs set finished_at = now() - interval '40 days' where queue = 'welcome-email'",
    )
    .execute(&pool)
    .await
    .expect("old record");
    sqlx::query(
        "update jobs set state = 'waiting', finished_at = null, created_at = now() - interval '40 days'
         where queue = 'slack-notify'",
    )
    .execute(&pool)
    .await
    .expect("an old unfinished record");

    // The signup's two confirmation links (emailed, and followed) are
    // spent; an open one must stay.
    let user_id = Uuid::parse_str(signup["user"]["id"].as_str().expect("id")).expect("uuid");
    let (_, open_link) = store::tokens::mint().expect("random");
    store::verifications::issue(
        &pool,
        user_id,
        0,
        "keeper@example.com",
        &open_link,
        Duration::from_secs(3600),
    )
    .await
    .expect("an open link");
    // Stripe events: one past the retention, one Stripe may still resend.
    for (event_id, age) in [("evt_old", "40 days"), ("evt_recent", "1 day")] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "insert into stripe_events (event_id, type, created, payload, job_id, received_at)
             values ($1, 'customer.deleted', now(), '{{}}', gen_random_uuid(), now() - interval '{age}')"
        )))
        .bind(event_id)
        .execute(&pool)
        .await
        .expect("an event");
    }
    // Mail budgets: one idle for two days goes, the signup's stays.
    sqlx::query(
        "insert into mail_budgets (budget_key, sent_at, last_sent_at)
         values ('\\x00', array[now() - interval '2 days'], now() - interval '2 days')",
    )
    .execute(&pool)
    .await
    .expect("an idle budget");
    let output = app.worker_command(WORKER, &["maintenance", "run"]).await;

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        printed.contains(
            r#"purge-expired-tokens	{"devices":0,"mail_budgets":1,"resets":0,"tokens":1,"verifications":2}"#
        ),
        "{printed}"
    );
    assert!(
        printed.contains(r#"prune-job-records	{"job_records":1,"stripe_events":1}"#),
        "{printed}"
    );
    assert!(
        printed.contains(r#"clean-photos	{"orphan_files":1,"photos":2}"#),
        "{printed}"
    );
    assert_eq!(
        count(&pool, "select count(*) from stripe_events").await,
        1,
        "the recent event stays"
    );
    assert_eq!(
        count(&pool, "select count(*) from api_tokens").await,
        1,
        "the live session stays"
    );
    assert_eq!(app.me(&token).await["email"], "keeper@example.com");
    assert_eq!(
        count(&pool, "select count(*) from email_verifications").await,
        1,
        "the open confirmation link stays"
    );
    assert_eq!(
        count(&pool, "select count(*) from mail_budgets").await,
        1,
        "the signup's budget stays"
    );
    assert_eq!(
        count(
            &pool,
            "select count(*) from jobs where queue = 'welcome-email'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &pool,
            "select count(*) from jobs where queue = 'slack-notify'"
        )
        .await,
        1,
        "an unfinished record is never pruned"
    );
    let left: Vec<Uuid> = sqlx::query_scalar("select photo_id from photos order by photo_id")
        .fetch_all(&pool)
        .await
        .expect("photos");
    let mut kept = vec![avatar, recent_replaced, avatar_now];
    kept.sort();
    assert_eq!(
        left, kept,
        "replaced and failed old photos go; the avatar and recent ones stay"
    );
    for gone in [replaced, failed, old_orphan] {
        assert_eq!(photo_files(&storage, gone), 0, "{gone}'s files are deleted");
    }
    assert_eq!(
        photo_files(&storage, avatar),
        4,
        "the avatar keeps its original and three sizes"
    );
    assert_eq!(
        photo_files(&storage, new_orphan),
        1,
        "a recent file may be an upload in progress"
    );
    assert!(storage.join("photos/not-a-photo-id/readme.txt").exists());
    assert!(
        printed.contains(r#"abort-multipart-uploads	{"multipart_uploads":0}"#),
        "a folder has no multipart uploads: {printed}"
    );
    assert_eq!(
        count(&pool, "select count(*) from maintenance_runs").await,
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_workers_each_schedule_fires_once_per_period() {
    let mut app = TestApp::spawn_without_worker_with(move |s| {
        s.maintenance.interval = Some(Duration::from_secs(1))
    })
    .await;
    app.start_worker();
    let _second = app.spawn_worker_process(WORKER);

    testkit::wait::until("three runs of every task", DEADLINE, || async {
        let fewest: i64 = sqlx::query_scalar(
            "select coalesce(min(runs), 0) from (
                 select count(*) as runs from maintenance_runs group by task
                 having count(*) > 0) per_task
             where (select count(distinct task) from maintenance_runs) = 4",
        )
        .fetch_one(&app.pool)
        .await
        .expect("runs");
        (fewest >= 3).then_some(())
    })
    .await;

    let runs: Vec<(String, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "select task, bullmq_job, started_at from maintenance_runs order by task, started_at",
    )
    .fetch_all(&app.pool)
    .await
    .expect("runs");
    for pair in runs.windows(2) {
        let ((task, job, at), (next_task, next_job, next_at)) = (&pair[0], &pair[1]);
        if task != next_task {
            continue;
        }
        assert_ne!(job, next_job, "one job per period");
        let gap = (*next_at - *at).to_std().unwrap_or_default();
        assert!(
            gap >= Duration::from_millis(500),
            "{task} ran twice in one period ({gap:?} apart): {runs:?}"
        );
    }
    let schedulers = app.redis.cli(&["ZCARD", "bull:maintenance:repeat"]);
    assert_eq!(
        schedulers.trim(),
        "4",
        "one scheduler per task, however many workers"
    );
}

/// S3 is outside our walls, and s3rver does not list multipart uploads:
/// a mock S3 answers the listing (two pages) and checks what is aborted,
/// that every request is signed, and that an upload outside our prefix is
/// left alone even when the listing names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_our_multipart_uploads_older_than_a_day_are_aborted_on_every_page() {
    use wiremock::matchers::{header_regex, method, path, query_param, query_param_is_missing};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let s3 = MockServer::start().await;
    let old = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    let recent = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let id = Uuid::nil();
    let first_page = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult><Bucket>media</Bucket><IsTruncated>true</IsTruncated>
<NextKeyMarker>app/photos/{id}/large.jpg</NextKeyMarker><NextUploadIdMarker>recent-upload</NextUploadIdMarker>
<Upload><Key>app/photos/{id}/original</Key><UploadId>old-upload</UploadId><Initiated>{old}</Initiated></Upload>
<Upload><Key>other-app/photos/{id}/original</Key><UploadId>not-ours</UploadId><Initiated>{old}</Initiated></Upload>
<Upload><Key>app/photos/{id}/large.jpg</Key><UploadId>recent-upload</UploadId><Initiated>{recent}</Initiated></Upload>
</ListMultipartUploadsResult>"#
    );
    let second_page = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult><Bucket>media</Bucket><IsTruncated>false</IsTruncated>
<Upload><Key>app/photos/{id}/medium.jpg</Key><UploadId>old-upload-2</UploadId><Initiated>{old}</Initiated></Upload>
</ListMultipartUploadsResult>"#
    );
    let signed = || header_regex("authorization", "^AWS4-HMAC-SHA256 Credential=test-key/");
    Mock::given(method("GET"))
        .and(path("/media/"))
        .and(query_param("prefix", "app/"))
        .and(query_param_is_missing("key-marker"))
        .and(signed())
        .respond_with(ResponseTemplate::new(200).set_body_string(first_page))
        .expect(1)
        .mount(&s3)
        .await;
    Mock::given(method("GET"))
        .and(path("/media/"))
        .and(query_param("prefix", "app/"))
        .and(query_param(
            "key-marker",
            format!("app/photos/{id}/large.jpg"),
        ))
        .and(query_param("upload-id-marker", "recent-upload"))
        .and(signed())
        .respond_with(ResponseTemplate::new(200).set_body_string(second_page))
        .expect(1)
        .mount(&s3)
        .await;
    for (file, upload) in [("original", "old-upload"), ("medium.jpg", "old-upload-2")] {
        Mock::given(method("DELETE"))
            .and(path(format!("/media/app/photos/{id}/{file}")))
            .and(query_param("uploadId", upload))
            .and(signed())
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&s3)
            .await;
    }
    // Anything else (the upload outside our prefix) is a 404 the run would
    // fail on, and is counted here.
    Mock::given(method("DELETE"))
        .and(query_param("uploadId", "not-ours"))
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&s3)
        .await;
    let app = TestApp::spawn_without_worker_with({
        let value = s3.uri();
        move |s| {
            s.storage.url = "s3://media/app".into();
            s.storage.s3.endpoint = Some(value);
            s.storage.s3.allow_http = true;
            s.storage.s3.region = Some("eu-west-1".into());
            s.storage.s3.access_key_id = Some("test-key".into());
            s.storage.s3.secret_access_key = Some("test-secret".into());
        }
    })
    .await;

    let output = app
        .worker_command(WORKER, &["maintenance", "run", "abort-multipart-uploads"])
        .await;

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        printed.trim(),
        r#"abort-multipart-uploads	{"multipart_uploads":2}"#
    );
    // The mock's expectations (two listing pages, two aborts: the old
    // uploads under our prefix) are checked when it is dropped.
}
