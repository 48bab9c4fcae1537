//! Queue views and actions: counts, the dead-letter sets, retries, pauses.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use catalogue::QueueName;
use chrono::{DateTime, DurationRound as _, Utc};
use platform::config::Provider;
use queue::dead_letters::DeadLetters;
use queue::{BudgetUse, QueueCounts};
use serde::{Deserialize, Serialize};

use super::access::Admin;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct QueuesResponse {
    queues: Vec<QueueView>,
    /// Each provider's rate budget, shared by every queue and worker that
    /// calls it, its use in the current window and any hold from its 429.
    providers: Vec<BudgetUse>,
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
    /// Workers consuming it now; 0 with jobs waiting is an incident.
    consumers: usize,
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
/// its oldest waiting job, its consumers, and the last hour minute by
/// minute; and every provider's rate budget and its use.
#[utoipa::path(get, path = "/api/admin/queues", tag = "operations", security(("admin" = [])),
    responses(
        (status = 200, description = "Every queue", body = QueuesResponse),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 429, description = "Too many failed operator authentications from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 404, description = "`ADMIN_TOKEN` is not set", body = crate::error::Body),
        (status = 503, description = "Redis is down", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
pub(super) async fn queues(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<QueuesResponse>, ApiError> {
    let redis = futures::future::try_join_all(QueueName::ALL.iter().map(|&queue| {
        let queues = &state.queues;
        async move {
            let counts = queues.counts(queue).await?;
            let paused = queues.is_paused(queue).await?;
            let oldest = queues.oldest_waiting_age(queue).await?;
            let consumers = queues.consumers(queue).await?;
            Ok::<_, queue::QueueError>((counts, paused, oldest, consumers))
        }
    }))
    .await
    .map_err(|error| {
        ApiError::Unavailable(anyhow::Error::new(error).context("cannot read the queues"))
    })?;
    let providers = futures::future::try_join_all(Provider::ALL.iter().map(|&provider| {
        state
            .queues
            .budget_use(provider, state.providers.budget(provider))
    }))
    .await
    .map_err(|error| {
        ApiError::Unavailable(anyhow::Error::new(error).context("cannot read the budgets"))
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
        .map(|(counts, is_paused, oldest, consumers)| {
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
                consumers,
                last_hour,
            }
        })
        .collect();
    Ok(Json(QueuesResponse { queues, providers }))
}

/// A queue named in a path: an unknown name is a 404 like any unknown route.
fn queue(name: &str) -> Result<QueueName, ApiError> {
    name.parse().map_err(|_| ApiError::NotFound("queue"))
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct FailedJobs {
    /// This page, newest first.
    jobs: Vec<FailedView>,
    /// How many newer ones come before this page.
    offset: usize,
    /// Every failed job of the queue.
    total: u64,
}

/// Which page of failed jobs: `?offset=100&limit=50`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct Page {
    /// Newer jobs to skip (default 0).
    #[serde(default)]
    offset: usize,
    /// Jobs on the page, 1 to 100 (default 50).
    limit: Option<usize>,
}

/// A failed job as operators see it: the full reason, attempts, data.
#[derive(Serialize, utoipa::ToSchema)]
struct FailedView {
    id: String,
    attempts_made: u32,
    #[schema(required)]
    failed_at: Option<DateTime<Utc>>,
    reason: String,
    #[schema(value_type = Object)]
    data: serde_json::Value,
}

fn unavailable(error: anyhow::Error) -> ApiError {
    ApiError::Unavailable(error.context("redis is unreachable"))
}

/// Failed jobs on one page: a week of a broken provider can leave
/// thousands, each with its data.
const PAGE_MAX: usize = 100;
const PAGE_DEFAULT: usize = 50;

/// The queue's failed jobs (its dead-letter set), newest first, a page at
/// a time.
#[utoipa::path(get, path = "/api/admin/queues/{queue}/failed", tag = "operations", security(("admin" = [])),
    params(("queue" = String, Path, description = "A queue name, e.g. `welcome-email`"), Page),
    responses(
        (status = 200, description = "A page of failed jobs, and how many there are", body = FailedJobs),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 429, description = "Too many failed operator authentications from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 404, description = "No such queue", body = crate::error::Body),
    ))]
pub(super) async fn failed(
    State(state): State<AppState>,
    _: Admin,
    Path(name): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<FailedJobs>, ApiError> {
    let queue = queue(&name)?;
    let take = page.limit.unwrap_or(PAGE_DEFAULT).clamp(1, PAGE_MAX);
    let dead_letters = DeadLetters::new(&state.queues, &state.pool);
    let (jobs, counts) = tokio::join!(
        dead_letters.page(queue, page.offset, take),
        state.queues.counts(queue),
    );
    let jobs = jobs.map_err(unavailable)?;
    let total = counts.map_err(|error| unavailable(error.into()))?.failed;
    Ok(Json(FailedJobs {
        offset: page.offset,
        total,
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
pub(super) struct Retried {
    retried: usize,
}

/// Moves every failed job of the queue back to wait.
#[utoipa::path(post, path = "/api/admin/queues/{queue}/failed/retry", tag = "operations", security(("admin" = [])),
    params(("queue" = String, Path, description = "A queue name")),
    responses(
        (status = 200, description = "How many were retried", body = Retried),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 429, description = "Too many failed operator authentications from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 403, description = "A session without the x-acme-admin header", body = crate::error::Body),
        (status = 404, description = "No such queue", body = crate::error::Body),
    ))]
pub(super) async fn retry_all(
    State(state): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
) -> Result<Json<Retried>, ApiError> {
    let queue = queue(&name)?;
    let retried = DeadLetters::new(&state.queues, &state.pool)
        .retry_all(queue)
        .await
        .map_err(unavailable)?;
    let detail = format!("{retried} jobs");
    admin
        .audit(
            &state,
            "retry_all",
            Some(queue.as_str()),
            None,
            Some(detail),
        )
        .await;
    Ok(Json(Retried { retried }))
}

/// Moves one failed job back to wait.
#[utoipa::path(post, path = "/api/admin/queues/{queue}/failed/{id}/retry", tag = "operations", security(("admin" = [])),
    params(("queue" = String, Path, description = "A queue name"), ("id" = String, Path, description = "The job id")),
    responses(
        (status = 204, description = "Back in the queue"),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 429, description = "Too many failed operator authentications from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 403, description = "A session without the x-acme-admin header", body = crate::error::Body),
        (status = 404, description = "No such queue or failed job", body = crate::error::Body),
    ))]
pub(super) async fn retry(
    State(state): State<AppState>,
    admin: Admin,
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
    admin
        .audit(&state, "retry", Some(queue.as_str()), Some(&id), None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes one failed job from Redis; its record stays `failed`.
#[utoipa::path(delete, path = "/api/admin/queues/{queue}/failed/{id}", tag = "operations", security(("admin" = [])),
    params(("queue" = String, Path, description = "A queue name"), ("id" = String, Path, description = "The job id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 429, description = "Too many failed operator authentications from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 403, description = "A session without the x-acme-admin header", body = crate::error::Body),
        (status = 404, description = "No such queue or failed job", body = crate::error::Body),
    ))]
pub(super) async fn remove(
    State(state): State<AppState>,
    admin: Admin,
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
    admin
        .audit(&state, "remove", Some(queue.as_str()), Some(&id), None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops every worker from taking the queue's jobs.
#[utoipa::path(post, path = "/api/admin/queues/{queue}/pause", tag = "operations", security(("admin" = [])),
    params(("queue" = String, Path, description = "A queue name")),
    responses(
        (status = 204, description = "Paused"),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 429, description = "Too many failed operator authentications from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 403, description = "A session without the x-acme-admin header", body = crate::error::Body),
        (status = 404, description = "No such queue", body = crate::error::Body),
    ))]
pub(super) async fn pause(
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
        (status = 429, description = "Too many failed operator authentications from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 403, description = "A session without the x-acme-admin header", body = crate::error::Body),
        (status = 404, description = "No such queue", body = crate::error::Body),
    ))]
pub(super) async fn resume(
    state: State<AppState>,
    admin: Admin,
    name: Path<String>,
) -> Result<StatusCode, ApiError> {
    set_paused(state, admin, name, false).await
}

pub(super) async fn set_paused(
    State(state): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
    paused: bool,
) -> Result<StatusCode, ApiError> {
    let queue = queue(&name)?;
    state
        .queues
        .set_paused(queue, paused)
        .await
        .map_err(|error| unavailable(error.into()))?;
    let action = if paused { "pause" } else { "resume" };
    admin
        .audit(&state, action, Some(queue.as_str()), None, None)
        .await;
    Ok(StatusCode::NO_CONTENT)
}
