//! `POST /api/photos` (upload) and `GET /media/photos/{id}/{file}` (serving).
//!
//! An upload is streamed to storage as it arrives: memory holds one chunk,
//! not the photo. The format is sniffed from the first bytes, and the size
//! in pixels read from the header when it is there, so a file we would
//! refuse anyway is refused before it is stored.

use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use shared::images::{ImageFormat, Variant, sniff};
use shared::jobs::ImageResize;
use shared::outbox;
use shared::storage::{Upload, keys};
use uuid::Uuid;

use super::jobs::JobRef;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

/// Enough of a file to find its format and, for nearly every JPEG (whose
/// size comes after its EXIF block), its dimensions.
const HEAD_BYTES: usize = 64 * 1024;
/// How long a signed S3 URL for a photo stays valid.
const SIGNED_URL_TTL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Room for the multipart framing around the photo itself.
const FRAMING_BYTES: u64 = 64 * 1024;

/// Routes of this module; uploads may be up to `max_bytes`.
pub fn router(max_bytes: u64) -> Router<AppState> {
    let body_limit = usize::try_from(max_bytes + FRAMING_BYTES).unwrap_or(usize::MAX);
    Router::new()
        .route(
            "/api/photos",
            post(upload).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/media/photos/{photo_id}/{file}", get(serve))
}

#[derive(Serialize)]
struct UploadResponse {
    photo: PhotoRef,
    job: JobRef,
}

#[derive(Serialize)]
struct PhotoRef {
    id: Uuid,
    state: &'static str,
}

#[tracing::instrument(name = "upload_photo", skip_all, fields(user_id = %auth.user_id, photo_id = tracing::field::Empty))]
async fn upload(
    State(state): State<AppState>,
    auth: AuthUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
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
    if let Ok(size) = imagesize::blob_size(&head) {
        let (width, height) = (size.width as u64, size.height as u64);
        if width * height > state.photo_max_pixels {
            return Err(ApiError::Validation(
                [(
                    "photo",
                    format!(
                        "is {width}×{height} pixels; at most {} pixels are accepted",
                        state.photo_max_pixels
                    ),
                )]
                .into(),
            ));
        }
    }

    let photo_id = Uuid::now_v7();
    tracing::Span::current().record("photo_id", tracing::field::display(photo_id));
    let key = keys::photo_original(photo_id);
    let upload = state.storage.upload(&key, format.content_type()).await?;
    let bytes = stream_into(upload, head, &mut field, state.photo_max_bytes).await?;

    let record = match record_photo(&state, auth.user_id, photo_id, format, bytes).await {
        Ok(record) => record,
        Err(error) => {
            // Without its row nobody can reach the file: do not keep it.
            if let Err(delete) = state.storage.delete(&key).await {
                tracing::warn!(error = %delete, key, "could not delete an unrecorded upload");
            }
            return Err(error);
        }
    };
    let dispatched = outbox::dispatch(&state.pool, &state.queues, std::slice::from_ref(&record))
        .await
        .pop()
        .unwrap_or(outbox::DispatchState::Pending);

    let body = UploadResponse {
        photo: PhotoRef {
            id: photo_id,
            state: "processing",
        },
        job: JobRef::new(&state, &record, dispatched),
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The photo row and its image-resize job, in one transaction.
async fn record_photo(
    state: &AppState,
    user_id: Uuid,
    photo_id: Uuid,
    format: ImageFormat,
    bytes: u64,
) -> Result<outbox::JobRecord, ApiError> {
    let mut tx = state.pool.begin().await?;
    sqlx::query!(
        "insert into photos (photo_id, user_id, content_type, bytes) values ($1, $2, $3, $4)",
        photo_id,
        user_id,
        format.content_type(),
        i64::try_from(bytes).unwrap_or(i64::MAX),
    )
    .execute(&mut *tx)
    .await?;
    let record = outbox::record(&mut tx, &state.queues, &ImageResize { user_id, photo_id }).await?;
    tx.commit().await?;
    Ok(record)
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

/// Writes `head` and the rest of the field to `upload`; returns the size.
/// Anything short of a complete, small enough file is thrown away.
async fn stream_into(
    mut upload: Upload,
    head: Bytes,
    field: &mut Field<'_>,
    max_bytes: u64,
) -> Result<u64, ApiError> {
    let mut size = 0_u64;
    let mut next = Some(head);
    let outcome = loop {
        let Some(chunk) = next.take() else {
            break Ok(size);
        };
        size += chunk.len() as u64;
        if size > max_bytes {
            break Err(ApiError::PayloadTooLarge);
        }
        if let Err(error) = upload.write(chunk).await {
            break Err(error.into());
        }
        next = match field.chunk().await {
            Ok(chunk) => chunk,
            Err(error) => break Err(malformed(error)),
        };
    };
    match outcome {
        Ok(size) => {
            upload.finish().await?;
            Ok(size)
        }
        Err(error) => {
            if let Err(abort) = upload.abort().await {
                tracing::warn!(error = %abort, "could not discard a refused upload");
            }
            Err(error)
        }
    }
}

fn malformed(error: MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::MalformedBody(format!(
            "the multipart body is malformed: {}",
            error.body_text()
        ))
    }
}

/// Serves a stored photo. Keys are per photo id and never rewritten with
/// different content, so clients and CDNs may keep them for a year.
#[tracing::instrument(name = "serve_photo", skip_all)]
async fn serve(
    State(state): State<AppState>,
    Path((photo_id, file)): Path<(Uuid, String)>,
) -> Result<Response, ApiError> {
    const NOT_FOUND: ApiError = ApiError::NotFound("photo");
    let (key, content_type) = match file.as_str() {
        "original" => {
            let content_type = sqlx::query_scalar!(
                "select content_type from photos where photo_id = $1",
                photo_id
            )
            .fetch_optional(&state.pool)
            .await?
            .ok_or(NOT_FOUND)?;
            (keys::photo_original(photo_id), content_type)
        }
        name => {
            let variant = name
                .strip_suffix(".jpg")
                .and_then(Variant::from_name)
                .ok_or(NOT_FOUND)?;
            (
                keys::photo_variant(photo_id, variant),
                ImageFormat::Jpeg.content_type().to_owned(),
            )
        }
    };
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

/// The avatar URLs of `photo_id`, as `/api/me` shows them.
pub fn avatar_urls(public_url: &str, photo_id: Uuid) -> serde_json::Value {
    let base = format!("{public_url}/media/photos/{photo_id}");
    let mut urls = serde_json::Map::new();
    urls.insert("original".into(), format!("{base}/original").into());
    for variant in Variant::ALL {
        let url = format!("{base}/{}.jpg", variant.name());
        urls.insert(variant.name().into(), url.into());
    }
    urls.into()
}
