//! The worker's own small HTTP server on `WORKER_HTTP_PORT`: `/healthz` for
//! orchestrators and `/metrics` for Prometheus. It never faces users, but
//! it is guarded as the api's port is: the same connection loop (header
//! and idle deadlines, a connection cap), and `/metrics` behind
//! `METRICS_TOKEN` when it is set.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use catalogue::QueueName;
use platform::config::{HttpLimits, Provider, ProviderSettings};
use queue::{EvictionCheck, JobQueues};
use serde_json::json;
use store::tokens::TokenHash;
use tokio::net::TcpListener;
use tokio::sync::Mutex;

/// Connections at once: a scraper and an orchestrator need a handful.
const MAX_CONNECTIONS: usize = 64;

/// Queue figures are read from Redis at most this often, however many
/// scrapes arrive (each reading is two Redis calls per queue).
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// What the endpoints read.
#[derive(Clone)]
pub struct Probe {
    /// The queues this process consumes (its gauges cover these).
    pub queues: Arc<Vec<QueueName>>,
    /// Counts and the oldest waiting job come from Redis at scrape time.
    pub redis: Arc<JobQueues>,
    /// Set once shutdown has begun: `/healthz` then answers 503.
    pub stopping: Arc<AtomicBool>,
    /// SHA-256 of `METRICS_TOKEN`; `None` leaves `/metrics` open.
    pub metrics_token: Option<TokenHash>,
    /// When the queue figures were last read (and a lock, so concurrent
    /// scrapes read them once).
    pub sampled: Arc<Mutex<Option<Instant>>>,
    /// Redis' eviction policy as `/healthz` reports it: asked at most once
    /// a second, however many probes arrive.
    pub eviction: Arc<EvictionCheck>,
    /// Each provider's rate budget, whose use is read at scrape time too.
    pub providers: Arc<ProviderSettings>,
}

/// Binds `port` on all interfaces (an orchestrator probes from outside the
/// container); fails at start if it is taken, rather than running blind.
pub async fn bind(port: u16) -> anyhow::Result<TcpListener> {
    TcpListener::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("cannot listen on WORKER_HTTP_PORT {port} (0 turns it off)"))
}

/// Serves until the task is aborted, with the api's header and idle
/// deadlines (`limits`) and at most [`MAX_CONNECTIONS`] connections.
pub async fn serve(listener: TcpListener, probe: Probe, limits: HttpLimits) -> std::io::Result<()> {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(probe);
    let limits = HttpLimits {
        max_connections: MAX_CONNECTIONS,
        ..limits
    };
    platform::server::serve(listener, router, limits, std::future::pending()).await
}

/// 200 while consuming, 503 once draining for shutdown (so a rolling deploy
/// sees it leave). Redis being down is reported, not fatal: restarting the
/// worker would not bring Redis back, and the runtime reconnects by itself.
/// `redis_maxmemory_policy` names Redis' eviction policy (anything but
/// `noeviction` may lose jobs), absent when Redis is down or does not say;
/// both are at most a second old.
async fn healthz(State(probe): State<Probe>) -> Response {
    let policy = probe.eviction.policy(&probe.redis).await;
    let redis = if policy.is_some() { "up" } else { "down" };
    let policy = policy
        .as_ref()
        .and_then(|policy| policy.name().map(str::to_owned));
    if probe.stopping.load(Ordering::Relaxed) {
        let body =
            json!({ "status": "stopping", "redis": redis, "redis_maxmemory_policy": policy });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(json!({ "status": "ok", "redis": redis, "redis_maxmemory_policy": policy }))
        .into_response()
}

async fn metrics(State(probe): State<Probe>, headers: HeaderMap) -> Response {
    if let Some(expected) = &probe.metrics_token {
        let given = store::tokens::bearer(&headers);
        if !given.is_some_and(|token| store::tokens::matches(token, expected)) {
            let body = json!({ "error": {
                "code": "unauthorized",
                "message": "send METRICS_TOKEN as a bearer token",
            }});
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
    }
    let mut sampled = probe.sampled.lock().await;
    if sampled.is_none_or(|at| at.elapsed() >= SAMPLE_EVERY) {
        sample(&probe).await;
        *sampled = Some(Instant::now());
    }
    drop(sampled);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        platform::metrics::handle().render(),
    )
        .into_response()
}

/// Brings the gauges of this worker's queues, and of every provider's
/// budget, up to date.
async fn sample(probe: &Probe) {
    for &provider in Provider::ALL {
        match probe
            .redis
            .budget_use(provider, probe.providers.budget(provider))
            .await
        {
            Ok(reading) => reading.publish(),
            Err(error) => {
                tracing::warn!(%provider, %error, "could not read the provider's budget for /metrics");
            }
        }
    }
    for &queue in probe.queues.iter() {
        let (counts, oldest) = tokio::join!(
            probe.redis.counts(queue),
            probe.redis.oldest_waiting_age(queue)
        );
        match (counts, oldest) {
            (Ok(counts), Ok(oldest)) => counts.publish(oldest),
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%queue, %error, "could not read the queue for /metrics");
            }
        }
    }
}
