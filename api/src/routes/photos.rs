//! `POST /api/photos` (upload) and `GET /media/photos/{id}/{file}` (serving).
//!
//! An upload is spooled to disk as it arrives: memory holds one chunk, not
//! the photo. The format is sniffed from the first bytes, and the size in
//! pixels read from the header when it is there, so a file we would refuse
//! anyway is refused before it is stored.
//!
//! Limits: uploads in progress per instance (503), uploads per account per
//! hour (429) and bytes stored per account (403 `quota_exceeded`). The
//! account limits are checked when the upload reserves its photo row, under
//! a lock on the user's row, so they hold across concurrent requests and api
//! instances; the quota is checked again when the upload commits.

use crate::outbox;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::{Bytes, BytesMut};
use media::{ImageFormat, Variant, sniff};
use serde::Serialize;
use shared::jobs::ImageResize;
use shared::storage::{Upload, keys};
use uuid::Uuid;

use super::jobs::JobRef;
use crate::auth::AuthUser;
use crate::error::{ApiError, LogOnce};
use crate::request_id::RequestId;
use crate::state::AppState;

/// Enough of a file to find its format and, for nearly every JPEG (whose
/// size comes after its EXIF block), its dimensions.
const HEAD_BYTES: usize = 64 * 1024;
/// How long a signed S3 URL for a photo stays valid.
const SIGNED_URL_TTL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Room for the multipart framing around the photo itself.
pub const FRAMING_BYTES: u64 = 64 * 1024;

/// Routes of this module; uploads may be up to `max_bytes`.
pub fn router(max_bytes: u64) -> Router<AppState> {
    let body_limit = usize::try_from(max_bytes + FRAMING_BYTES).unwrap_or(usize::MAX);
    Router::new()
        .route(
            "/api/photos",
            post(upload).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/media/photos/{photo_id}/original", get(serve_original))
        .route("/media/photos/{photo_id}/{file}", get(serve))
}

#[derive(Serialize, utoipa::ToSchema)]
struct UploadResponse {
    photo: PhotoRef,
    job: JobRef,
}

#[derive(Serialize, utoipa::ToSchema)]
struct PhotoRef {
    id: Uuid,
    state: &'static str,
}

/// Stores the photo and starts its image-resize job; the avatar changes
/// when the job completes.
#[utoipa::path(post, path = "/api/photos", tag = "photos", security(("bearer" = [])),
    request_body(content = PhotoUpload, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Stored; its three sizes are being made", body = UploadResponse),
        (status = 400, description = "A malformed multipart body", body = crate::error::Body),
        (status = 401, description = "No valid token", body = crate::error::Body),
        (status = 403, description = "The account's storage quota is used up", body = crate::error::Body),
        (status = 408, description = "The body came slower than the minimum pace", body = crate::error::Body),
        (status = 413, description = "Over `PHOTO_MAX_BYTES`", body = crate::error::Body),
        (status = 415, description = "Not JPEG, PNG or WebP, or not multipart", body = crate::error::Body),
        (status = 422, description = "No `photo` field, too many pixels, or too costly to decode", body = crate::error::Body),
        (status = 429, description = "Past the hourly upload limit of the account", body = crate::error::Body, headers(("Retry-After" = u64))),
        (status = 503, description = "At capacity or a dependency is down", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
#[tracing::instrument(name = "upload_photo", skip_all, fields(user_id = %auth.user_id, photo_id = tracing::field::Empty))]
async fn upload(
    State(state): State<AppState>,
    auth: AuthUser,
    request: RequestId,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let max_bytes = state.photo_max_bytes;
    accept(state, auth, request, multipart)
        .await
        .map_err(|error| match error {
            // Our count and the route's body limit both end here: name the limit.
            ApiError::PayloadTooLarge => ApiError::PhotoTooLarge(max_bytes),
            other => other,
        })
}

async fn accept(
    state: AppState,
    auth: AuthUser,
    request: RequestId,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    // Held until the answer: spool files and transfers per instance are bounded.
    let _slot = state
        .upload_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            static FULL: LogOnce = LogOnce::new();
            if FULL.due() {
                tracing::warn!("the upload limit of this instance is reached; answering 503");
            }
            ApiError::Overloaded(5)
        })?;
    let mut multipart = multipart.map_err(|_| {
        ApiError::UnsupportedMediaType(
            "send the photo as multipart/form-data in a field named `photo`".into(),
        )
    })?;
    let mut field = loop {
        match multipart.next_field().await.map_err(malformed)? {
            Some(field) if field.name() == Some("photo") => break field,
            Some(_) => continue,
            None => {
                return Err(ApiError::Validation(
                    [("photo", "is required".to_owned())].into(),
                ));
            }
        }
    };

    let head = read_head(&mut field).await?;
    let format = sniff(&head).ok_or_else(|| {
        ApiError::UnsupportedMediaType("the photo must be a JPEG, PNG or WebP image".into())
    })?;
    // Judged on the first HEAD_BYTES whatever the chunks brought, so the
    // answer does not depend on how the client's bytes were split.
    if let Some(header) = media::header(&head[..head.len().min(HEAD_BYTES)]) {
        check_decode_cost(&state, &header)?;
    }

    let photo_id = Uuid::now_v7();
    tracing::Span::current().record("photo_id", tracing::field::display(photo_id));
    let quota_left = reserve(&state, auth.user_id, photo_id, format).await?;
    let reservation = Reservation(Some((state.pool.clone(), photo_id)));
    let limit = Limit {
        max_bytes: state.photo_max_bytes,
        quota_left,
    };
    let photo = NewPhoto {
        id: photo_id,
        owner: auth.user_id,
        request: &request,
    };
    let record = match store_and_commit(&state, &photo, format, head, &mut field, limit).await {
        Ok(record) => record,
        Err(error) => {
            // Gone before the answer, so a retry sees the account's real usage.
            reservation.release().await;
            return Err(error);
        }
    };
    reservation.keep();
    let dispatched = outbox::dispatch(&state.pool, &state.queues, std::slice::from_ref(&record))
        .await
        .pop()
        .unwrap_or(outbox::DispatchState::Pending);

    tracing::info!(job.id = %record.id, "photo accepted");
    let body = UploadResponse {
        photo: PhotoRef {
            id: photo_id,
            state: "processing",
        },
        job: JobRef::new(&state, &record, dispatched),
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// A photo being uploaded: its id, whose it is, and the request bringing it.
struct NewPhoto<'a> {
    id: Uuid,
    owner: Uuid,
    request: &'a RequestId,
}

/// Receives the file into storage and turns the reserved row into the
/// photo with its job. A failure leaves no file behind.
async fn store_and_commit(
    state: &AppState,
    photo: &NewPhoto<'_>,
    format: ImageFormat,
    head: Bytes,
    field: &mut Field<'_>,
    limit: Limit,
) -> Result<outbox::JobRecord, ApiError> {
    let key = keys::photo_original(photo.id);
    let upload = state.storage.upload(&key, format.content_type()).await?;
    let bytes = receive(upload, head, field, limit).await?;
    match commit_photo(state, photo, bytes).await {
        Ok(record) => Ok(record),
        Err(error) => {
            // Without its row nobody can reach the file: do not keep it.
            if let Err(delete) = state.storage.delete(&key).await {
                tracing::warn!(error = %delete, key, "could not delete an unrecorded upload");
            }
            Err(error)
        }
    }
}

/// Reserves the photo's row (`uploading`) if the account may upload now.
/// Returns how many more bytes the account may store (`u64::MAX`: no quota).
async fn reserve(
    state: &AppState,
    user_id: Uuid,
    photo_id: Uuid,
    format: ImageFormat,
) -> Result<u64, ApiError> {
    let limits = &state.upload_limits;
    let mut tx = state.pool.begin().await?;
    let quota_left = if limits.per_hour == 0 && limits.quota_bytes == 0 {
        u64::MAX
    } else {
        lock_user(&mut tx, user_id).await?;
        check_usage(&mut tx, user_id, limits).await?
    };
    sqlx::query!(
        "insert into photos (photo_id, user_id, state, content_type, bytes)
         values ($1, $2, 'uploading', $3, 0)",
        photo_id,
        user_id,
        format.content_type(),
    )
    .execute(&mut *tx)
    .await
    .map_err(|error| match &error {
        // The token outlived its user (account deleted).
        sqlx::Error::Database(db) if db.constraint() == Some("photos_user_id_fkey") => {
            ApiError::Unauthorized
        }
        _ => ApiError::database(error),
    })?;
    tx.commit().await?;
    Ok(quota_left)
}

/// How many more bytes the account may store, if it may upload now.
async fn check_usage(
    tx: &mut sqlx::PgConnection,
    user_id: Uuid,
    limits: &shared::config::UploadLimits,
) -> Result<u64, ApiError> {
    let usage = sqlx::query!(
        r#"select count(*) filter (where created_at > now() - interval '1 hour') as "recent!",
                  coalesce(sum(bytes) filter (where state <> 'uploading'), 0)::bigint as "stored!",
                  extract(epoch from min(created_at) filter (where created_at > now() - interval '1 hour')
                                     + interval '1 hour' - now())::float8 as "retry_after"
           from photos where user_id = $1"#,
        user_id,
    )
    .fetch_one(&mut *tx)
    .await?;
    if limits.per_hour > 0 && usage.recent >= i64::from(limits.per_hour) {
        let retry_after = usage.retry_after.unwrap_or(60.0).ceil().max(1.0);
        return Err(ApiError::RateLimited(retry_after as u64));
    }
    let stored = u64::try_from(usage.stored).unwrap_or(0);
    let quota_left = if limits.quota_bytes == 0 {
        u64::MAX
    } else if stored >= limits.quota_bytes {
        return Err(quota_exceeded(limits.quota_bytes));
    } else {
        limits.quota_bytes - stored
    };
    Ok(quota_left)
}

/// Serialises one account's uploads, so their limits are checked one at a time.
async fn lock_user(tx: &mut sqlx::PgConnection, user_id: Uuid) -> Result<(), ApiError> {
    sqlx::query_scalar!(
        "select user_id from users where user_id = $1 for update",
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?
    // The token outlived its user (account deleted).
    .ok_or(ApiError::Unauthorized)?;
    Ok(())
}

fn quota_exceeded(quota: u64) -> ApiError {
    ApiError::QuotaExceeded(format!(
        "your photos use all of your {} MB of storage",
        quota / 1_000_000
    ))
}

/// The reserved row becomes the photo (`processing`), with its image-resize
/// job, in one transaction, if the account's quota still has room.
async fn commit_photo(
    state: &AppState,
    photo: &NewPhoto<'_>,
    bytes: u64,
) -> Result<outbox::JobRecord, ApiError> {
    let (user_id, photo_id) = (photo.owner, photo.id);
    let quota = state.upload_limits.quota_bytes;
    let mut tx = state.pool.begin().await?;
    if quota > 0 {
        lock_user(&mut tx, user_id).await?;
        let stored = sqlx::query_scalar!(
            r#"select coalesce(sum(bytes), 0)::bigint as "stored!" from photos
               where user_id = $1 and state <> 'uploading'"#,
            user_id,
        )
        .fetch_one(&mut *tx)
        .await?;
        if u64::try_from(stored).unwrap_or(0).saturating_add(bytes) > quota {
            return Err(quota_exceeded(quota));
        }
    }
    let updated = sqlx::query!(
        "update photos set state = 'processing', bytes = $2, updated_at = now()
         where photo_id = $1 and state = 'uploading'",
        photo_id,
        i64::try_from(bytes).unwrap_or(i64::MAX),
    )
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "the reservation of photo {photo_id} is gone"
        )));
    }
    let record = outbox::record(
        &mut tx,
        &state.queues,
        photo.request,
        &ImageResize { user_id, photo_id },
    )
    .await?;
    tx.commit().await?;
    Ok(record)
}

/// A reserved photo row, deleted unless [`Reservation::keep`] is called:
/// an upload that fails or is abandoned leaves no row behind.
struct Reservation(Option<(sqlx::PgPool, Uuid)>);

impl Reservation {
    fn keep(mut self) {
        self.0 = None;
    }

    /// Deletes the row now (the upload failed and we are still answering).
    async fn release(mut self) {
        if let Some((pool, photo_id)) = self.0.take() {
            delete_reservation(&pool, photo_id).await;
        }
    }
}

async fn delete_reservation(pool: &sqlx::PgPool, photo_id: Uuid) {
    let deleted = sqlx::query!(
        "delete from photos where photo_id = $1 and state = 'uploading'",
        photo_id
    )
    .execute(pool)
    .await;
    if let Err(error) = deleted {
        tracing::warn!(%error, %photo_id, "could not delete an abandoned upload's row");
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let Some((pool, photo_id)) = self.0.take() else {
            return;
        };
        // Dropped with the request (the client went away): clean up on the
        // side. Without a runtime (the process is stopping) the hourly sweep
        // of interrupted uploads removes the row instead.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move { delete_reservation(&pool, photo_id).await });
    }
}

/// Refuses, before storing a byte, a photo whose header shows the worker
/// could not decode it within its limits (the worker checks again: a
/// header past the first [`HEAD_BYTES`] is judged there).
fn check_decode_cost(state: &AppState, header: &media::Header) -> Result<(), ApiError> {
    let problem = if header.pixels() > state.photo_max_pixels {
        format!(
            "is {}×{} pixels; at most {} pixels are accepted",
            header.width, header.height, state.photo_max_pixels
        )
    } else if header.decode_bytes > state.photo_max_decode_bytes {
        format!(
            "is a {} of {}×{} pixels, which needs {} MB to decode; at most {} MB are \
             allowed (a baseline JPEG or a non-interlaced PNG of this size needs far less)",
            header.kind,
            header.width,
            header.height,
            header.decode_bytes.div_ceil(1_000_000),
            state.photo_max_decode_bytes / 1_000_000
        )
    } else {
        return Ok(());
    };
    Err(ApiError::Validation([("photo", problem)].into()))
}

/// The first [`HEAD_BYTES`] of the field, or all of it if shorter.
async fn read_head(field: &mut Field<'_>) -> Result<Bytes, ApiError> {
    let mut head = BytesMut::new();
    while head.len() < HEAD_BYTES {
        match field.chunk().await.map_err(malformed)? {
            Some(chunk) => head.extend_from_slice(&chunk),
            None => break,
        }
    }
    Ok(head.freeze())
}

/// How much one upload may bring.
#[derive(Clone, Copy)]
struct Limit {
    max_bytes: u64,
    quota_left: u64,
}

/// Writes `head` and the rest of the field to `upload`, then stores it;
/// returns the size. Anything short of a complete file within `limit` is
/// thrown away (dropping the upload removes its spool file).
async fn receive(
    mut upload: Upload,
    head: Bytes,
    field: &mut Field<'_>,
    limit: Limit,
) -> Result<u64, ApiError> {
    let mut size = 0_u64;
    let mut next = Some(head);
    while let Some(chunk) = next.take() {
        size += chunk.len() as u64;
        if size > limit.max_bytes {
            return Err(ApiError::PayloadTooLarge);
        }
        if size > limit.quota_left {
            return Err(ApiError::QuotaExceeded(
                "this photo does not fit in your remaining storage".into(),
            ));
        }
        upload.write(&chunk).await?;
        next = field.chunk().await.map_err(malformed)?;
    }
    upload.finish().await?;
    Ok(size)
}

fn malformed(error: MultipartError) -> ApiError {
    if crate::pace::is_too_slow(&error) {
        ApiError::BodyTooSlow
    } else if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::MalformedBody(format!(
            "the multipart body is malformed: {}",
            error.body_text()
        ))
    }
}

/// `POST /api/photos` as a form: one file in the field `photo`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Documents the multipart body; axum reads it as a stream.
struct PhotoUpload {
    /// A JPEG, PNG or WebP image.
    #[schema(value_type = String, format = Binary)]
    photo: Vec<u8>,
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
    let content_type = sqlx::query_scalar!(
        "select content_type from photos where photo_id = $1 and user_id = $2 and state <> 'uploading'",
        photo_id,
        auth.user_id,
    )
    .fetch_optional(&state.pool)
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
