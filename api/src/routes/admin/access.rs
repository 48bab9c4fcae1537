//! Who may call the operator endpoints: `ADMIN_TOKEN` as a bearer token,
//! or the dashboard's session cookie; signing in and out; the audit log.
//!
//! Every check is constant-time, and failures are counted per client:
//! past [`crate::state`]'s limit, that client is refused everything for
//! the window, right token or not. A failure is logged once per client per
//! window, so a guessing run is one line, not thousands.

use std::net::{IpAddr, SocketAddr};

use crate::owners::admin::AuditEntry;
use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use store::tokens;
use store::tokens::TokenHash;

use crate::admin_session::{self, ACTION_HEADER};
use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::rate_limit::{ClientKey, client_of};
use crate::state::AppState;

/// A caller holding `ADMIN_TOKEN`, as a bearer token or through a live
/// dashboard session; says who, for the audit log.
pub struct Admin {
    /// `token`, or `session <first 8 hex of its hash>`.
    actor: String,
    client: IpAddr,
    /// The session's hash, for signing it out.
    session: Option<TokenHash>,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Disabled endpoints do not exist, as far as anyone can tell.
        let expected = state.admin_token_hash.ok_or(ApiError::NotFound("route"))?;
        let client = client(parts, state);
        not_blocked(state, client).await?;
        if let Some(given) = bearer_token(parts) {
            if !tokens::matches(given, &expected) {
                return Err(failed(state, client, "a wrong admin token").await);
            }
            return Ok(Self {
                actor: "token".to_owned(),
                client,
                session: None,
            });
        }
        // No credentials at all is a visit, not a guess: not counted.
        let cookie = admin_session::cookie(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let session = tokens::hash(cookie);
        let opened_with = crate::owners::admin::session_token(&state.pool, &session).await?;
        if !opened_with.is_some_and(|token| tokens::same(&token, &expected)) {
            return Err(failed(state, client, "an ended or unknown admin session").await);
        }
        // The browser sends cookies with requests other sites' pages cause;
        // an action must also carry our header, which those pages cannot add.
        let reads = matches!(parts.method, Method::GET | Method::HEAD);
        if !reads && !parts.headers.contains_key(ACTION_HEADER) {
            return Err(ApiError::Forbidden(
                "actions from the dashboard need the x-acme-admin header",
            ));
        }
        Ok(Self {
            actor: format!("session {}", hex::encode(&session[..4])),
            client,
            session: Some(session),
        })
    }
}

impl Admin {
    /// Records `action` (on `queue`'s `job_id`, with `detail`) in the audit
    /// log. The action has happened: a log that cannot be written is an
    /// error in our logs, not a failed action.
    pub(super) async fn audit(
        &self,
        state: &AppState,
        action: &str,
        queue: Option<&str>,
        job_id: Option<&str>,
        detail: Option<String>,
    ) {
        let entry = AuditEntry {
            at: chrono::Utc::now(),
            actor: self.actor.clone(),
            client: self.client.to_string(),
            action: action.to_owned(),
            queue: queue.map(str::to_owned),
            job_id: job_id.map(str::to_owned),
            detail,
        };
        tracing::info!(actor = %entry.actor, client = %entry.client, action, queue, job_id, "operator action");
        if let Err(error) = crate::owners::admin::record(&state.pool, &entry).await {
            tracing::error!(%error, action, "could not write the audit log");
        }
    }
}

fn client(parts: &Parts, state: &AppState) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(peer)| peer.ip());
    client_of(
        &parts.headers,
        state.auth_limit.client_ip_header.as_ref(),
        peer,
    )
}

/// 429 while `client` is over its failures.
async fn not_blocked(state: &AppState, client: IpAddr) -> Result<(), ApiError> {
    state
        .admin_failures
        .peek(ClientKey::from(client))
        .await
        .map_err(|wait| ApiError::RateLimited(wait.as_secs().max(1)))
}

/// Counts a failed authentication of `client` and says so once per window.
async fn failed(state: &AppState, client: IpAddr, what: &str) -> ApiError {
    match state.admin_failures.record(ClientKey::from(client)).await {
        Ok(1) => {
            tracing::warn!(%client, "{what}: operator access refused (further failures from this client are counted, not logged, until its window ends)");
            ApiError::Unauthorized
        }
        Ok(_) => ApiError::Unauthorized,
        Err(wait) => ApiError::RateLimited(wait.as_secs().max(1)),
    }
}

/// `{"token": "<ADMIN_TOKEN>"}`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct SignIn {
    token: String,
}

/// Trades `ADMIN_TOKEN` for a session cookie, so the token need not live in
/// the page. Wrong tokens count against the client like any admin failure.
#[utoipa::path(post, path = "/api/admin/session", tag = "operations",
    request_body = SignIn,
    responses(
        (status = 204, description = "Signed in: a session cookie is set", headers(("Set-Cookie" = String))),
        (status = 401, description = "Not the operator token", body = crate::error::Body),
        (status = 404, description = "`ADMIN_TOKEN` is not set", body = crate::error::Body),
    ))]
pub(super) async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    JsonBody(form): JsonBody<SignIn>,
) -> Result<Response, ApiError> {
    let expected = state.admin_token_hash.ok_or(ApiError::NotFound("route"))?;
    let client = client_of(
        &headers,
        state.auth_limit.client_ip_header.as_ref(),
        peer.ip(),
    );
    not_blocked(&state, client).await?;
    if !tokens::matches(form.token.trim(), &expected) {
        return Err(failed(&state, client, "a dashboard sign-in with a wrong token").await);
    }
    let (cookie, session) = tokens::mint().map_err(|error| ApiError::Internal(error.into()))?;
    crate::owners::admin::open_session(
        &state.pool,
        &session,
        &expected,
        &client.to_string(),
        admin_session::LIFETIME,
    )
    .await?;
    let admin = Admin {
        actor: format!("session {}", hex::encode(&session[..4])),
        client,
        session: Some(session),
    };
    admin.audit(&state, "sign_in", None, None, None).await;
    let set = admin_session::set_cookie(Some(&cookie), state.secure_cookies);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, set)]).into_response())
}

/// Ends this dashboard session on the server (the cookie stops working
/// everywhere, even if it was copied) and clears the cookie.
#[utoipa::path(delete, path = "/api/admin/session", tag = "operations",
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 429, description = "Too many failed operator authentications from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 404, description = "`ADMIN_TOKEN` is not set", body = crate::error::Body),
    ))]
pub(super) async fn sign_out(
    State(state): State<AppState>,
    admin: Admin,
) -> Result<Response, ApiError> {
    if let Some(session) = &admin.session {
        crate::owners::admin::end_session(&state.pool, session).await?;
        admin.audit(&state, "sign_out", None, None, None).await;
    }
    let clear = admin_session::set_cookie(None, state.secure_cookies);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, clear)]).into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct SignedOut {
    /// Sessions ended, the caller's included.
    ended: u64,
}

/// Ends every dashboard session, on every instance: after a cookie may have
/// leaked, or when an operator leaves.
#[utoipa::path(delete, path = "/api/admin/sessions", tag = "operations", security(("admin" = [])),
    responses(
        (status = 200, description = "Every session ended", body = SignedOut),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 429, description = "Too many failed operator authentications from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 404, description = "`ADMIN_TOKEN` is not set", body = crate::error::Body),
    ))]
pub(super) async fn sign_out_everyone(
    State(state): State<AppState>,
    admin: Admin,
) -> Result<Response, ApiError> {
    let ended = crate::owners::admin::end_every_session(&state.pool).await?;
    admin
        .audit(
            &state,
            "sign_out_everyone",
            None,
            None,
            Some(format!("{ended} sessions")),
        )
        .await;
    let clear = admin_session::set_cookie(None, state.secure_cookies);
    Ok((
        StatusCode::OK,
        [(header::SET_COOKIE, clear)],
        Json(SignedOut { ended }),
    )
        .into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Audit {
    /// Newest first.
    entries: Vec<AuditEntry>,
}

/// The latest 100 operator actions: who, what, when, from where.
#[utoipa::path(get, path = "/api/admin/audit", tag = "operations", security(("admin" = [])),
    responses(
        (status = 200, description = "The latest actions", body = Audit),
        (status = 401, description = "Not the operator token or session", body = crate::error::Body),
        (status = 429, description = "Too many failed operator authentications from this client", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 404, description = "`ADMIN_TOKEN` is not set", body = crate::error::Body),
    ))]
pub(super) async fn audit(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<Audit>, ApiError> {
    let entries = crate::owners::admin::recent(&state.pool, 100).await?;
    Ok(Json(Audit { entries }))
}
