//! Any job, as operators see it: its record beside BullMQ's state.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use catalogue::QueueName;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::access::Admin;
use crate::error::ApiError;
use crate::routes::jobs::JobStatus;
use crate::state::AppState;

/// A job record as operators see it: what its owner sees, plus whose it
/// is, its data, the internal error (`error_detail`: provider replies,
/// paths, the whole chain), and BullMQ's own view of the job.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct AdminJob {
    #[serde(flatten)]
    status: JobStatus,
    /// `null` for the system's own jobs (a Stripe event).
    #[schema(required)]
    user_id: Option<Uuid>,
    #[schema(value_type = Object)]
    payload: serde_json::Value,
    error_detail: Option<String>,
    enqueued_at: Option<DateTime<Utc>>,
    request_id: Option<String>,
    /// The job in Redis; `null` once BullMQ no longer keeps it.
    bullmq: Option<BullmqView>,
}

/// What BullMQ holds for a job.
#[derive(Serialize, utoipa::ToSchema)]
struct BullmqView {
    #[schema(example = "completed")]
    state: String,
    attempts_made: u32,
    #[schema(required)]
    failed_reason: Option<String>,
    /// A number (0–100) from our jobs; other producers may set any JSON.
    #[schema(value_type = Option<serde_json::Value>)]
    #[schema(required)]
    progress: Option<serde_json::Value>,
    /// The job's log (`job.log`): key steps of long jobs, and why each
    /// failed attempt failed; oldest first, the first 100 lines.
    logs: Vec<String>,
}

/// Any user's job record, by id, beside BullMQ's state of the same job.
#[utoipa::path(get, path = "/api/admin/jobs/{id}", tag = "operations", security(("admin" = [])),
    params(("id" = uuid::Uuid, Path, description = "The job id")),
    responses(
        (status = 200, description = "The record with its internal fields and BullMQ's view", body = AdminJob),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 429, description = "Too many failed operator authentications from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 404, description = "No such job, or `ADMIN_TOKEN` is not set", body = crate::error::Body),
    ))]
pub(super) async fn job(
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
        "select user_id, queue, payload, error_detail, enqueued_at, request_id
         from jobs where job_id = $1",
        id,
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(NOT_FOUND)?;
    let bullmq = match internal.queue.parse::<QueueName>() {
        Ok(queue) => bullmq_view(&state, queue, &id.to_string()).await,
        Err(_) => None,
    };
    Ok(Json(AdminJob {
        status,
        user_id: internal.user_id,
        payload: internal.payload,
        error_detail: internal.error_detail,
        enqueued_at: internal.enqueued_at,
        request_id: internal.request_id,
        bullmq,
    }))
}

/// BullMQ's view of the job; `None` when Redis no longer has it or cannot
/// be reached (the record still answers).
async fn bullmq_view(state: &AppState, queue: QueueName, id: &str) -> Option<BullmqView> {
    let lookup = async {
        let handle = state.queues.queue(queue).await.ok()?;
        let job = handle.get_job(id).await.ok()??;
        let job_state = handle.get_job_state(id).await.ok()?;
        let (logs, _) = handle.get_job_logs(id, 0, 99, true).await.ok()?;
        Some(BullmqView {
            state: format!("{job_state:?}").to_lowercase(),
            attempts_made: job.attempts_made(),
            failed_reason: Some(job.failed_reason().to_owned()).filter(|reason| !reason.is_empty()),
            progress: serde_json::to_value(job.progress()).ok(),
            logs,
        })
    };
    tokio::time::timeout(Duration::from_secs(2), lookup)
        .await
        .ok()
        .flatten()
}
