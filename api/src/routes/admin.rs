//! Operator endpoints, enabled by setting `ADMIN_TOKEN`.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::jobs::QueueName;
use shared::queue::QueueCounts;
use uuid::Uuid;

use crate::auth::{bearer_token, hash_token};
use crate::error::ApiError;
use crate::routes::jobs::JobStatus;
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/admin/queues", get(queues))
        .route("/api/admin/jobs/{id}", get(job))
}

/// A caller holding `ADMIN_TOKEN`.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Disabled endpoints do not exist, as far as anyone can tell.
        let expected = state.admin_token_hash.ok_or(ApiError::NotFound("route"))?;
        let given = bearer_token(parts).ok_or(ApiError::Unauthorized)?;
        let given = hash_token(given);
        if given == expected {
            Ok(Self)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct QueuesResponse {
    queues: Vec<QueueCounts>,
}

/// Jobs per state for every queue.
#[utoipa::path(get, path = "/api/admin/queues", tag = "operations", security(("admin" = [])),
    responses(
        (status = 200, description = "Counts per queue", body = QueuesResponse),
        (status = 401, description = "Not the operator token", body = crate::error::Body),
        (status = 404, description = "`ADMIN_TOKEN` is not set", body = crate::error::Body),
        (status = 503, description = "Redis is down", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
async fn queues(State(state): State<AppState>, _: Admin) -> Result<Json<QueuesResponse>, ApiError> {
    let counts = futures::future::try_join_all(
        QueueName::ALL
            .iter()
            .map(|&queue| state.queues.counts(queue)),
    )
    .await
    .map_err(|error| {
        ApiError::Unavailable(anyhow::Error::new(error).context("cannot read queue counts"))
    })?;
    Ok(Json(QueuesResponse { queues: counts }))
}

/// A job record as operators see it: what its owner sees, plus whose it
/// is, its data, and the internal error (`error_detail`: provider replies,
/// paths, the whole chain).
#[derive(Serialize, utoipa::ToSchema)]
struct AdminJob {
    #[serde(flatten)]
    status: JobStatus,
    user_id: Uuid,
    #[schema(value_type = Object)]
    payload: serde_json::Value,
    error_detail: Option<String>,
    enqueued_at: Option<DateTime<Utc>>,
}

/// Any user's job record, by id.
#[utoipa::path(get, path = "/api/admin/jobs/{id}", tag = "operations", security(("admin" = [])),
    params(("id" = uuid::Uuid, Path, description = "The job id")),
    responses(
        (status = 200, description = "The record with its internal fields", body = AdminJob),
        (status = 401, description = "Not the operator token", body = crate::error::Body),
        (status = 404, description = "No such job, or `ADMIN_TOKEN` is not set", body = crate::error::Body),
    ))]
async fn job(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<AdminJob>, ApiError> {
    const NOT_FOUND: ApiError = ApiError::NotFound("job");
    let id = Uuid::parse_str(&id).map_err(|_| NOT_FOUND)?;
    let status = JobStatus::load(&state.pool, id, None)
        .await?
        .ok_or(NOT_FOUND)?;
    let internal = sqlx::query!(
        "select user_id, payload, error_detail, enqueued_at from jobs where job_id = $1",
        id,
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(NOT_FOUND)?;
    Ok(Json(AdminJob {
        status,
        user_id: internal.user_id,
        payload: internal.payload,
        error_detail: internal.error_detail,
        enqueued_at: internal.enqueued_at,
    }))
}
