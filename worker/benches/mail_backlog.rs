//! How long a password reset email waits while thousands of welcome emails
//! are queued. Account email has its own queue (`account-email`), so it
//! should not queue behind bulk mail; this measures that it does not.
//!
//! A real api, worker, Postgres, Redis and SMTP sink (testkit); every
//! message takes `SMTP_DELAY` to be accepted, like a real provider. The
//! backlog of welcome emails is added to Redis in bulk (for users inserted
//! directly), then the worker starts, a password reset is asked for through
//! the api, and the time from the request to the reset email's arrival is
//! printed as one JSON line, with how much of the backlog was still
//! waiting then.
//!
//! `cargo bench -p worker --bench mail_backlog [welcome emails, default 5000]`

#![allow(clippy::print_stdout)] // A benchmark prints its result.

use std::time::{Duration, Instant};

use bullmq::BulkJob;
use catalogue::QueueName;
use queue::JobQueues;
use serde_json::json;
use testkit::TestApp;

/// What one message costs at a typical SMTP provider, roughly.
const SMTP_DELAY: Duration = Duration::from_millis(20);
const RESET_SUBJECT: &str = "Reset your Acme password";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let backlog: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(5000);
    let mut app = TestApp::spawn_without_worker().await;
    app.sign_up("owner@example.com", "Owner").await;
    app.smtp.set_delay(SMTP_DELAY);

    let users: Vec<uuid::Uuid> = sqlx::query_scalar(
        "insert into users (user_id, email, name, password_hash)
         select gen_random_uuid(), 'bulk' || n || '@example.com', 'Bulk', 'x'
         from generate_series(1, $1) n
         returning user_id",
    )
    .bind(i32::try_from(backlog).expect("a sane backlog"))
    .fetch_all(&app.pool)
    .await
    .expect("the backlog's users");
    let queues = JobQueues::new(&app.settings().redis, app.settings().queues);
    let welcome = queues
        .queue(QueueName::WelcomeEmail)
        .await
        .expect("the welcome queue");
    for chunk in users.chunks(1000) {
        let jobs = chunk
            .iter()
            .map(|user_id| BulkJob::new("welcome-email", json!({ "user_id": user_id })))
            .collect();
        welcome
            .add_bulk(jobs)
            .await
            .expect("redis takes the backlog");
    }

    app.start_worker();
    // Let the welcome queue fill its concurrency first, as in production.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let asked_at = Instant::now();
    let asked = app
        .post_json(
            "/api/password/forgot",
            &json!({ "email": "owner@example.com" }),
        )
        .await;
    assert_eq!(asked.status(), 202);
    let answered_after = asked_at.elapsed();
    let welcomes_sent =
        testkit::wait::until("the reset email", Duration::from_secs(120), || async {
            let received = app.smtp.received();
            received
                .iter()
                .any(|email| email.parsed().subject() == Some(RESET_SUBJECT))
                .then_some(received.len())
        })
        .await;
    let waited = asked_at.elapsed();
    println!(
        "{}",
        json!({
            "welcome_backlog": backlog,
            "smtp_ms_per_message": SMTP_DELAY.as_millis(),
            "api_answered_after_ms": answered_after.as_millis(),
            "reset_email_after_ms": waited.as_millis(),
            "welcome_emails_sent_by_then": welcomes_sent.saturating_sub(2),
            "welcome_emails_still_waiting": backlog.saturating_sub(welcomes_sent.saturating_sub(2)),
        })
    );
}
