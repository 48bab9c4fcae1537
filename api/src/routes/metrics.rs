//! `GET /metrics`: Prometheus's text format. Open unless `METRICS_TOKEN` is
//! set (the api warns loudly at start when it is not); then only a scraper
//! sending it as a bearer token may read it. A scrape asks neither Redis
//! nor Postgres anything: the queue, outbox and Redis memory figures are
//! the alert monitor's.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::endpoints::{Endpoints, Limits};
use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /metrics`: not part of the JSON contract, so not in the document.
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    endpoints.undocumented("/metrics", get(metrics), Limits::JSON)
}

async fn metrics(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    if let Some(expected) = &state.metrics_token_hash
        && !bearer_token(&parts).is_some_and(|given| store::tokens::matches(given, expected))
    {
        return Err(ApiError::Unauthorized);
    }
    let text = crate::metrics::render(&state);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}
