//! One id per request, from click to job: taken from the client's
//! `x-request-id` when it is well-formed (a proxy or frontend may have made
//! it), generated otherwise; returned in the answer, on every log line of
//! the request, stored with the jobs it records, and on the worker's span
//! for each of those jobs.
//!
//! The request's span names its URI without secrets: a query parameter
//! whose name looks secret (the one-click unsubscribe link's `token`, a
//! signature, a key) keeps its name and loses its value, in every log line
//! and trace of the request ([`LoggedUri`]).

use std::fmt::{self, Write as _};
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Uri};
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
    /// makes its span: method, URI (secrets left out, see [`LoggedUri`])
    /// and request id, what every log line and trace of the request
    /// carries. One step for both: a separate tracing layer (tower-http's
    /// `TraceLayer`) cost more than the handler of a polled job
    /// (`docs/benchmarks.md`).
    pub fn assign(request: &mut Request) -> (Self, Span) {
        let id = Self::from_client(request.headers().get(&HEADER));
        let span = tracing::info_span!(
            "request",
            method = request.method().as_str(),
            uri = %LoggedUri(request.uri()),
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

/// What a query parameter's value becomes in logs when its name looks
/// secret.
const REDACTED: &str = "[redacted]";

/// Parts of query parameter names (decoded, lower-cased) that mark a
/// secret value: a link's `token` (`?token=…`, `access_token`), `secret`,
/// `key` (`api_key`), `sig` (a signed URL's `X-Amz-Signature`), a
/// password, an auth `code`, a `session` or a `credential`. Catching a
/// harmless name costs a value in a log line; missing a secret one puts a
/// credential in every log store and trace backend the line reaches.
const SECRET_NAMES: [&str; 10] = [
    "token",
    "secret",
    "key",
    "sig",
    "pass",
    "pwd",
    "auth",
    "code",
    "session",
    "credential",
];

/// A request's URI as its span records it: the path and the query, every
/// value of a parameter whose name looks secret ([`SECRET_NAMES`]) replaced
/// by `[redacted]`. The scheme and authority of an absolute-form URI are
/// left out (an authority may carry `user:password@`). Written straight
/// into the span, with no copy of the URI.
pub struct LoggedUri<'a>(pub &'a Uri);

impl fmt::Display for LoggedUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.path())?;
        let Some(query) = self.0.query() else {
            return Ok(());
        };
        f.write_char('?')?;
        for (index, pair) in query.split('&').enumerate() {
            if index > 0 {
                f.write_char('&')?;
            }
            match pair.split_once('=') {
                Some((name, _)) if looks_secret(name) => write!(f, "{name}={REDACTED}")?,
                _ => f.write_str(pair)?,
            }
        }
        Ok(())
    }
}

/// Whether a query parameter named `name` (as sent: percent-encoded, `+`
/// for a space) holds a secret, judged on the name the route reads, so
/// `tok%65n` is `token` here as it is to `Query`.
fn looks_secret(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = match bytes[at] {
            b'%' => bytes.get(at + 1..at + 3).and_then(hex_byte),
            _ => None,
        };
        match (escaped, bytes[at]) {
            (Some(byte), _) => {
                decoded.push(byte);
                at += 3;
            }
            (None, b'+') => {
                decoded.push(b' ');
                at += 1;
            }
            (None, byte) => {
                decoded.push(byte);
                at += 1;
            }
        }
    }
    let decoded = String::from_utf8_lossy(&decoded).to_ascii_lowercase();
    SECRET_NAMES.iter().any(|part| decoded.contains(part))
}

/// The byte two hex digits stand for.
fn hex_byte(digits: &[u8]) -> Option<u8> {
    let digit = |d: u8| char::from(d).to_digit(16);
    let (high, low) = (digit(*digits.first()?)?, digit(*digits.get(1)?)?);
    u8::try_from(high * 16 + low).ok()
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

    fn logged(uri: &str) -> String {
        LoggedUri(&uri.parse().expect("a URI")).to_string()
    }

    #[test]
    fn a_secret_looking_query_value_is_left_out_of_the_logged_uri() {
        assert_eq!(
            logged("/api/email/unsubscribe?token=0123.c2lnbmF0dXJl"),
            "/api/email/unsubscribe?token=[redacted]"
        );
        assert_eq!(
            logged("/x?a=1&Access_Token=t&tok%65n=t&X-Amz-Signature=s&api+key=k&flag&b=2"),
            "/x?a=1&Access_Token=[redacted]&tok%65n=[redacted]&X-Amz-Signature=[redacted]\
             &api+key=[redacted]&flag&b=2"
        );
    }

    #[test]
    fn other_uris_are_logged_as_they_came_without_an_authority() {
        for uri in [
            "/api/me/jobs?limit=20&cursor=abc",
            "/healthz",
            "/a?",
            "/a?%zz=1&=2",
        ] {
            assert_eq!(logged(uri), uri);
        }
        assert_eq!(logged("http://user:hunter2@example.com/p?q=1"), "/p?q=1");
    }
}
