//! `GET /api/jobs/{id}` and `GET /api/me/jobs`: the statuses a frontend
//! polls. These are the hot paths, so each is one indexed query, answered
//! from the durable job records, with an `ETag` so an unchanged answer is a
//! bodiless 304; for one job or one page of them, a 304 this instance can
//! vouch for without asking the database ([`crate::job_versions`]).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use store::records::JobState;
use utoipa_axum::routes;
use uuid::Uuid;

use super::endpoints::{Endpoints, Limits};
use crate::auth::AuthUser;
use crate::conditional;
use crate::error::ApiError;
use crate::state::AppState;

mod versioned;

/// Routes of this module.
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    endpoints
        .add(routes!(job_status), Limits::JSON)
        .add(routes!(my_jobs), Limits::JSON)
}

/// A page of `/api/me/jobs` holds this many jobs unless `limit` says otherwise.
const DEFAULT_PAGE: i64 = 20;
/// The most a page may hold.
const MAX_PAGE: i64 = 100;

/// The status of one job as its owner sees it (operators see more, around it).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct JobStatus {
    id: Uuid,
    #[schema(example = "welcome-email")]
    name: String,
    state: JobState,
    attempts_made: i32,
    max_attempts: i32,
    /// 0 to 100.
    progress: i16,
    /// What the job produced, per job (e.g. `{"delivered_to": …}`).
    #[schema(value_type = Option<Object>, required)]
    result: Option<serde_json::Value>,
    /// Written for the end user; the internal story is for operators only.
    #[schema(required)]
    error: Option<JobErrorBody>,
    created_at: DateTime<Utc>,
    /// When a delayed job (a follow-up email) is due; `null` for a job
    /// that runs as soon as a worker is free.
    #[schema(required)]
    run_at: Option<DateTime<Utc>>,
    #[schema(required)]
    started_at: Option<DateTime<Utc>>,
    #[schema(required)]
    finished_at: Option<DateTime<Utc>>,
}

/// Why the job failed (or is being retried), for the end user.
#[derive(Serialize, utoipa::ToSchema)]
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

/// A `jobs` row as [`JobStatus`] needs it.
struct StatusRow {
    job_id: Uuid,
    queue: String,
    state: JobState,
    attempts_made: i32,
    max_attempts: i32,
    progress: i16,
    result: Option<serde_json::Value>,
    error_code: Option<String>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    run_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<StatusRow> for JobStatus {
    fn from(row: StatusRow) -> Self {
        Self {
            id: row.job_id,
            name: row.queue,
            state: row.state,
            attempts_made: row.attempts_made,
            max_attempts: row.max_attempts,
            progress: row.progress,
            result: row.result,
            error: JobErrorBody::from_columns(row.error_code, row.error),
            created_at: row.created_at,
            run_at: row.run_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        }
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
        let row = sqlx::query_as!(
            StatusRow,
            r#"select job_id, queue, state as "state: JobState", attempts_made, max_attempts,
                      progress, result, error_code, error, created_at, run_at, started_at, finished_at
               from jobs where job_id = $1 and ($2::uuid is null or user_id = $2)"#,
            id,
            owner,
        )
        .fetch_optional(pool)
        .await?;
        Ok(row.map(Self::from))
    }
}

/// The status of one of the caller's jobs. Poll it with `If-None-Match`:
/// an unchanged job answers 304 with no body.
#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs",
    params(("id" = uuid::Uuid, Path, description = "A job id from a signup or upload answer")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The job", body = JobStatus, headers(("ETag" = String))),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`"),
        (status = 401, description = "No valid token", body = crate::error::Body),
        (status = 404, description = "No such job, or someone else's", body = crate::error::Body),
    ))]
async fn job_status(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    // A malformed id cannot name any job: same answer as a missing one.
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("job"))?;
    let versions = &state.job_versions;
    if let Some(etag) = versions.unchanged(id, auth.user_id, &request) {
        return Ok(conditional::private_not_modified(etag));
    }
    let seen = versions.seen();
    let status = JobStatus::load(&state.pool, id, Some(auth.user_id))
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    let response = conditional::private_json(&request, &status);
    if let Some(etag) = response.headers().get(header::ETAG) {
        versions.remember(id, auth.user_id, etag, seen);
    }
    Ok(response)
}

/// `?limit=` and `?cursor=` of `/api/me/jobs`, as sent: checked by hand so a
/// wrong value gets a message that names it.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Jobs per page, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<uuid::Uuid>)]
    cursor: Option<String>,
}

/// One page of the caller's jobs, most recent first. `next_cursor` is
/// `null` on the last page; otherwise pass it as `?cursor=` for the next.
#[derive(Serialize, utoipa::ToSchema)]
struct JobPage {
    jobs: Vec<JobStatus>,
    #[schema(required)]
    next_cursor: Option<Uuid>,
}

/// The caller's jobs, newest first, in pages. The cursor is the last job of
/// the previous page (keyset pagination): pages neither skip nor repeat a
/// job when new ones arrive between requests.
#[utoipa::path(get, path = "/api/me/jobs", tag = "jobs",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of jobs, newest first", body = JobPage, headers(("ETag" = String))),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`"),
        (status = 401, description = "No valid token", body = crate::error::Body),
        (status = 422, description = "`limit` or `cursor` is invalid (named in `fields`)", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "my_jobs", skip_all, fields(user_id = %auth.user_id))]
async fn my_jobs(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(page): Query<PageQuery>,
    request: HeaderMap,
) -> Result<Response, ApiError> {
    let limit = match page.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|limit| (1..=MAX_PAGE).contains(limit))
            .ok_or_else(|| {
                ApiError::invalid_query(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_PAGE}"),
                )
            })?,
    };
    let cursor = page
        .cursor
        .as_deref()
        .map(Uuid::parse_str)
        .transpose()
        .map_err(|_| {
            ApiError::invalid_query("cursor", "must be a next_cursor this endpoint gave".into())
        })?;
    let versions = &state.job_versions;
    let query = (cursor, limit as u32);
    if let Some(etag) = versions.unchanged_list(auth.user_id, query, &request) {
        return Ok(conditional::private_not_modified(etag));
    }
    let seen = versions.seen();
    // One more than asked: whether it comes tells if there is a next page.
    let mut rows = sqlx::query_as!(
        StatusRow,
        r#"select job_id, queue, state as "state: JobState", attempts_made, max_attempts,
                  progress, result, error_code, error, created_at, run_at, started_at, finished_at
           from jobs
           where user_id = $1
             and ($2::uuid is null
                  or (created_at, job_id) < (select created_at, job_id from jobs
                                             where job_id = $2 and user_id = $1))
           order by created_at desc, job_id desc
           limit $3"#,
        auth.user_id,
        cursor,
        limit + 1,
    )
    .fetch_all(&state.pool)
    .await?;
    // Every job the answer depends on (the one past its end included).
    // An empty page after a cursor is not remembered: the cursor may be
    // made up or another's, and its own deletion is not told.
    let read: Vec<Uuid> = rows.iter().map(|row| row.job_id).collect();
    let rememberable = cursor.is_none() || !read.is_empty();
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more.then(|| rows.last().map(|row| row.job_id)).flatten();
    let body = JobPage {
        jobs: rows.into_iter().map(JobStatus::from).collect(),
        next_cursor,
    };
    let response = conditional::private_json(&request, &body);
    if let Some(etag) = response.headers().get(header::ETAG)
        && rememberable
    {
        versions.remember_list(auth.user_id, query, &read, etag, seen);
    }
    Ok(response)
}
