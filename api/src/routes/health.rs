//! Liveness (`/healthz`) and readiness (`/readyz`) for orchestrators.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The process is up and serving; says nothing about dependencies, so an
/// orchestrator does not restart us because Redis blinked.
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready while the api can take signups, which needs Postgres only: with
/// Redis down, jobs wait in the outbox and go out when it is back, so the
/// instance stays in rotation (`degraded`). 503 only without Postgres.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    const LIMIT: Duration = Duration::from_secs(1);
    let postgres = async {
        tokio::time::timeout(LIMIT, sqlx::query("select 1").execute(&state.pool))
            .await
            .is_ok_and(|result| result.is_ok())
    };
    let redis = async { state.queues.ping().await.is_ok() };
    let (postgres, redis) = tokio::join!(postgres, redis);

    let checks = json!({
        "postgres": if postgres { "up" } else { "down" },
        "redis": if redis { "up" } else { "down" },
    });
    match (postgres, redis) {
        (true, true) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "checks": checks })),
        ),
        (true, false) => (
            StatusCode::OK,
            Json(json!({
                "status": "degraded",
                "message": "redis is down: signups are taken and their jobs wait in the outbox",
                "checks": checks,
            })),
        ),
        (false, _) => {
            let message = "not ready: postgres is down";
            tracing::warn!(message, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "error": { "code": "not_ready", "message": message },
                    "checks": checks,
                })),
            )
        }
    }
}
