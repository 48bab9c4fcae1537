//! Answering with a file from storage, streamed: memory holds one chunk.

use axum::body::Body;
use axum::http::{HeaderName, header};
use axum::response::{IntoResponse, Response};
use storage::StoredFile;

/// `file` as the body, with its type and length, plus `headers`.
pub(super) fn stream<const N: usize>(
    file: StoredFile,
    content_type: String,
    headers: [(HeaderName, &'static str); N],
) -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_LENGTH, file.size.to_string()),
        ],
        Body::from_stream(file.chunks),
    )
        .into_response();
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(name, axum::http::HeaderValue::from_static(value));
    }
    response
}
