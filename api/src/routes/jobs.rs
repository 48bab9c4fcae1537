//! `GET /api/jobs/{id}`: the status a frontend polls. This is the hot path,
//! so it is one indexed lookup, answered from the durable job record.

use crate::outbox::{DispatchState, JobRecord};
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::records::JobState;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/jobs/{id}", get(job_status))
}

/// A job an answer points the client to (signup, photo upload): where to
/// poll its status, and how far it got on the request path.
#[derive(Debug, Serialize)]
pub(crate) struct JobRef {
    id: Uuid,
    name: &'static str,
    state: DispatchState,
    status_url: String,
}

impl JobRef {
    /// The reference to `record`, which `dispatch` left in `state`.
    pub(crate) fn new(app: &AppState, record: &JobRecord, state: DispatchState) -> Self {
        Self {
            id: record.id,
            name: record.queue.as_str(),
            state,
            status_url: app.job_status_url(record.id),
        }
    }
}

/// The status of one job as its owner sees it (operators see more, around it).
#[derive(Serialize)]
pub(crate) struct JobStatus {
    id: Uuid,
    name: String,
    state: JobState,
    attempts_made: i32,
    max_attempts: i32,
    progress: i16,
    result: Option<serde_json::Value>,
    /// Written for the end user; the internal story is for operators only.
    error: Option<JobErrorBody>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

/// Why the job failed (or is being retried), for the end user.
#[derive(Serialize)]
struct JobErrorBody {
    code: String,
    message: String,
}

impl JobErrorBody {
    /// The pair as stored; a record from before codes existed says `failed`.
    fn from_columns(code: Option<String>, message: Option<String>) -> Option<Self> {
        message.map(|message| Self {
            code: code.unwrap_or_else(|| "failed".to_owned()),
            message,
        })
    }
}

impl JobStatus {
    /// The job `id`, if it exists and, when `owner` is given, is theirs: a
    /// stranger's job is indistinguishable from one that does not exist.
    pub(crate) async fn load(
        pool: &sqlx::PgPool,
        id: Uuid,
        owner: Option<Uuid>,
    ) -> Result<Option<Self>, sqlx::Error> {
        let row = sqlx::query!(
            r#"select job_id, queue, state as "state: JobState", attempts_made, max_attempts,
                      progress, result, error_code, error, created_at, started_at, finished_at
               from jobs where job_id = $1 and ($2::uuid is null or user_id = $2)"#,
            id,
            owner,
        )
        .fetch_optional(pool)
        .await?;
        Ok(row.map(|row| Self {
            id: row.job_id,
            name: row.queue,
            state: row.state,
            attempts_made: row.attempts_made,
            max_attempts: row.max_attempts,
            progress: row.progress,
            result: row.result,
            error: JobErrorBody::from_columns(row.error_code, row.error),
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        }))
    }
}

async fn job_status(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<JobStatus>, ApiError> {
    // A malformed id cannot name any job: same answer as a missing one.
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("job"))?;
    let status = JobStatus::load(&state.pool, id, Some(auth.user_id))
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    Ok(Json(status))
}
