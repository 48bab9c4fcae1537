//! Product mail preferences: `PUT /api/me/preferences` for a signed-in
//! user, and `POST /api/email/unsubscribe?token=…`, the one-click link of
//! RFC 8058 that product mail carries in `List-Unsubscribe`.
//!
//! The link works without a login (that is the point of it): its token is
//! the user's id signed with `UNSUBSCRIBE_SECRET` (`store::unsubscribe`),
//! so it names one user and cannot be made for another. Only a `POST`
//! unsubscribes: a mail scanner that fetches links changes nothing. The
//! visible link in the email opens the web app's `/unsubscribe` page,
//! which posts the same token here. Transactional mail (links, notices) is
//! not affected by the preference.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use store::users;
use utoipa_axum::routes;

use super::endpoints::{Endpoints, Limits};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// Both routes.
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    endpoints
        .add(routes!(unsubscribe), Limits::JSON)
        .add(routes!(set_preferences), Limits::JSON)
}

/// The signed token of an unsubscribe link.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct UnsubscribeQuery {
    /// The `token` of the link in the email.
    token: String,
}

/// A user's mail preferences.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub(super) struct Preferences {
    /// Whether the user gets product mail (the follow-up email).
    /// Transactional mail always goes.
    pub product_email: bool,
}

/// Unsubscribes the link's user from product mail. Takes any body (mail
/// clients send `List-Unsubscribe=One-Click` as a form) and no login.
#[utoipa::path(post, path = "/api/email/unsubscribe", tag = "account",
    params(UnsubscribeQuery),
    responses(
        (status = 200, description = "Unsubscribed (or was already)", body = Preferences),
        (status = 400, description = "The token is not one we signed", body = crate::error::Body),
        (status = 404, description = "Product mail is off (`UNSUBSCRIBE_SECRET` is not set)", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "unsubscribe", skip_all, fields(user_id))]
async fn unsubscribe(
    State(state): State<AppState>,
    Query(query): Query<UnsubscribeQuery>,
) -> Result<Json<Preferences>, ApiError> {
    let key = state
        .unsubscribe
        .as_ref()
        .ok_or(ApiError::NotFound("unsubscribe link"))?;
    let user_id = key
        .verify(&query.token)
        .ok_or(ApiError::InvalidUnsubscribeLink)?;
    tracing::Span::current().record("user_id", tracing::field::display(user_id));
    // An account deleted since has nothing to unsubscribe: the same answer.
    users::set_product_email(&state.pool, user_id, false).await?;
    tracing::info!("unsubscribed from product email");
    Ok(Json(Preferences {
        product_email: false,
    }))
}

/// Sets the signed-in user's mail preferences.
#[utoipa::path(put, path = "/api/me/preferences", tag = "account", security(("bearer" = [])),
    request_body = Preferences,
    responses(
        (status = 200, description = "The preferences as saved", body = Preferences),
        (status = 401, description = "No valid token", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "set_preferences", skip_all, fields(user_id = %auth.user_id))]
async fn set_preferences(
    State(state): State<AppState>,
    auth: AuthUser,
    JsonBody(preferences): JsonBody<Preferences>,
) -> Result<Json<Preferences>, ApiError> {
    if !users::set_product_email(&state.pool, auth.user_id, preferences.product_email).await? {
        return Err(ApiError::Unauthorized);
    }
    Ok(Json(preferences))
}
