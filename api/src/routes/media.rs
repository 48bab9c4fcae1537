//! `GET /media/photos/{id}/{file}`: a photo's sizes (public) and its
//! original (its owner only).

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use media::{ImageFormat, Variant};
use serde::Serialize;
use storage::keys;
use store::photos;
use utoipa_axum::routes;
use uuid::Uuid;

use super::endpoints::{Endpoints, Limits};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

/// How long a signed S3 URL for a photo stays valid.
const SIGNED_URL_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// A photo's original and its sizes.
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    endpoints
        .add(routes!(serve_original), Limits::JSON)
        .add(routes!(serve), Limits::JSON)
}

/// Serves a resized square: public, like any avatar. They are encoded
/// afresh from pixels, so they carry no EXIF, XMP or IPTC. Keys are per
/// photo id and never rewritten with different content, so clients and
/// CDNs may keep them for a year.
#[utoipa::path(get, path = "/media/photos/{photo_id}/{file}", tag = "photos",
    params(
        ("photo_id" = uuid::Uuid, Path, description = "The photo's id"),
        ("file" = String, Path, description = "`large.jpg` (1200 px), `medium.jpg` (600 px) or `thumbnail.jpg` (150 px)"),
    ),
    responses(
        (status = 200, description = "The square JPEG, cacheable for a year", content_type = "image/jpeg", body = super::openapi::FileBytes),
        (status = 302, description = "With S3 storage: a signed URL of the file", headers(("Location" = String))),
        (status = 404, description = "No such photo or size", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "serve_photo", skip_all)]
async fn serve(
    State(state): State<AppState>,
    Path((photo_id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    const NOT_FOUND: ApiError = ApiError::NotFound("photo");
    // A malformed id cannot name any photo: same answer as a missing one.
    let photo_id = Uuid::parse_str(&photo_id).map_err(|_| NOT_FOUND)?;
    let variant = file
        .strip_suffix(".jpg")
        .and_then(Variant::from_name)
        .ok_or(NOT_FOUND)?;
    let key = keys::photo_variant(photo_id, variant);
    let content_type = ImageFormat::Jpeg.content_type().to_owned();
    // On S3 the client fetches the file from S3 itself, with a signed URL.
    if let Some(url) = state.storage.signed_url(&key, SIGNED_URL_TTL).await? {
        let headers = [
            (header::LOCATION, url),
            // Shorter than the signature lives, so a cached redirect works.
            (header::CACHE_CONTROL, "public, max-age=3000".to_owned()),
        ];
        return Ok((StatusCode::FOUND, headers).into_response());
    }
    let file = state.storage.get(&key).await?.ok_or(NOT_FOUND)?;
    Ok(super::files::stream(
        file,
        content_type,
        [
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
    ))
}

/// Serves the uploaded file as it came, to its owner only: a phone photo's
/// metadata (GPS position, camera serial, owner name) stays private. Anyone
/// else gets the same 404 as for a photo that does not exist, and no cache
/// but the owner's may keep it.
#[utoipa::path(get, path = "/media/photos/{photo_id}/original", tag = "photos", security(("bearer" = [])),
    params(("photo_id" = uuid::Uuid, Path, description = "The photo's id")),
    responses(
        (status = 200, description = "The file as uploaded, metadata included", content(
            (super::openapi::FileBytes = "image/jpeg"),
            (super::openapi::FileBytes = "image/png"),
            (super::openapi::FileBytes = "image/webp"),
        )),
        (status = 302, description = "With S3 storage: a short-lived signed URL", headers(("Location" = String))),
        (status = 401, description = "No valid token", body = crate::error::Body),
        (status = 404, description = "No such photo, or someone else's", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "serve_original", skip_all)]
async fn serve_original(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(photo_id): Path<String>,
) -> Result<Response, ApiError> {
    const NOT_FOUND: ApiError = ApiError::NotFound("photo");
    let photo_id = Uuid::parse_str(&photo_id).map_err(|_| NOT_FOUND)?;
    let content_type = photos::original_content_type(&state.pool, photo_id, auth.user_id)
        .await?
        .ok_or(NOT_FOUND)?;
    let key = keys::photo_original(photo_id);
    let private = "private, no-store";
    if let Some(url) = state.storage.signed_url(&key, ORIGINAL_URL_TTL).await? {
        return Ok((
            StatusCode::FOUND,
            [
                (header::LOCATION, url),
                (header::CACHE_CONTROL, private.to_owned()),
            ],
        )
            .into_response());
    }
    let file = state.storage.get(&key).await?.ok_or(NOT_FOUND)?;
    Ok(super::files::stream(
        file,
        content_type,
        [
            (header::CACHE_CONTROL, private),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
    ))
}

/// A signed link to an original is handed to its owner only and used at
/// once: it need not outlive a redirect.
const ORIGINAL_URL_TTL: std::time::Duration = std::time::Duration::from_secs(60);

/// Where a user's avatar is, in each size.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AvatarUrls {
    /// 1200 × 1200 JPEG.
    pub large: String,
    /// 600 × 600 JPEG.
    pub medium: String,
    /// 150 × 150 JPEG.
    pub thumbnail: String,
    /// The file as uploaded; its owner's token is needed.
    pub original: String,
}

impl AvatarUrls {
    /// The URLs of `photo_id`'s files under `public_url`.
    pub fn new(public_url: &str, photo_id: Uuid) -> Self {
        let base = format!("{public_url}/media/photos/{photo_id}");
        let variant = |variant: Variant| format!("{base}/{}.jpg", variant.name());
        Self {
            large: variant(Variant::Large),
            medium: variant(Variant::Medium),
            thumbnail: variant(Variant::Thumbnail),
            original: format!("{base}/original"),
        }
    }
}
