//! `GET /api/me` and `GET /api/me/onboarding.pdf`: the signed-in user's
//! profile and the files that belong to them.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use serde::Serialize;
use utoipa_axum::routes;

use super::endpoints::{Endpoints, Limits};
use super::media::AvatarUrls;
use super::users::UserBody;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /api/me` and `GET /api/me/onboarding.pdf`.
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    endpoints
        .add(routes!(me), Limits::JSON)
        .add(routes!(onboarding_pdf), Limits::JSON)
}

/// Under `/api/me`, the guide is reachable with its owner's token only:
/// there is no URL that names another user's file.
const ONBOARDING_PDF_PATH: &str = "/api/me/onboarding.pdf";

/// The profile. `avatar` is `null` until a photo's three sizes exist;
/// `onboarding_pdf_url` is `null` until the onboarding-pdf job has stored
/// the guide.
#[derive(Serialize, utoipa::ToSchema)]
struct MeResponse {
    #[serde(flatten)]
    user: UserBody,
    avatar: Option<AvatarUrls>,
    stripe_customer_id: Option<String>,
    onboarding_pdf_url: Option<String>,
}

#[utoipa::path(get, path = "/api/me", tag = "account", security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed-in user's profile", body = MeResponse),
        (status = 401, description = "No valid token", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "me", skip_all, fields(user_id = %auth.user_id))]
async fn me(State(state): State<AppState>, auth: AuthUser) -> Result<Json<MeResponse>, ApiError> {
    let user = UserBody::find(&state.pool, auth.user_id)
        .await?
        // The token outlived its user (account deleted): the caller is nobody.
        .ok_or(ApiError::Unauthorized)?;
    let row = sqlx::query!(
        "select stripe_customer_id, onboarding_pdf_key, avatar_photo_id
         from users where user_id = $1",
        auth.user_id,
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::Unauthorized)?;
    Ok(Json(MeResponse {
        user,
        avatar: row
            .avatar_photo_id
            .map(|photo_id| AvatarUrls::new(&state.public_url, photo_id)),
        stripe_customer_id: row.stripe_customer_id,
        onboarding_pdf_url: row
            .onboarding_pdf_key
            .map(|_| format!("{}{ONBOARDING_PDF_PATH}", state.public_url)),
    }))
}

/// Streams the user's onboarding guide from storage; 404 until it exists.
#[utoipa::path(get, path = "/api/me/onboarding.pdf", tag = "account", security(("bearer" = [])),
    responses(
        (status = 200, description = "The guide", content_type = "application/pdf", body = super::openapi::FileBytes),
        (status = 401, description = "No valid token", body = crate::error::Body),
        (status = 404, description = "Not written yet", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "onboarding_pdf", skip_all, fields(user_id = %auth.user_id))]
async fn onboarding_pdf(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Response, ApiError> {
    const NOT_READY: ApiError = ApiError::NotFound("onboarding guide");
    let key = sqlx::query_scalar!(
        "select onboarding_pdf_key from users where user_id = $1",
        auth.user_id,
    )
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::Unauthorized)?
    .ok_or(NOT_READY)?;
    let Some(file) = state.storage.get(&key).await? else {
        // Recorded but gone: someone deleted it; the job can render it again.
        tracing::error!(
            key,
            "the onboarding guide is recorded but missing from storage"
        );
        return Err(NOT_READY);
    };
    Ok(super::files::stream(
        file,
        "application/pdf".to_owned(),
        [
            (
                header::CONTENT_DISPOSITION,
                r#"inline; filename="onboarding.pdf""#,
            ),
            // Personal: no shared cache may keep it.
            (header::CACHE_CONTROL, "private, no-cache"),
        ],
    ))
}
