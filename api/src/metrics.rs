//! The api's Prometheus metrics: every request counted and timed by route
//! template and status, requests in flight, and, sampled when scraped, the
//! Argon2 queue and the outbox.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, gauge, histogram};

use crate::state::AppState;

/// Middleware: counts and times the request under its route template
/// (`/api/jobs/{id}`, never the id itself, so the series stay few).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let _in_flight = InFlight::enter();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [
        ("method", method),
        ("route", route),
        ("status", response.status().as_str().to_owned()),
    ];
    counter!("http_requests_total", &labels).increment(1);
    histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

/// One request in flight; leaves the gauge when dropped, so a request the
/// client abandoned does not stay counted.
struct InFlight;

impl InFlight {
    fn enter() -> Self {
        gauge!("http_requests_in_flight").increment(1.0);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        gauge!("http_requests_in_flight").decrement(1.0);
    }
}

/// The text exposition, with the sampled gauges brought up to date first.
pub async fn render(state: &AppState) -> String {
    gauge!("argon2_queue_depth").set(state.passwords.waiting() as f64);
    // The partial index on pending records makes this cheap; a failure
    // leaves the last value, and the readiness check reports the database.
    match sqlx::query_scalar!(r#"select count(*) as "pending!" from jobs where state = 'pending'"#)
        .fetch_one(&state.pool)
        .await
    {
        Ok(pending) => gauge!("outbox_pending_jobs").set(pending as f64),
        Err(error) => tracing::warn!(%error, "could not count the outbox for /metrics"),
    }
    shared::metrics::handle().render()
}
