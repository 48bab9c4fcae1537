//! One id per request, from click to job: taken from the client's
//! `x-request-id` when it is well-formed (a proxy or frontend may have made
//! it), generated otherwise; returned in the answer, on every log line of
//! the request, stored with the jobs it records, and on the worker's span
//! for each of those jobs.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use tracing::Span;

/// `x-request-id`.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id taken from a client; longer ones are replaced, not cut.
const MAX_LEN: usize = 64;

/// The id of the request being served.
#[derive(Debug, Clone)]
pub struct RequestId(Arc<str>);

impl RequestId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The client's id if it is 1 to 64 characters of `A-Z a-z 0-9 . _ -`
    /// (safe in logs and headers), else a fresh one.
    fn from_client(header: Option<&HeaderValue>) -> Self {
        let given = header.and_then(|value| value.to_str().ok()).filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
        Self(match given {
            Some(id) => id.into(),
            None => uuid::Uuid::now_v7().simple().to_string().into(),
        })
    }
}

impl RequestId {
    /// Gives `request` its id (the handlers' extractor finds it there) and
    /// makes its span: method, URI and request id, what every log line and
    /// trace of the request carries. One step for both: a separate tracing
    /// layer (tower-http's `TraceLayer`) cost more than the handler of a
    /// polled job (`docs/benchmarks.md`).
    pub fn assign(request: &mut Request) -> (Self, Span) {
        let id = Self::from_client(request.headers().get(&HEADER));
        let span = tracing::info_span!(
            "request",
            method = request.method().as_str(),
            uri = %request.uri(),
            request_id = id.as_str(),
        );
        request.extensions_mut().insert(id.clone());
        (id, span)
    }

    /// Gives the answer its `x-request-id`.
    pub fn tag(&self, response: &mut Response) {
        if let Ok(value) = HeaderValue::from_str(self.as_str()) {
            response.headers_mut().insert(HEADER, value);
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Always there behind `assign`; a router without it still gets an id.
        Ok(parts
            .extensions
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(|| RequestId::from_client(None)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(value: &str) -> String {
        RequestId::from_client(Some(&HeaderValue::from_str(value).expect("header")))
            .as_str()
            .to_owned()
    }

    #[test]
    fn a_well_formed_client_id_is_kept_and_anything_else_replaced() {
        assert_eq!(id("req-1.2_3"), "req-1.2_3");
        for hostile in ["", "a b", "x\"y", "{json}", &"a".repeat(65), "ümlaut"] {
            let replaced = RequestId::from_client(HeaderValue::from_str(hostile).ok().as_ref());
            assert_ne!(replaced.as_str(), hostile);
            assert_eq!(replaced.as_str().len(), 32, "a fresh simple uuid");
        }
    }
}
