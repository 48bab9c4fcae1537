//! What browsers need from the api: security headers on every answer, the
//! strict Content-Security-Policy of the web app, and CORS for pages on
//! other origins (`CORS_ALLOWED_ORIGINS`).

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use platform::config::{CorsOrigins, StorageSettings};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Every answer that is not the web app is data, never a document: nothing
/// in it may load or run, and no page may frame it.
const DATA_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Adds the headers every answer carries unless its handler set its own.
pub fn add_security_headers(headers: &mut HeaderMap) {
    for (name, value) in [
        // Browsers must not guess a type: a "JPEG" that sniffs as HTML stays a JPEG.
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Job and photo ids in our URLs are nobody else's business.
        (header::REFERRER_POLICY, "no-referrer"),
        // Clickjacking: no page may frame ours (older browsers; CSP for the rest).
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, DATA_POLICY),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
}

/// The web app's policy: its own scripts and styles only (no inline script,
/// no `eval`), calls to its own origin only, images from itself and, with
/// S3 storage, from the bucket the avatar URLs redirect to.
pub fn app_policy(settings: &StorageSettings) -> HeaderValue {
    let mut images = String::from("'self' blob:");
    if settings.url.starts_with("s3://") {
        match &settings.s3.endpoint {
            Some(endpoint) => {
                images.push(' ');
                images.push_str(endpoint.trim_end_matches('/'));
            }
            None => images.push_str(" https://*.amazonaws.com"),
        }
    }
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src {images}; \
         connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    );
    HeaderValue::try_from(policy).expect("the policy is ASCII")
}

/// CORS for `origins`; `None` when only the api's own pages call it (then
/// no CORS header is ever sent and browsers refuse other origins' reads).
pub fn cors(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow = match origins {
        CorsOrigins::SameOrigin => return None,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(
            list.iter()
                .filter_map(|origin| HeaderValue::try_from(origin.as_str()).ok()),
        ),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            // Every method the api routes (`PUT /api/me/preferences` among
            // them); a test keeps this in step with the OpenAPI document.
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            // Bearer tokens, JSON bodies, and revalidating polled answers.
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_NONE_MATCH,
                // A live stream resuming (`GET /api/me/events`).
                HeaderName::from_static("last-event-id"),
            ])
            // What a client needs to read: validators, when to retry,
            // timings, and the request id to quote in a support ticket.
            .expose_headers([
                header::ETAG,
                header::RETRY_AFTER,
                HeaderName::from_static("server-timing"),
                HeaderName::from_static("x-request-id"),
            ])
            // Tokens travel in a header, never in cookies.
            .allow_credentials(false)
            .max_age(Duration::from_secs(600)),
    )
}
