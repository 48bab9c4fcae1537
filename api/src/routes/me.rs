//! `GET /api/me`, `GET /api/me/onboarding.pdf` and `DELETE /api/me`: the
//! signed-in user's profile, the files that belong to them, and the way
//! out.
//!
//! Deletion answers at once ([`crate::accounts::deletion`]) with the
//! `account-deletion` job that removes the rest; the session that asked
//! can poll it until the account, and the session with it, is gone.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use store::subscriptions;
use store::subscriptions::Subscription;
use utoipa_axum::routes;
use uuid::Uuid;

use super::endpoints::{Endpoints, Limits};
use super::media::AvatarUrls;
use super::users::UserBody;
use crate::accounts::deletion;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::outbox::JobRef;
use crate::request_id::RequestId;
use crate::state::AppState;

/// `GET /api/me`, `GET /api/me/onboarding.pdf`, and `DELETE /api/me` (it
/// checks a password, so it is counted per client like a login).
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    endpoints
        .add(routes!(me), Limits::JSON)
        .add(routes!(delete_account), Limits::CREDENTIALS)
        .add(routes!(onboarding_pdf), Limits::JSON)
}

/// Under `/api/me`, the guide is reachable with its owner's token only:
/// there is no URL that names another user's file.
const ONBOARDING_PDF_PATH: &str = "/api/me/onboarding.pdf";

/// The profile. `avatar` is `null` until a photo's three sizes exist;
/// `onboarding_pdf_url` is `null` until the onboarding-pdf job has stored
/// the guide.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct MeResponse {
    #[serde(flatten)]
    user: UserBody,
    avatar: Option<AvatarUrls>,
    stripe_customer_id: Option<String>,
    onboarding_pdf_url: Option<String>,
    /// The plan as Stripe's latest event said; `null` without one.
    #[schema(required)]
    subscription: Option<Subscription>,
    /// Whether the user gets product mail (`PUT /api/me/preferences`).
    product_email: bool,
}

#[utoipa::path(get, path = "/api/me", tag = "account", security(("bearer" = [])),
    responses(
        (status = 200, description = "The signed-in user's profile", body = MeResponse),
        (status = 401, description = "No valid token", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "me", skip_all, fields(user_id = %auth.user_id))]
async fn me(State(state): State<AppState>, auth: AuthUser) -> Result<Json<MeResponse>, ApiError> {
    MeResponse::load(&state, auth.user_id)
        .await?
        // The token outlived its user (account deleted): the caller is nobody.
        .map(Json)
        .ok_or(ApiError::Unauthorized)
}

impl MeResponse {
    /// The profile of `user_id`; `None` once the account is gone. The live
    /// stream's `account` events carry the same body.
    pub(crate) async fn load(state: &AppState, user_id: Uuid) -> Result<Option<Self>, ApiError> {
        let Some(user) = UserBody::find(&state.pool, user_id).await? else {
            return Ok(None);
        };
        let Some(row) = sqlx::query!(
            r#"select stripe_customer_id, onboarding_pdf_key, avatar_photo_id,
                      product_email_unsubscribed_at is null as "product_email!"
               from users where user_id = $1"#,
            user_id,
        )
        .fetch_optional(&state.pool)
        .await?
        else {
            return Ok(None);
        };
        let subscription = subscriptions::current_of_user(&state.pool, user_id).await?;
        Ok(Some(Self {
            user,
            avatar: row
                .avatar_photo_id
                .map(|photo_id| AvatarUrls::new(&state.links.public_url, photo_id)),
            stripe_customer_id: row.stripe_customer_id,
            onboarding_pdf_url: row
                .onboarding_pdf_key
                .map(|_| format!("{}{ONBOARDING_PDF_PATH}", state.links.public_url)),
            subscription,
            product_email: row.product_email,
        }))
    }
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

#[derive(Deserialize, utoipa::ToSchema)]
struct DeleteForm {
    /// The account's password, asked again.
    password: String,
}

/// The clean-up the account's deletion is, to poll.
#[derive(Serialize, utoipa::ToSchema)]
struct DeleteAnswer {
    job: JobRef,
}

/// Deletes the account and everything in it: photos, the onboarding guide,
/// the Stripe customer, every session and job record. Answers at once; the
/// `account-deletion` job does the rest. Polling it with this session works
/// until the account is gone: then the session is gone too (401).
#[utoipa::path(delete, path = "/api/me", tag = "account", security(("bearer" = [])),
    request_body = DeleteForm,
    responses(
        (status = 202, description = "The account is being deleted; every other session has ended", body = DeleteAnswer),
        (status = 401, description = "No valid token (or the account is already being deleted)", body = crate::error::Body),
        (status = 403, description = "The password is wrong (`wrong_password`)", body = crate::error::Body),
        (status = 422, description = "`password` is missing or not text", body = crate::error::Body),
        (status = 429, description = "Too many attempts from this client, or failed passwords in this session", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
#[tracing::instrument(name = "delete_account", skip_all, fields(user_id = %auth.user_id))]
async fn delete_account(
    State(state): State<AppState>,
    auth: AuthUser,
    request: RequestId,
    JsonBody(form): JsonBody<DeleteForm>,
) -> Result<(StatusCode, Json<DeleteAnswer>), ApiError> {
    let job = deletion::delete_account(&state, &request, &auth, form.password).await?;
    Ok((StatusCode::ACCEPTED, Json(DeleteAnswer { job })))
}
