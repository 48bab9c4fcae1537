//! Operator endpoints, enabled by setting `ADMIN_TOKEN`: queue views and
//! actions for the dashboard at `/admin` and for scripts. Callers present
//! `ADMIN_TOKEN` as a bearer token, or the dashboard's session cookie.

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, DurationRound as _, Utc};
use serde::{Deserialize, Serialize};
use shared::dead_letters::DeadLetters;
use shared::jobs::QueueName;
use shared::queue::QueueCounts;
use utoipa_axum::routes;
use uuid::Uuid;

use super::endpoints::{Endpoints, Limits};
use crate::admin_session::{self, ACTION_HEADER};
use crate::auth::{bearer_token, hash_token};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::routes::jobs::JobStatus;
use crate::state::AppState;

/// Queue views and actions.
/// `POST` and `DELETE /api/admin/session` (signing in and out are
/// credential endpoints, counted per client like login), and the queue
/// views and actions.
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    endpoints
        .add(routes!(sign_in), Limits::CREDENTIALS)
        .add(routes!(sign_out), Limits::CREDENTIALS)
        .add(routes!(queues), Limits::JSON)
        .add(routes!(failed), Limits::JSON)
        .add(routes!(retry_all), Limits::JSON)
        .add(routes!(remove), Limits::JSON)
        .add(routes!(retry), Limits::JSON)
        .add(routes!(pause), Limits::JSON)
        .add(routes!(resume), Limits::JSON)
        .add(routes!(job), Limits::JSON)
}

/// A caller holding `ADMIN_TOKEN`, as a bearer token or through the
/// dashboard's session cookie.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Disabled endpoints do not exist, as far as anyone can tell.
        let expected = state.admin_token_hash.ok_or(ApiError::NotFound("route"))?;
        if let Some(given) = bearer_token(parts) {
            return if hash_token(given) == expected {
                Ok(Self)
            } else {
                Err(ApiError::Unauthorized)
            };
        }
        let signed_in = state
            .admin_session_key
            .as_ref()
            .zip(admin_session::cookie(&parts.headers))
            .is_some_and(|(key, cookie)| key.verify(cookie, SystemTime::now()));
        if !signed_in {
            return Err(ApiError::Unauthorized);
        }
        // The browser sends cookies with requests other sites' pages cause;
        // an action must also carry our header, which those pages cannot add.
        let reads = matches!(parts.method, Method::GET | Method::HEAD);
        if !reads && !parts.headers.contains_key(ACTION_HEADER) {
            return Err(ApiError::Forbidden(
                "actions from the dashboard need the x-acme-admin header",
            ));
        }
        Ok(Self)
    }
}

/// `{"token": "<ADMIN_TOKEN>"}`.
#[derive(Deserialize, utoipa::ToSchema)]
struct SignIn {
    token: String,
}

/// Trades `ADMIN_TOKEN` for a session cookie, so the token need not live in
/// the page.
#[utoipa::path(post, path = "/api/admin/session", tag = "operations",
    request_body = SignIn,
    responses(
        (status = 204, description = "Signed in: a session cookie is set", headers(("Set-Cookie" = String))),
        (status = 401, description = "Not the operator token", body = crate::error::Body),
        (status = 404, description = "`ADMIN_TOKEN` is not set", body = crate::error::Body),
        (status = 429, description = "Too many attempts from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
async fn sign_in(
    State(state): State<AppState>,
    JsonBody(form): JsonBody<SignIn>,
) -> Result<Response, ApiError> {
    let (Some(expected), Some(key)) = (state.admin_token_hash, &state.admin_session_key) else {
        return Err(ApiError::NotFound("route"));
    };
    if hash_token(form.token.trim()) != expected {
        tracing::warn!("a dashboard sign-in with a wrong token");
        return Err(ApiError::Unauthorized);
    }
    let cookie = key.issue(SystemTime::now());
    let set = admin_session::set_cookie(Some(&cookie), state.secure_cookies);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, set)]).into_response())
}

/// Ends the dashboard session (the cookie is cleared).
#[utoipa::path(delete, path = "/api/admin/session", tag = "operations",
    responses((status = 204, description = "Signed out")))]
async fn sign_out(State(state): State<AppState>) -> Response {
    let clear = admin_session::set_cookie(None, state.secure_cookies);
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response()
}

#[derive(Serialize, utoipa::ToSchema)]
struct QueuesResponse {
    queues: Vec<QueueView>,
}

/// A queue as the dashboard shows it.
#[derive(Serialize, utoipa::ToSchema)]
struct QueueView {
    #[serde(flatten)]
    counts: QueueCounts,
    /// Workers take none of its jobs (`worker queue pause`).
    is_paused: bool,
    /// How long its oldest waiting job has waited; 0 when none waits.
    oldest_waiting_seconds: f64,
    /// Jobs that finished in each of the last 60 minutes, oldest first,
    /// from the job records.
    last_hour: Vec<Minute>,
}

/// One minute of finished jobs.
#[derive(Serialize, utoipa::ToSchema)]
struct Minute {
    minute: DateTime<Utc>,
    completed: i64,
    failed: i64,
}

/// Every queue: counts (the same as `worker counts`), whether it is paused,
/// its oldest waiting job, and the last hour minute by minute.
#[utoipa::path(get, path = "/api/admin/queues", tag = "operations", security(("admin" = [])),
    responses(
        (status = 200, description = "Every queue", body = QueuesResponse),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 404, description = "`ADMIN_TOKEN` is not set", body = crate::error::Body),
        (status = 503, description = "Redis is down", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
async fn queues(State(state): State<AppState>, _: Admin) -> Result<Json<QueuesResponse>, ApiError> {
    let redis = futures::future::try_join_all(QueueName::ALL.iter().map(|&queue| {
        let queues = &state.queues;
        async move {
            let counts = queues.counts(queue).await?;
            let paused = queues.is_paused(queue).await?;
            let oldest = queues.oldest_waiting_age(queue).await?;
            Ok::<_, shared::queue::QueueError>((counts, paused, oldest))
        }
    }))
    .await
    .map_err(|error| {
        ApiError::Unavailable(anyhow::Error::new(error).context("cannot read the queues"))
    })?;
    let minutes = sqlx::query!(
        r#"select queue, date_trunc('minute', finished_at) as "minute!",
                  count(*) filter (where state = 'completed') as "completed!",
                  count(*) filter (where state = 'failed') as "failed!"
           from jobs
           where state in ('completed', 'failed') and finished_at > now() - interval '1 hour'
           group by 1, 2"#,
    )
    .fetch_all(&state.pool)
    .await?;
    let now = Utc::now();
    let queues = redis
        .into_iter()
        .map(|(counts, is_paused, oldest)| {
            let name = counts.queue.as_str();
            let last_hour = (0..60)
                .rev()
                .map(|ago| {
                    let minute = (now - chrono::Duration::minutes(ago))
                        .duration_trunc(chrono::TimeDelta::minutes(1))
                        .unwrap_or(now);
                    let row = minutes
                        .iter()
                        .find(|row| row.queue == name && row.minute == minute);
                    Minute {
                        minute,
                        completed: row.map_or(0, |row| row.completed),
                        failed: row.map_or(0, |row| row.failed),
                    }
                })
                .collect();
            QueueView {
                counts,
                is_paused,
                oldest_waiting_seconds: oldest.map_or(0.0, |age| age.as_secs_f64()),
                last_hour,
            }
        })
        .collect();
    Ok(Json(QueuesResponse { queues }))
}

/// A queue named in a path: an unknown name is a 404 like any unknown route.
fn queue(name: &str) -> Result<QueueName, ApiError> {
    name.parse().map_err(|_| ApiError::NotFound("queue"))
}

#[derive(Serialize, utoipa::ToSchema)]
struct FailedJobs {
    jobs: Vec<FailedView>,
}

/// A failed job as operators see it: the full reason, attempts, data.
#[derive(Serialize, utoipa::ToSchema)]
struct FailedView {
    id: String,
    attempts_made: u32,
    failed_at: Option<DateTime<Utc>>,
    reason: String,
    #[schema(value_type = Object)]
    data: serde_json::Value,
}

fn unavailable(error: anyhow::Error) -> ApiError {
    ApiError::Unavailable(error.context("redis is unreachable"))
}

/// Failed jobs the dashboard lists: a week of a broken provider can leave
/// thousands, each with its data; the count is in the queue's row.
const FAILED_SHOWN: usize = 100;

/// The queue's failed jobs (its dead-letter set), the newest 100.
#[utoipa::path(get, path = "/api/admin/queues/{queue}/failed", tag = "operations", security(("admin" = [])),
    params(("queue" = String, Path, description = "A queue name, e.g. `welcome-email`")),
    responses(
        (status = 200, description = "The newest 100 failed jobs", body = FailedJobs),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 404, description = "No such queue", body = crate::error::Body),
    ))]
async fn failed(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Json<FailedJobs>, ApiError> {
    let queue = queue(&name)?;
    let jobs = DeadLetters::new(&state.queues, &state.pool)
        .list(queue, Some(FAILED_SHOWN))
        .await
        .map_err(unavailable)?;
    Ok(Json(FailedJobs {
        jobs: jobs
            .into_iter()
            .map(|job| FailedView {
                id: job.id,
                attempts_made: job.attempts_made,
                failed_at: job
                    .failed_at
                    .and_then(|ms| DateTime::from_timestamp_millis(i64::try_from(ms).ok()?)),
                reason: job.reason,
                data: job.data,
            })
            .collect(),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Retried {
    retried: usize,
}

/// Moves every failed job of the queue back to wait.
#[utoipa::path(post, path = "/api/admin/queues/{queue}/failed/retry", tag = "operations", security(("admin" = [])),
    params(("queue" = String, Path, description = "A queue name")),
    responses(
        (status = 200, description = "How many were retried", body = Retried),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 403, description = "A session without the x-acme-admin header", body = crate::error::Body),
        (status = 404, description = "No such queue", body = crate::error::Body),
    ))]
async fn retry_all(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Json<Retried>, ApiError> {
    let queue = queue(&name)?;
    let retried = DeadLetters::new(&state.queues, &state.pool)
        .retry_all(queue)
        .await
        .map_err(unavailable)?;
    tracing::info!(%queue, retried, "failed jobs retried from the dashboard");
    Ok(Json(Retried { retried }))
}

/// Moves one failed job back to wait.
#[utoipa::path(post, path = "/api/admin/queues/{queue}/failed/{id}/retry", tag = "operations", security(("admin" = [])),
    params(("queue" = String, Path, description = "A queue name"), ("id" = String, Path, description = "The job id")),
    responses(
        (status = 204, description = "Back in the queue"),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 403, description = "A session without the x-acme-admin header", body = crate::error::Body),
        (status = 404, description = "No such queue or failed job", body = crate::error::Body),
    ))]
async fn retry(
    State(state): State<AppState>,
    _: Admin,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let queue = queue(&name)?;
    let retried = DeadLetters::new(&state.queues, &state.pool)
        .retry(queue, &id)
        .await
        .map_err(unavailable)?;
    if !retried {
        return Err(ApiError::NotFound("failed job"));
    }
    tracing::info!(%queue, job.id = id, "failed job retried from the dashboard");
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes one failed job from Redis; its record stays `failed`.
#[utoipa::path(delete, path = "/api/admin/queues/{queue}/failed/{id}", tag = "operations", security(("admin" = [])),
    params(("queue" = String, Path, description = "A queue name"), ("id" = String, Path, description = "The job id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 403, description = "A session without the x-acme-admin header", body = crate::error::Body),
        (status = 404, description = "No such queue or failed job", body = crate::error::Body),
    ))]
async fn remove(
    State(state): State<AppState>,
    _: Admin,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let queue = queue(&name)?;
    let removed = DeadLetters::new(&state.queues, &state.pool)
        .remove(queue, &id)
        .await
        .map_err(unavailable)?;
    if !removed {
        return Err(ApiError::NotFound("failed job"));
    }
    tracing::info!(%queue, job.id = id, "failed job removed from the dashboard");
    Ok(StatusCode::NO_CONTENT)
}

/// Stops every worker from taking the queue's jobs.
#[utoipa::path(post, path = "/api/admin/queues/{queue}/pause", tag = "operations", security(("admin" = [])),
    params(("queue" = String, Path, description = "A queue name")),
    responses(
        (status = 204, description = "Paused"),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 403, description = "A session without the x-acme-admin header", body = crate::error::Body),
        (status = 404, description = "No such queue", body = crate::error::Body),
    ))]
async fn pause(
    state: State<AppState>,
    admin: Admin,
    name: Path<String>,
) -> Result<StatusCode, ApiError> {
    set_paused(state, admin, name, true).await
}

/// Lets workers take the queue's jobs again.
#[utoipa::path(post, path = "/api/admin/queues/{queue}/resume", tag = "operations", security(("admin" = [])),
    params(("queue" = String, Path, description = "A queue name")),
    responses(
        (status = 204, description = "Resumed"),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 403, description = "A session without the x-acme-admin header", body = crate::error::Body),
        (status = 404, description = "No such queue", body = crate::error::Body),
    ))]
async fn resume(
    state: State<AppState>,
    admin: Admin,
    name: Path<String>,
) -> Result<StatusCode, ApiError> {
    set_paused(state, admin, name, false).await
}

async fn set_paused(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
    paused: bool,
) -> Result<StatusCode, ApiError> {
    let queue = queue(&name)?;
    state
        .queues
        .set_paused(queue, paused)
        .await
        .map_err(|error| unavailable(error.into()))?;
    tracing::info!(%queue, paused, "queue paused or resumed from the dashboard");
    Ok(StatusCode::NO_CONTENT)
}

/// A job record as operators see it: what its owner sees, plus whose it
/// is, its data, the internal error (`error_detail`: provider replies,
/// paths, the whole chain), and BullMQ's own view of the job.
#[derive(Serialize, utoipa::ToSchema)]
struct AdminJob {
    #[serde(flatten)]
    status: JobStatus,
    user_id: Uuid,
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
    failed_reason: Option<String>,
    /// A number (0–100) from our jobs; other producers may set any JSON.
    #[schema(value_type = Option<serde_json::Value>)]
    progress: Option<serde_json::Value>,
}

/// Any user's job record, by id, beside BullMQ's state of the same job.
#[utoipa::path(get, path = "/api/admin/jobs/{id}", tag = "operations", security(("admin" = [])),
    params(("id" = uuid::Uuid, Path, description = "The job id")),
    responses(
        (status = 200, description = "The record with its internal fields and BullMQ's view", body = AdminJob),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
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
        Some(BullmqView {
            state: format!("{job_state:?}").to_lowercase(),
            attempts_made: job.attempts_made(),
            failed_reason: Some(job.failed_reason().to_owned()).filter(|reason| !reason.is_empty()),
            progress: serde_json::to_value(job.progress()).ok(),
        })
    };
    tokio::time::timeout(Duration::from_secs(2), lookup)
        .await
        .ok()
        .flatten()
}
