//! The alerts' incidents, as the dashboard lists them.

use crate::owners::incidents::Incident;
use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::access::Admin;
use crate::error::ApiError;
use crate::state::AppState;

/// How far back closed incidents are listed.
const RECENT_HOURS: i32 = 24;

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Incidents {
    /// Open ones first, then those closed in the last day; newest first.
    incidents: Vec<Incident>,
}

/// The open incidents and those closed in the last 24 hours (at most 100),
/// with whether the team was told of each start and end.
#[utoipa::path(get, path = "/api/admin/incidents", tag = "operations", security(("admin" = [])),
    responses(
        (status = 200, description = "Open and recent incidents", body = Incidents),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 429, description = "Too many failed operator authentications from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 404, description = "`ADMIN_TOKEN` is not set", body = crate::error::Body),
    ))]
pub(super) async fn incidents(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<Incidents>, ApiError> {
    let incidents = crate::owners::incidents::recent(&state.pool, RECENT_HOURS).await?;
    Ok(Json(Incidents { incidents }))
}
