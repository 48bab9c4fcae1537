//! Operator endpoints, enabled by setting `ADMIN_TOKEN`.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use shared::jobs::QueueName;
use shared::queue::QueueCounts;

use crate::auth::{bearer_token, hash_token};
use crate::error::ApiError;
use crate::state::AppState;

/// Routes of this module.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/admin/queues", get(queues))
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
