//! Who may call the operator endpoints: `ADMIN_TOKEN` as a bearer token,
//! or the dashboard's session cookie; signing in and out.

use std::time::SystemTime;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::admin_session::{self, ACTION_HEADER};
use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// A caller holding `ADMIN_TOKEN`, as a bearer token or through the
/// dashboard's session cookie.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Disabled endpoints do not exist, as far as anyone can tell.
        let expected = state.admin_token_hash.ok_or(ApiError::NotFound("route"))?;
        if let Some(given) = bearer_token(parts) {
            return if shared::tokens::matches(given, &expected) {
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
pub(super) struct SignIn {
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
pub(super) async fn sign_in(
    State(state): State<AppState>,
    JsonBody(form): JsonBody<SignIn>,
) -> Result<Response, ApiError> {
    let (Some(expected), Some(key)) = (state.admin_token_hash, &state.admin_session_key) else {
        return Err(ApiError::NotFound("route"));
    };
    if !shared::tokens::matches(form.token.trim(), &expected) {
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
pub(super) async fn sign_out(State(state): State<AppState>) -> Response {
    let clear = admin_session::set_cookie(None, state.secure_cookies);
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response()
}
