//! Operators' browser sessions for the dashboard at `/admin`: a signed,
//! expiring cookie, so any api instance accepts it without a session
//! store, and changing `ADMIN_TOKEN` ends every session at once.
//!
//! The cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no
//! other site's page makes the browser send it) and `Secure` when
//! `PUBLIC_URL` is https. Actions also need the `x-acme-admin` header,
//! which a page elsewhere cannot add without a preflight we refuse.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, header};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The cookie's name.
pub const COOKIE: &str = "acme_admin";

/// The header an action must carry besides the cookie.
pub const ACTION_HEADER: &str = "x-acme-admin";

/// How long a sign-in lasts.
const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// Signs and checks session cookies; derived from `ADMIN_TOKEN`.
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// The key for `admin_token`: a new token makes every old cookie invalid.
    pub fn derive(admin_token: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"acme admin session v1\0");
        hasher.update(admin_token.as_bytes());
        Self(hasher.finalize().into())
    }

    /// A cookie value valid for [`LIFETIME`] from `now`.
    pub fn issue(&self, now: SystemTime) -> String {
        let expires = (now + LIFETIME)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claim = format!("v1.{expires}");
        let tag: String = self
            .mac(&claim)
            .finalize()
            .into_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!("{claim}.{tag}")
    }

    /// Whether `value` is a cookie we issued that has not expired at `now`.
    pub fn verify(&self, value: &str, now: SystemTime) -> bool {
        let Some((claim, tag)) = value.rsplit_once('.') else {
            return false;
        };
        let Some(expires) = claim
            .strip_prefix("v1.")
            .and_then(|secs| secs.parse::<u64>().ok())
        else {
            return false;
        };
        let Some(tag) = decode_hex(tag) else {
            return false;
        };
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        // `verify_slice` compares in constant time.
        expires > now && self.mac(claim).verify_slice(&tag).is_ok()
    }

    fn mac(&self, claim: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(claim.as_bytes());
        mac
    }
}

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
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_verifies_until_it_expires_and_only_under_its_own_key() {
        let key = SessionKey::derive("operator token");
        let now = SystemTime::now();
        let cookie = key.issue(now);
        assert!(key.verify(&cookie, now));
        assert!(key.verify(&cookie, now + LIFETIME - Duration::from_secs(1)));
        assert!(
            !key.verify(&cookie, now + LIFETIME + Duration::from_secs(1)),
            "expired"
        );
        assert!(
            !SessionKey::derive("new token").verify(&cookie, now),
            "the token changed"
        );
        let (claim, tag) = cookie.rsplit_once('.').expect("claim.tag");
        let forged_expiry = claim.replace("v1.", "v1.9");
        assert!(
            !key.verify(&format!("{forged_expiry}.{tag}"), now),
            "a longer life is not ours"
        );
        for junk in ["", "v1", "v1.x.y", "v1.1.zz", "v2.9999999999.00"] {
            assert!(!key.verify(junk, now), "{junk}");
        }
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; acme_admin=v1.2.ab; b=3"),
        );
        assert_eq!(cookie(&headers), Some("v1.2.ab"));
    }
}
