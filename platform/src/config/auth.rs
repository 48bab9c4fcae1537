//! Sign-up, login and operator access.

use std::time::Duration;

use secrecy::SecretString;

use super::variables::{LongSecret, Nested, Parsed, Secs, Variable as _, variables};
use catalogue::cores;

/// Sign-up, login and operator access.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Signups plus logins allowed per client per minute; 0 turns the
    /// limit off (`AUTH_RATE_LIMIT`).
    pub rate_limit: u32,
    /// Failed logins allowed per account in a window, from any address.
    pub login_failures: LoginFailureLimit,
    /// Argon2 hashing threads and the queue in front of them.
    pub argon2: Argon2Settings,
    /// Bearer token for the operator endpoints, 32 characters at least;
    /// `None` disables them (`ADMIN_TOKEN`).
    pub admin_token: Option<SecretString>,
}

variables! {
    AuthSettings {
        rate_limit: Parsed("AUTH_RATE_LIMIT", 20),
        login_failures: Nested,
        argon2: Nested,
        admin_token: LongSecret("ADMIN_TOKEN"),
    }
}

/// A per-account limit on failed logins, which no number of client
/// addresses gets around. Kept in Postgres, so it holds across api instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailureLimit {
    /// Failures allowed per window; 0 turns the limit off (`LOGIN_FAILURE_LIMIT`).
    pub max: u32,
    /// The window, counted from the first failure (`LOGIN_FAILURE_WINDOW_SECS`).
    pub window: Duration,
}

variables! {
    LoginFailureLimit {
        max: Parsed("LOGIN_FAILURE_LIMIT", 10),
        window: Secs("LOGIN_FAILURE_WINDOW_SECS", 900),
    }
}

/// Password hashing capacity of one api instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    /// Hashes running at once, each on its own thread with 19 MiB
    /// (`ARGON2_THREADS`, default: the number of cores).
    pub threads: usize,
    /// Requests allowed to wait for a thread; past it, 503 `overloaded` at
    /// once (`ARGON2_MAX_QUEUE`, default: 16 per thread).
    pub max_queue: usize,
}

variables! {
    Argon2Settings {
        threads: Parsed("ARGON2_THREADS", cores()).at_least(1),
        max_queue: Parsed("ARGON2_MAX_QUEUE", 16 * threads),
    }
}
