//! Extractors whose rejections use our error shape instead of axum's plain text.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};

use crate::error::ApiError;

/// `axum::Json`, but a bad body becomes an [`ApiError`] (400, 413, 415 or 422).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

/// The body's bytes as sent (a signature covers them exactly), within the
/// route's limit; a bad body becomes an [`ApiError`] (408 or 413).
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Ok(Self(Bytes::from_request(request, state).await?))
    }
}
