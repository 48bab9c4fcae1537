//! Liveness (`/healthz`) and readiness (`/readyz`) for orchestrators.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use queue::EvictionPolicy;
use serde::Serialize;
use utoipa_axum::routes;

use super::endpoints::{Endpoints, Limits};
use crate::state::AppState;

/// Routes of this module.
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    endpoints
        .add(routes!(healthz), Limits::JSON)
        .add(routes!(readyz), Limits::JSON)
}

/// `/healthz`: always `ok` while the process serves.
#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// `/readyz`: whether the api can take signups, and each dependency.
#[derive(Serialize, utoipa::ToSchema)]
struct Readiness {
    /// `ready`, or `degraded` when Redis is down (jobs wait in the outbox)
    /// or may evict jobs (its `maxmemory-policy` is not `noeviction`).
    #[schema(example = "ready")]
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
    checks: Checks,
}

/// Each dependency, `up` or `down`.
#[derive(Serialize, utoipa::ToSchema)]
struct Checks {
    #[schema(example = "up")]
    postgres: &'static str,
    #[schema(example = "up")]
    redis: &'static str,
    /// Redis' `maxmemory-policy`; anything but `noeviction` may lose jobs.
    /// Absent when Redis is down or does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "noeviction")]
    redis_maxmemory_policy: Option<String>,
}

/// `/readyz` without Postgres: an error answer that still lists the checks.
#[derive(Serialize, utoipa::ToSchema)]
struct NotReady {
    error: NotReadyDetail,
    checks: Checks,
}

/// Why the instance is not ready.
#[derive(Serialize, utoipa::ToSchema)]
struct NotReadyDetail {
    #[schema(example = "not_ready")]
    code: &'static str,
    message: &'static str,
}

/// The process is up and serving; says nothing about dependencies, so an
/// orchestrator does not restart us because Redis blinked.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Ready while the api can take signups, which needs Postgres only: with
/// Redis down, jobs wait in the outbox and go out when it is back, so the
/// instance stays in rotation (`degraded`). 503 only without Postgres.
/// Asking Redis for its eviction policy doubles as its ping, at most once a
/// second however many probes come ([`queue::EvictionCheck`]).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready (or degraded: Redis is down)", body = Readiness),
        (status = 503, description = "Postgres is down", body = NotReady),
    ))]
async fn readyz(State(state): State<AppState>) -> Response {
    const LIMIT: Duration = Duration::from_secs(1);
    let postgres = async {
        tokio::time::timeout(LIMIT, sqlx::query("select 1").execute(&state.pool))
            .await
            .is_ok_and(|result| result.is_ok())
    };
    let redis = state.eviction.policy(&state.queues);
    let (postgres, policy) = tokio::join!(postgres, redis);
    let redis = policy.is_some();
    let policy = policy.unwrap_or(EvictionPolicy::Unknown);

    let up = |ok: bool| if ok { "up" } else { "down" };
    let checks = Checks {
        postgres: up(postgres),
        redis: up(redis),
        redis_maxmemory_policy: policy.name().map(str::to_owned),
    };
    match (postgres, redis) {
        (true, true) if matches!(policy, EvictionPolicy::Unsafe(_)) => Json(Readiness {
            status: "degraded",
            message: Some(
                "redis may evict jobs under memory pressure: set its maxmemory-policy to noeviction",
            ),
            checks,
        })
        .into_response(),
        (true, true) => Json(Readiness {
            status: "ready",
            message: None,
            checks,
        })
        .into_response(),
        (true, false) => Json(Readiness {
            status: "degraded",
            message: Some("redis is down: signups are taken and their jobs wait in the outbox"),
            checks,
        })
        .into_response(),
        (false, _) => {
            let message = "not ready: postgres is down";
            tracing::warn!(message, "readiness check failed");
            let body = NotReady {
                error: NotReadyDetail {
                    code: "not_ready",
                    message,
                },
                checks,
            };
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}
