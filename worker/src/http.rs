//! The worker's own small HTTP server on `WORKER_HTTP_PORT`: `/healthz` for
//! orchestrators and `/metrics` for Prometheus. It never faces users.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics::gauge;
use serde_json::json;
use shared::jobs::QueueName;
use shared::queue::JobQueues;
use tokio::net::TcpListener;

/// What the endpoints read.
#[derive(Clone)]
pub struct Probe {
    /// The queues this process consumes (its gauges cover these).
    pub queues: Arc<Vec<QueueName>>,
    /// Counts and the oldest waiting job come from Redis at scrape time.
    pub redis: Arc<JobQueues>,
    /// Set once shutdown has begun: `/healthz` then answers 503.
    pub stopping: Arc<AtomicBool>,
}

/// Binds `port` on all interfaces (an orchestrator probes from outside the
/// container); fails at start if it is taken, rather than running blind.
pub async fn bind(port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("cannot listen on WORKER_HTTP_PORT {port} (0 turns it off)"))
}

/// Serves until the task is aborted.
pub async fn serve(listener: TcpListener, probe: Probe) -> std::io::Result<()> {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(probe);
    axum::serve(listener, router).await
}

/// 200 while consuming, 503 once draining for shutdown (so a rolling deploy
/// sees it leave). Redis being down is reported, not fatal: restarting the
/// worker would not bring Redis back, and the runtime reconnects by itself.
async fn healthz(State(probe): State<Probe>) -> Response {
    let redis = if probe.redis.ping().await.is_ok() {
        "up"
    } else {
        "down"
    };
    if probe.stopping.load(Ordering::Relaxed) {
        let body = json!({ "status": "stopping", "redis": redis });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(json!({ "status": "ok", "redis": redis })).into_response()
}

async fn metrics(State(probe): State<Probe>) -> Response {
    for &queue in probe.queues.iter() {
        let name = queue.as_str();
        match probe.redis.counts(queue).await {
            Ok(counts) => {
                for (state, value) in [
                    ("waiting", counts.waiting),
                    ("active", counts.active),
                    ("delayed", counts.delayed),
                    ("failed", counts.failed),
                    ("paused", counts.paused),
                ] {
                    gauge!("queue_jobs", "queue" => name, "state" => state).set(value as f64);
                }
            }
            Err(error) => tracing::warn!(%queue, %error, "could not count jobs for /metrics"),
        }
        match probe.redis.oldest_waiting_age(queue).await {
            Ok(age) => gauge!("queue_oldest_waiting_seconds", "queue" => name)
                .set(age.map_or(0.0, |age| age.as_secs_f64())),
            Err(error) => tracing::warn!(%queue, %error, "could not read the oldest waiting job"),
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        shared::metrics::handle().render(),
    )
        .into_response()
}
