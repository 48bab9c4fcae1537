//! Ten thousand follow-up emails falling due in the same second: how long
//! until all are done, and how long a password reset email asked for at
//! that moment waits. The follow-up has its own queue, so the reset should
//! not queue behind it.
//!
//! A real api (its outbox relay hands the delayed jobs to Redis), worker,
//! Postgres, Redis and SMTP sink (testkit); every message takes
//! `SMTP_DELAY` to be accepted, like a real provider. The follow-ups are
//! recorded for verified users inserted directly, all due at one instant.
//!
//! `cargo bench -p worker --bench follow_ups [follow-ups, default 10000]`

#![allow(clippy::print_stdout)] // A benchmark prints its result.

use std::time::{Duration, Instant};

use catalogue::{FollowUpEmail, QueueName};
use serde_json::json;
use store::records;
use store::records::{NewRecord, Origin};
use testkit::TestApp;

/// What one message costs at a typical SMTP provider, roughly.
const SMTP_DELAY: Duration = Duration::from_millis(20);
const RESET_SUBJECT: &str = "Reset your Acme password";
/// Time for the relay to hand every follow-up to Redis before they are due.
const DUE_IN: Duration = Duration::from_secs(40);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(10_000);
    let mut app = TestApp::spawn_without_worker_with(|s| {
        s.mail.unsubscribe_secret = Some("the follow-up benchmark's secret, 32+".into());
        // Nothing is lost here: no re-delivery while the backlog drains.
        s.redis.redeliver_after = Duration::from_secs(3600);
    })
    .await;
    app.sign_up("owner@example.com", "Owner").await;
    app.smtp.set_delay(SMTP_DELAY);

    let users: Vec<uuid::Uuid> = sqlx::query_scalar(
        "insert into users (user_id, email, name, password_hash, email_verified_at)
         select gen_random_uuid(), 'later' || n || '@example.com', 'Later', 'x', now()
         from generate_series(1, $1) n
         returning user_id",
    )
    .bind(i32::try_from(count).expect("a sane count"))
    .fetch_all(&app.pool)
    .await
    .expect("the users");
    // One transaction: `now()` is its start, so every follow-up has the
    // same due time.
    let recording = Instant::now();
    let mut tx = app.pool.begin().await.expect("a transaction");
    let attempts = app.settings().queues.follow_up_email.attempts;
    for user_id in &users {
        let payload = serde_json::to_value(FollowUpEmail { user_id: *user_id }).expect("JSON");
        let record = NewRecord {
            job_id: uuid::Uuid::now_v7(),
            owner: Some(*user_id),
            queue: QueueName::FollowUpEmail,
            payload: &payload,
            max_attempts: attempts,
            delay: Some(DUE_IN),
        };
        records::insert(&mut tx, record, &Origin::default())
            .await
            .expect("recorded");
    }
    tx.commit().await.expect("committed");
    let recorded_in = recording.elapsed();
    // The due time as recorded (the transaction's start plus the delay).
    let remaining: f64 = sqlx::query_scalar(
        "select extract(epoch from max(run_at) - now())::float8 from jobs
         where queue = 'follow-up-email' and user_id = any($1)",
    )
    .bind(&users)
    .fetch_one(&app.pool)
    .await
    .expect("a due time");
    let committed = Instant::now();
    let due = committed + Duration::from_secs_f64(remaining.max(0.0));
    app.start_worker();

    testkit::wait::until(
        "the relay to hand every follow-up to Redis",
        DUE_IN,
        || async {
            // The owner's own follow-up (due in a day) is delayed too.
            let delayed: i64 = sqlx::query_scalar(
                "select count(*) from jobs where queue = 'follow-up-email' and state = 'delayed'",
            )
            .fetch_one(&app.pool)
            .await
            .expect("countable");
            (delayed > i64::try_from(count).expect("fits")).then_some(())
        },
    )
    .await;
    let handed_over_in = committed.elapsed();
    let handed_over_before_due = due.saturating_duration_since(Instant::now());
    tokio::time::sleep_until((due + Duration::from_millis(200)).into()).await;

    let asked_at = Instant::now();
    let asked = app
        .post_json(
            "/api/password/forgot",
            &json!({ "email": "owner@example.com" }),
        )
        .await;
    assert_eq!(asked.status(), 202);
    let follow_ups_sent_by_then =
        testkit::wait::until("the reset email", Duration::from_secs(120), || async {
            let received = app.smtp.received();
            received
                .iter()
                .any(|email| email.parsed().subject() == Some(RESET_SUBJECT))
                .then(|| app.smtp.received_titled("Later, one step left").len())
        })
        .await;
    let reset_waited = asked_at.elapsed();
    testkit::wait::until("every follow-up", Duration::from_secs(600), || async {
        let done: i64 = sqlx::query_scalar(
            "select count(*) from jobs where queue = 'follow-up-email' and state = 'completed'",
        )
        .fetch_one(&app.pool)
        .await
        .expect("countable");
        (done == i64::try_from(count).expect("fits")).then_some(())
    })
    .await;
    let all_done = due.elapsed();
    println!(
        "{}",
        json!({
            "follow_ups": count,
            "smtp_ms_per_message": SMTP_DELAY.as_millis(),
            "recorded_in_ms": recorded_in.as_millis(),
            "handed_to_redis_in_ms": handed_over_in.as_millis(),
            "handed_to_redis_with_ms_to_spare": handed_over_before_due.as_millis(),
            "all_done_after_due_ms": all_done.as_millis(),
            "reset_email_after_ms": reset_waited.as_millis(),
            "follow_ups_sent_by_then": follow_ups_sent_by_then,
        })
    );
    app.stop().await;
}
