//! Operator endpoints, enabled by setting `ADMIN_TOKEN`.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::jobs::QueueName;
use shared::queue::QueueCounts;
use shared::records::JobState;
use uuid::Uuid;

use crate::auth::{bearer_token, hash_token};
use crate::error::ApiError;
use crate::routes::jobs::JobErrorBody;
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

#[derive(Serialize)]
struct QueuesResponse {
    queues: Vec<QueueCounts>,
}

/// Jobs per state for every queue.
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

/// A job record as operators see it: the user's error beside the internal
/// one (`error_detail`: provider replies, paths, the whole chain).
#[derive(Serialize)]
struct AdminJob {
    id: Uuid,
    user_id: Uuid,
    name: String,
    state: JobState,
    attempts_made: i32,
    max_attempts: i32,
    progress: i16,
    payload: serde_json::Value,
    result: Option<serde_json::Value>,
    error: Option<JobErrorBody>,
    error_detail: Option<String>,
    created_at: DateTime<Utc>,
    enqueued_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

/// Any user's job record, by id.
async fn job(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<AdminJob>, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("job"))?;
    let row = sqlx::query!(
        r#"select job_id, user_id, queue, state as "state: JobState", attempts_made,
                  max_attempts, progress, payload, result, error_code, error, error_detail,
                  created_at, enqueued_at, started_at, finished_at
           from jobs where job_id = $1"#,
        id,
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::NotFound("job"))?;
    Ok(Json(AdminJob {
        id: row.job_id,
        user_id: row.user_id,
        name: row.queue,
        state: row.state,
        attempts_made: row.attempts_made,
        max_attempts: row.max_attempts,
        progress: row.progress,
        payload: row.payload,
        result: row.result,
        error: JobErrorBody::from_columns(row.error_code, row.error),
        error_detail: row.error_detail,
        created_at: row.created_at,
        enqueued_at: row.enqueued_at,
        started_at: row.started_at,
        finished_at: row.finished_at,
    }))
}
