//! Extractors whose rejections use our error shape instead of axum's plain text.

use axum::extract::FromRequest;

use crate::error::ApiError;

/// `axum::Json`, but a bad body becomes an [`ApiError`] (400, 413, 415 or 422).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);
