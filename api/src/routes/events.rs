//! `GET /api/me/events`: the signed-in user's live job status, as
//! Server-Sent Events ([`crate::events`] says how it is kept honest).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use utoipa_axum::routes;

use super::endpoints::{Endpoints, Limits};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::events::Refused;
use crate::events::stream::{self, Start};
use crate::state::AppState;

/// Routes of this module.
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    endpoints.add(routes!(events), Limits::JSON)
}

/// Seconds a client is asked to wait before trying again when no stream
/// can be opened here; it polls meanwhile.
const RETRY_AFTER_SECS: u64 = 5;

/// The caller's live job status: every change of one of their jobs is an
/// event `job` (the body of `GET /api/jobs/{id}`), every change of their
/// profile an event `account` (the body of `GET /api/me`). A first
/// connection starts with `ready`; a reconnect with `Last-Event-ID` starts
/// with what changed since (then `account` and `ready`), or with `reset`
/// when that is too old to replay (refetch, then carry on). Every event
/// has an `id:`; a comment comes every 15 s. Read it with `fetch` (the
/// token goes in the `Authorization` header, never in the URL).
#[utoipa::path(get, path = "/api/me/events", tag = "jobs",
    security(("bearer" = [])),
    params(("Last-Event-ID" = Option<String>, Header,
        description = "The `id` of the last event received, to resume after it")),
    responses(
        (status = 200, description = "A stream of events (`text/event-stream`), open until the client, a sign-out or the server ends it",
            content_type = "text/event-stream", body = String),
        (status = 401, description = "No valid token", body = crate::error::Body),
        (status = 429, description = "This account already has its limit of streams open here (`too_many_streams`)", body = crate::error::Body,
            headers(("Retry-After" = u64))),
        (status = 503, description = "No stream can be opened here now (`streams_unavailable`): poll, and retry after `Retry-After`", body = crate::error::Body,
            headers(("Retry-After" = u64))),
    ))]
#[tracing::instrument(name = "events", skip_all, fields(user_id = %auth.user_id))]
async fn events(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // A stream is only as good as the feed: while this instance does not
    // hear changes, its client polls instead.
    if !state.job_versions.is_live() {
        return Err(ApiError::StreamsUnavailable(RETRY_AFTER_SECS));
    }
    let registration =
        state
            .events
            .open(auth.user_id, auth.token)
            .map_err(|refused| match refused {
                Refused::PerUser(limit) => ApiError::TooManyStreams(limit),
                Refused::Full => ApiError::StreamsUnavailable(RETRY_AFTER_SECS),
            })?;
    // Checked again once registered: a feed lost in between ended the
    // streams registered then, not this one.
    if !state.job_versions.is_live() {
        return Err(ApiError::StreamsUnavailable(RETRY_AFTER_SECS));
    }
    let last = headers
        .get("last-event-id")
        .map(|value| value.to_str().unwrap_or("not text"));
    // The database's clock, not ours: cursors are compared with the
    // records' `updated_at`, and an api whose clock is ahead would hand out
    // a cursor past changes still to come.
    let now = sqlx::query_scalar!(r#"select now() as "now!""#)
        .fetch_one(&state.pool)
        .await?;
    let start = Start::from_last_event_id(last, now);
    let body = stream::open(&state, auth.user_id, start, now, registration).await?;
    let mut response = Response::new(body);
    let answer = response.headers_mut();
    answer.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    answer.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // nginx buffers proxied answers unless told not to, per answer.
    answer.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
