//! How long a password reset email waits while an attacker floods one
//! address with signups (each takes the address from the last, and would
//! send it a confirmation email), and how many emails that address gets.
//!
//! A real api, worker, Postgres, Redis and SMTP sink (testkit), the
//! per-client limits off (the attacker has many client addresses); every
//! message takes `SMTP_DELAY` to be accepted, like a real provider. The
//! flood runs through the api `IN_FLIGHT` signups at a time while the
//! worker runs; halfway through, the owner of another account asks for a
//! password reset, and the time from that request to the reset email's
//! arrival is printed as one JSON line, with what the flood cost.
//!
//! `cargo bench -p worker --bench signup_flood [signups, default 600]`

#![allow(clippy::print_stdout)] // A benchmark prints its result.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde_json::json;
use testkit::TestApp;

/// What one message costs at a typical SMTP provider, roughly.
const SMTP_DELAY: Duration = Duration::from_millis(20);
const RESET_SUBJECT: &str = "Reset your Acme password";
const VICTIM: &str = "victim@example.com";
/// Signups the attacker keeps in flight.
const IN_FLIGHT: usize = 8;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let signups: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(600);
    let app = TestApp::spawn_with_worker_with(|s| s.auth.rate_limit = 0).await;
    app.sign_up("owner@example.com", "Owner").await;
    app.smtp.set_delay(SMTP_DELAY);

    let created = AtomicUsize::new(0);
    let started = Instant::now();
    let flood = futures::stream::iter(0..signups)
        .map(|n| {
            let (app, created) = (&app, &created);
            async move {
                let answer = app
                    .post_json(
                        "/api/signup",
                        &json!({ "email": VICTIM, "password": "correct horse battery", "name": format!("Squatter {n}") }),
                    )
                    .await;
                // 409: another of the flood's signups held the address at that moment.
                if answer.status() == 201 {
                    created.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>();
    let reset = async {
        // Halfway, by time: the flood is in full swing.
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
        testkit::wait::until("the reset email", Duration::from_secs(120), || async {
            app.smtp
                .received()
                .iter()
                .any(|email| email.parsed().subject() == Some(RESET_SUBJECT))
                .then_some(())
        })
        .await;
        (answered_after, asked_at.elapsed())
    };
    let ((), (answered_after, arrived_after)) = tokio::join!(
        async {
            flood.await;
        },
        reset
    );
    let flood_took = started.elapsed();
    let to_victim = app
        .smtp
        .received()
        .iter()
        .filter(|email| email.to.iter().any(|to| to == VICTIM))
        .count();
    println!(
        "{}",
        json!({
            "signups_sent": signups,
            "signups_created": created.load(Ordering::Relaxed),
            "flood_took_ms": flood_took.as_millis(),
            "smtp_ms_per_message": SMTP_DELAY.as_millis(),
            "reset_api_answered_after_ms": answered_after.as_millis(),
            "reset_email_after_ms": arrived_after.as_millis(),
            "emails_to_the_flooded_address": to_victim,
        })
    );
}
