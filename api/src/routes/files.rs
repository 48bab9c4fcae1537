//! Answering with a file from storage, streamed: memory holds one chunk.

use axum::body::Body;
use axum::http::{HeaderName, header};
use axum::response::{IntoResponse, Response};
use object_store::GetResult;

/// `file` as the body, with its type and length, plus `headers`.
pub(super) fn stream<const N: usize>(
    file: GetResult,
    content_type: String,
    headers: [(HeaderName, &'static str); N],
) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_LENGTH, file.meta.size.to_string()),
        ],
        Body::from_stream(file.into_stream()),
    )
        .into_response();
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(name, axum::http::HeaderValue::from_static(value));
    }
    response
}
