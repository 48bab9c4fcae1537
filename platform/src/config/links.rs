//! The links we hand out, in answers and in emails: both binaries make them.

use std::time::Duration;

use super::variables::{BaseUrl, Secs, variables};

/// The links we hand out: where they point, and how long the ones that
/// carry a token work. The api makes status and photo URLs, the worker the
/// links in emails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkSettings {
    /// Base of every link, without a trailing slash (`PUBLIC_URL`); the
    /// web app is served at its root.
    pub public_url: String,
    /// How long a password reset link works (`PASSWORD_RESET_TTL_SECS`).
    pub password_reset_ttl: Duration,
    /// How long an email verification link works
    /// (`EMAIL_VERIFICATION_TTL_SECS`).
    pub email_verification_ttl: Duration,
}

variables! {
    LinkSettings {
        public_url: BaseUrl("PUBLIC_URL", "http://localhost:3000"),
        password_reset_ttl: Secs("PASSWORD_RESET_TTL_SECS", 1800),
        email_verification_ttl: Secs("EMAIL_VERIFICATION_TTL_SECS", 86_400),
    }
}
