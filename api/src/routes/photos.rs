//! `POST /api/photos`: the upload, HTTP only. The photo's row and the
//! account's limits belong to [`store::photos`]; serving is [`super::media`].
//!
//! An upload is spooled to disk as it arrives: memory holds one chunk, not
//! the photo. The format is sniffed from the first bytes, and the size in
//! pixels read from the header when it is there, so a file we would refuse
//! anyway is refused before it is stored.
//!
//! Limits: uploads in progress per instance (503), uploads per account per
//! hour and in progress (429) and bytes stored per account (403
//! `quota_exceeded`); the account limits are checked by [`photos::reserve`]
//! and again at commit. The account's reservation comes before the
//! instance's slot, and both before the first byte is read: an account
//! holds at most its uploads in progress of the instance's slots, even
//! while their first bytes arrive (64 KiB at the minimum body pace take a
//! minute), so one account trickling uploads cannot fill the instance.

use axum::Json;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use catalogue::ImageResize;
use media::{ImageFormat, sniff};
use serde::Serialize;
use storage::{Upload, keys};
use store::photos;
use utoipa_axum::routes;
use uuid::Uuid;

use super::endpoints::{Endpoints, Limits};
use crate::auth::AuthUser;
use crate::error::{ApiError, LogOnce};
use crate::outbox::{JobRef, UnitOfWork};
use crate::request_id::RequestId;
use crate::state::AppState;

/// Enough of a file to find its format and, for nearly every JPEG (whose
/// size comes after its EXIF block), its dimensions.
const HEAD_BYTES: usize = 64 * 1024;
/// What a photo is reserved as until its first bytes show its format.
const NOT_YET_KNOWN: &str = "application/octet-stream";
/// `POST /api/photos`, whose body may be a whole photo (`PHOTO_MAX_BYTES`).
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    let limits = Limits::upload(endpoints.state().photos.max_bytes);
    endpoints.add(routes!(upload), limits)
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
        (status = 413, description = "Over `PHOTO_MAX_BYTES`", body = crate::error::Body),
        (status = 415, description = "Not JPEG, PNG or WebP, or not multipart", body = crate::error::Body),
        (status = 422, description = "No `photo` field, too many pixels, or too costly to decode", body = crate::error::Body),
        (status = 429, description = "Past the hourly upload limit of the account, or as many uploads in progress as it may have", body = crate::error::Body, headers(("Retry-After" = u64))),
    ))]
#[tracing::instrument(name = "upload_photo", skip_all, fields(user_id = %auth.user_id, photo_id = tracing::field::Empty))]
async fn upload(
    State(state): State<AppState>,
    auth: AuthUser,
    request: RequestId,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let max_bytes = state.photos.max_bytes;
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
    let multipart = multipart.map_err(|_| {
        ApiError::UnsupportedMediaType(
            "send the photo as multipart/form-data in a field named `photo`".into(),
        )
    })?;
    // A full instance refuses at once, without a query.
    if state.upload_slots.available_permits() == 0 {
        return Err(instance_full());
    }
    let photo_id = Uuid::now_v7();
    tracing::Span::current().record("photo_id", tracing::field::display(photo_id));
    // The account's place first (its limits, in progress included), then
    // the instance's slot: refused uploads never hold a slot.
    let mut reservation = photos::reserve(
        &state.pool,
        auth.user_id,
        photo_id,
        NOT_YET_KNOWN,
        &state.photos.uploads,
    )
    .await
    .map_err(refused)?;
    // Held until the answer: spool files and transfers per instance are bounded.
    let Ok(_slot) = state.upload_slots.clone().try_acquire_owned() else {
        // Taken meanwhile: no byte was read, so no upload of the account's.
        reservation.cancel().await;
        return Err(instance_full());
    };
    let photo = NewPhoto {
        id: photo_id,
        owner: auth.user_id,
        request: &request,
    };
    let job = match receive_photo(&state, &photo, &mut reservation, multipart).await {
        Ok(bytes) => commit(&state, &photo, reservation, bytes).await?,
        Err(error) => {
            // Gone before the answer, so a retry sees the account's real usage.
            reservation.release().await;
            return Err(error);
        }
    };
    tracing::info!(job.id = %job.id(), "photo accepted");
    let body = UploadResponse {
        photo: PhotoRef {
            id: photo_id,
            state: "processing",
        },
        job,
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The answer while every upload slot of this instance is taken.
fn instance_full() -> ApiError {
    static FULL: LogOnce = LogOnce::new();
    if FULL.due() {
        tracing::warn!("the upload limit of this instance is reached; answering 503");
    }
    ApiError::Overloaded(5)
}

/// Finds the `photo` field, judges its first bytes (format, decode cost)
/// and receives the file into storage; returns its size. A failure leaves
/// no file behind.
async fn receive_photo(
    state: &AppState,
    photo: &NewPhoto<'_>,
    reservation: &mut photos::Reservation,
    mut multipart: Multipart,
) -> Result<u64, ApiError> {
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
        check_decode_cost(state, &header)?;
    }
    reservation.identified_as(format.content_type());
    let limit = Limit {
        max_bytes: state.photos.max_bytes,
        quota_left: reservation.quota_left,
    };
    store(state, photo, format, head, &mut field, limit).await
}

/// A photo being uploaded: its id, whose it is, and the request bringing it.
struct NewPhoto<'a> {
    id: Uuid,
    owner: Uuid,
    request: &'a RequestId,
}

/// Receives the file into storage; returns its size. A failure leaves no
/// file behind.
async fn store(
    state: &AppState,
    photo: &NewPhoto<'_>,
    format: ImageFormat,
    head: Bytes,
    field: &mut Field<'_>,
    limit: Limit,
) -> Result<u64, ApiError> {
    let upload = state
        .storage
        .upload(&keys::photo_original(photo.id), format.content_type())
        .await?;
    receive(upload, head, field, limit).await
}

/// The reserved row becomes the photo (`processing`) with its image-resize
/// job, in one unit of work, handed to Redis once committed. A failure
/// deletes the stored file: without its row nobody can reach it.
async fn commit(
    state: &AppState,
    photo: &NewPhoto<'_>,
    reservation: photos::Reservation,
    bytes: u64,
) -> Result<JobRef, ApiError> {
    let committed = async {
        let mut work = UnitOfWork::begin(state, photo.request).await?;
        reservation
            .commit(work.conn(), bytes, state.photos.uploads.quota_bytes)
            .await
            .map_err(refused)?;
        let job = ImageResize {
            user_id: photo.owner,
            photo_id: photo.id,
        };
        work.record(&job).await?;
        Ok::<_, ApiError>(work.commit().await?)
    }
    .await;
    if committed.is_err() {
        let key = keys::photo_original(photo.id);
        if let Err(delete) = state.storage.delete(&key).await {
            tracing::warn!(error = %delete, key, "could not delete an unrecorded upload");
        }
    }
    committed?
        .jobs
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a photo was recorded with no job")))
}

/// The answer to an upload the account's limits refuse.
fn refused(error: photos::UploadRefused) -> ApiError {
    use photos::UploadRefused;
    match error {
        UploadRefused::RateLimited { retry_after_secs } => ApiError::RateLimited(retry_after_secs),
        UploadRefused::TooManyInProgress { in_progress } => {
            ApiError::UploadsInProgress(in_progress)
        }
        UploadRefused::QuotaExceeded { quota_bytes } => ApiError::QuotaExceeded(format!(
            "your photos use all of your {} MB of storage",
            quota_bytes / 1_000_000
        )),
        // The token outlived its user (account deleted).
        UploadRefused::UserGone => ApiError::Unauthorized,
        UploadRefused::ReservationGone(_) => ApiError::Internal(error.into()),
        UploadRefused::Database(error) => ApiError::database(error),
    }
}

/// Refuses, before storing a byte, a photo whose header shows the worker
/// could not decode it within its limits (the worker checks again: a
/// header past the first [`HEAD_BYTES`] is judged there).
fn check_decode_cost(state: &AppState, header: &media::Header) -> Result<(), ApiError> {
    let problem = if header.pixels() > state.photos.max_pixels {
        format!(
            "is {}×{} pixels; at most {} pixels are accepted",
            header.width, header.height, state.photos.max_pixels
        )
    } else if header.decode_bytes > state.photos.max_decode_bytes {
        format!(
            "is a {} of {}×{} pixels, which needs {} MB to decode; at most {} MB are \
             allowed (a baseline JPEG or a non-interlaced PNG of this size needs far less)",
            header.kind,
            header.width,
            header.height,
            header.decode_bytes.div_ceil(1_000_000),
            state.photos.max_decode_bytes / 1_000_000
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
