//! Stripe's webhook signature, checked as Stripe specifies: the
//! `Stripe-Signature` header holds a timestamp `t` and one or more `v1`
//! signatures, each HMAC-SHA256 with the endpoint's secret over
//! `"{t}.{raw body}"` in hex. Any `v1` may match (during a secret rotation
//! Stripe signs with both secrets); other schemes (`v0`) are ignored. The
//! timestamp must be within the tolerance of our clock either way, so a
//! captured request cannot be replayed later.
//!
//! The check runs on the raw bytes before anything parses them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The most `v1` signatures one header may carry: Stripe sends one, or two
/// during a rotation; more is an attempt to make us compute.
const MAX_SIGNATURES: usize = 8;

/// The webhook endpoint's secret and how old a signed request may be.
#[derive(Clone)]
pub struct StripeWebhook {
    key: Hmac<Sha256>,
    tolerance: Duration,
}

/// Why a request is not Stripe's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Stripe-Signature` header, or one without `t` or `v1`.
    #[error("the Stripe-Signature header is missing or malformed")]
    Malformed,
    /// The timestamp is further from now than the tolerance.
    #[error("the Stripe-Signature timestamp is outside the tolerance")]
    Stale,
    /// No `v1` signature matches the body.
    #[error("no Stripe-Signature signature matches the body")]
    Mismatch,
}

impl StripeWebhook {
    /// Checks with `secret` (`whsec_…`, used as Stripe's libraries use it:
    /// the whole string is the key), allowing `tolerance` of clock skew
    /// and delivery delay.
    pub fn new(secret: &SecretString, tolerance: Duration) -> Self {
        Self {
            key: Hmac::new_from_slice(secret.expose_secret().trim().as_bytes())
                .expect("HMAC takes keys of any length"),
            tolerance,
        }
    }

    /// Whether `header` signs `body`, at `now`.
    pub fn verify(
        &self,
        header: Option<&[u8]>,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), SignatureError> {
        let header = header
            .and_then(|header| std::str::from_utf8(header).ok())
            .ok_or(SignatureError::Malformed)?;
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for pair in header.split(',') {
            match pair.trim().split_once('=') {
                Some(("t", value)) if timestamp.is_none() => {
                    timestamp = Some(
                        value
                            .parse::<u64>()
                            .map_err(|_| SignatureError::Malformed)?,
                    );
                }
                Some(("v1", value)) if signatures.len() < MAX_SIGNATURES => {
                    // Not hex cannot match; skip it as Stripe's libraries do.
                    if let Ok(signature) = hex::decode(value) {
                        signatures.push(signature);
                    }
                }
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
        if signatures.is_empty() {
            return Err(SignatureError::Malformed);
        }
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        if now.abs_diff(timestamp) > self.tolerance.as_secs() {
            return Err(SignatureError::Stale);
        }
        let mac = signed_payload(self.key.clone(), timestamp, body);
        // `verify_slice` compares in constant time: a near miss tells a
        // guesser nothing.
        if signatures
            .iter()
            .any(|signature| mac.clone().verify_slice(signature).is_ok())
        {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// `key` over what Stripe signs: `"{timestamp}.{body}"`.
fn signed_payload(mut key: Hmac<Sha256>, timestamp: u64, body: &[u8]) -> Hmac<Sha256> {
    key.update(format!("{timestamp}.").as_bytes());
    key.update(body);
    key
}

/// The `Stripe-Signature` header for `body` at `timestamp`, signed with
/// `secret`: what Stripe sends, for tests and benchmarks.
pub fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let key = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    let signature = signed_payload(key, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(signature))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const SECRET: &str = "whsec_test_secret";

    fn webhook() -> StripeWebhook {
        StripeWebhook::new(&SecretString::from(SECRET), Duration::from_secs(300))
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_body_signed_with_the_secret_passes() {
        let header = sign(SECRET, 1_700_000_000, b"{}");
        assert_eq!(
            webhook().verify(Some(header.as_bytes()), b"{}", at(1_700_000_100)),
            Ok(())
        );
    }

    #[test]
    fn any_v1_may_match_during_a_secret_rotation() {
        let old = sign("whsec_old", 1_700_000_000, b"{}");
        let new = sign(SECRET, 1_700_000_000, b"{}");
        let header = format!("{old},v1={},v0=00", new.split_once("v1=").unwrap().1);
        assert_eq!(
            webhook().verify(Some(header.as_bytes()), b"{}", at(1_700_000_000)),
            Ok(())
        );
    }

    #[test]
    fn a_timestamp_older_than_the_tolerance_is_stale() {
        let header = sign(SECRET, 1_700_000_000, b"{}");
        assert_eq!(
            webhook().verify(Some(header.as_bytes()), b"{}", at(1_700_000_301)),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn a_header_without_a_v1_signature_is_malformed() {
        assert_eq!(
            webhook().verify(Some(b"t=1700000000,v0=abcd"), b"{}", at(1_700_000_000)),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            webhook().verify(None, b"{}", at(1_700_000_000)),
            Err(SignatureError::Malformed)
        );
    }

    proptest! {
        #[test]
        fn a_changed_body_never_passes(body in proptest::collection::vec(any::<u8>(), 0..256), flip in any::<usize>()) {
            prop_assume!(!body.is_empty());
            let header = sign(SECRET, 1_700_000_000, &body);
            let mut changed = body.clone();
            let i = flip % changed.len();
            changed[i] ^= 0x01;
            prop_assert_eq!(
                webhook().verify(Some(header.as_bytes()), &changed, at(1_700_000_000)),
                Err(SignatureError::Mismatch)
            );
        }

        #[test]
        fn an_arbitrary_header_never_passes(header in ".{0,200}") {
            let verdict = webhook().verify(Some(header.as_bytes()), b"{}", at(1_700_000_000));
            prop_assert!(verdict.is_err());
        }
    }
}
