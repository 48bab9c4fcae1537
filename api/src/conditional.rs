//! Answers a client may already hold: a strong `ETag` over the body and
//! `304 Not Modified` for `If-None-Match`, so a frontend polling a job that
//! has not moved costs a query and a few headers, not a body.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// `body` as JSON for the user whose request carried `request`: `200` with
/// an `ETag`, or `304` with no body when `If-None-Match` names it. A browser
/// may keep it but must ask each time (`private, no-cache`), and the answer
/// depends on who asks (`Vary: Authorization`).
pub fn private_json<T: Serialize>(request: &HeaderMap, body: &T) -> Response {
    let json = match serde_json::to_vec(body) {
        Ok(json) => json,
        Err(error) => {
            // Our own types always serialize; if one does not, it is a bug.
            tracing::error!(%error, "could not serialize an answer");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    private(answer(request, json, "application/json", PRIVATE))
}

/// The `304` [`private_json`] gives for a body tagged `etag`, for a caller
/// that knows, without making the body, that the client holds it.
pub fn private_not_modified(etag: HeaderValue) -> Response {
    private(tagged(
        StatusCode::NOT_MODIFIED,
        Body::empty(),
        etag,
        PRIVATE,
    ))
}

/// What a browser may do with a per-user answer: keep it, but ask each time.
const PRIVATE: &str = "private, no-cache";

/// The answer depends on who asks.
fn private(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("authorization"));
    response
}

/// `body` of `content_type` with an `ETag` and `cache_control`, or a
/// bodiless `304` when the client's `If-None-Match` names the tag.
pub fn answer(
    request: &HeaderMap,
    body: impl Into<Bytes>,
    content_type: &'static str,
    cache_control: &'static str,
) -> Response {
    let body = body.into();
    let etag = etag_of(&body);
    if names(request, etag.as_bytes()) {
        return tagged(StatusCode::NOT_MODIFIED, Body::empty(), etag, cache_control);
    }
    let mut response = tagged(StatusCode::OK, Body::from(body), etag, cache_control);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn tagged(
    status: StatusCode,
    body: Body,
    etag: HeaderValue,
    cache_control: &'static str,
) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    // Sized for what the layers add (security headers, request id), so the
    // map is not grown and rehashed on the way out.
    let headers = response.headers_mut();
    headers.reserve(ANSWER_HEADERS);
    headers.insert(header::ETAG, etag);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    response
}

/// Headers on a conditional answer by the time it leaves: its own four,
/// `Vary`, four security headers and the request id.
const ANSWER_HEADERS: usize = 10;

/// A strong validator: the first 128 bits of the body's SHA-256, the same on
/// every api instance and release as long as the body is the same.
fn etag_of(body: &[u8]) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(body);
    let mut tag = [b'"'; 34];
    for (i, byte) in digest[..16].iter().enumerate() {
        tag[1 + 2 * i] = HEX[usize::from(byte >> 4)];
        tag[2 + 2 * i] = HEX[usize::from(byte & 0x0f)];
    }
    HeaderValue::from_bytes(&tag).expect("hex in quotes is a valid header value")
}

/// Whether `If-None-Match` names `etag` (or is `*`). Weak comparison, as
/// RFC 9110 asks for `If-None-Match`: `W/"x"` matches `"x"`.
pub fn names(request: &HeaderMap, etag: &[u8]) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .flat_map(|value| value.as_bytes().split(|byte| *byte == b','))
        .map(<[u8]>::trim_ascii)
        .any(|tag| tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn if_none_match(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, value.parse().expect("header"));
        headers
    }

    #[test]
    fn the_etag_is_the_same_for_the_same_body_and_differs_otherwise() {
        assert_eq!(etag_of(b"{\"a\":1}"), etag_of(b"{\"a\":1}"));
        assert_ne!(etag_of(b"{\"a\":1}"), etag_of(b"{\"a\":2}"));
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let etag = etag_of(b"body");
        let tag = etag.to_str().expect("ascii").to_owned();
        let etag = etag.as_bytes();
        assert!(names(&if_none_match(&tag), etag));
        assert!(names(&if_none_match(&format!("W/{tag}")), etag));
        assert!(names(&if_none_match(&format!("\"other\", {tag}")), etag));
        assert!(names(&if_none_match("*"), etag));
        assert!(!names(&if_none_match("\"other\""), etag));
        assert!(!names(&HeaderMap::new(), etag));
    }
}
