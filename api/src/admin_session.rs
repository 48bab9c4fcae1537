//! Operators' browser sessions for the dashboard at `/admin`: a random
//! token in a cookie, its hash stored with the session
//! ([`crate::owners::admin`]), so signing out ends it on the server and a captured
//! cookie dies with it, and the cookie says nothing about `ADMIN_TOKEN`.
//!
//! The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no
//! other site's page makes the browser send it) and `Secure` when
//! `PUBLIC_URL` is https. Actions also need the `x-acme-admin` header,
//! which a page elsewhere cannot add without a preflight we refuse.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};

/// The cookie's name.
pub const COOKIE: &str = "acme_admin";

/// The header an action must carry besides the cookie.
pub const ACTION_HEADER: &str = "x-acme-admin";

/// How long a sign-in lasts.
pub const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// `Set-Cookie` for a new session (`value`), or to end one (`None`).
pub fn set_cookie(value: Option<&str>, secure: bool) -> HeaderValue {
    let (value, max_age) = match value {
        Some(value) => (value, LIFETIME.as_secs()),
        None => ("", 0),
    };
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::try_from(format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("the cookie is ASCII")
}

/// The session cookie's value in `headers`, if any.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; acme_admin=Zm9v; b=3"),
        );
        assert_eq!(cookie(&headers), Some("Zm9v"));
        headers.insert(header::COOKIE, HeaderValue::from_static("acme_admin="));
        assert_eq!(cookie(&headers), None, "a cleared cookie is none");
    }
}
