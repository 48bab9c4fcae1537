//! `POST /api/login` and `GET /api/me`.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::UserBody;
use crate::auth::{AuthUser, issue_token, verify_password};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// `POST /api/login`: a credential endpoint, rate limited by the caller.
pub fn login_router() -> Router<AppState> {
    Router::new().route("/api/login", post(login))
}

/// `GET /api/me`.
pub fn profile_router() -> Router<AppState> {
    Router::new().route("/api/me", get(me))
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

#[derive(Serialize)]
struct LoginResponse {
    user: UserBody,
    token: String,
}

#[tracing::instrument(name = "login", skip_all)]
async fn login(
    State(state): State<AppState>,
    JsonBody(form): JsonBody<LoginForm>,
) -> Result<Json<LoginResponse>, ApiError> {
    let user = sqlx::query!(
        "select user_id, email, name, created_at, password_hash
         from users where lower(email) = lower($1)",
        form.email.trim(),
    )
    .fetch_optional(&state.pool)
    .await?;
    let stored_hash = user.as_ref().map(|user| user.password_hash.clone());
    if !verify_password(form.password, stored_hash).await? {
        return Err(ApiError::InvalidCredentials);
    }
    let user = user.ok_or(ApiError::InvalidCredentials)?;
    let token = issue_token(&state.pool, user.user_id).await?;
    Ok(Json(LoginResponse {
        user: UserBody {
            id: user.user_id,
            email: user.email,
            name: user.name,
            created_at: user.created_at,
        },
        token,
    }))
}

/// The profile. `avatar` and `onboarding_pdf_url` are part of the v1
/// contract; they stay `null` until the jobs that fill them exist.
#[derive(Serialize)]
struct MeResponse {
    #[serde(flatten)]
    user: UserBody,
    avatar: Option<serde_json::Value>,
    stripe_customer_id: Option<String>,
    onboarding_pdf_url: Option<String>,
}

#[tracing::instrument(name = "me", skip_all, fields(user_id = %auth.user_id))]
async fn me(State(state): State<AppState>, auth: AuthUser) -> Result<Json<MeResponse>, ApiError> {
    let row = sqlx::query!(
        "select user_id, email, name, created_at, stripe_customer_id from users where user_id = $1",
        auth.user_id,
    )
    .fetch_optional(&state.pool)
    .await?
    // The token outlived its user (account deleted): the caller is nobody.
    .ok_or(ApiError::Unauthorized)?;
    Ok(Json(MeResponse {
        user: UserBody {
            id: row.user_id,
            email: row.email,
            name: row.name,
            created_at: row.created_at,
        },
        avatar: None,
        stripe_customer_id: row.stripe_customer_id,
        onboarding_pdf_url: None,
    }))
}
