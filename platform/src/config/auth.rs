//! Sign-up, login and operator access.

use std::time::Duration;

use secrecy::SecretString;

use std::fmt::Display;
use std::str::FromStr;

use super::variables::{Env, LongSecret, Nested, Parsed, Secs, Variable, Vars, push, variables};
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

/// Argon2id's memory per hash in production, in KiB (OWASP's minimum for
/// Argon2id, and the `argon2` crate's default): the cost a stolen hash
/// costs an attacker per guess.
pub const ARGON2_DEFAULT_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id's passes over that memory in production (the crate's default).
pub const ARGON2_DEFAULT_ITERATIONS: u32 = 2;
/// The least memory Argon2 accepts with one lane: 8 blocks of 1 KiB.
pub const ARGON2_MIN_MEMORY_KIB: u32 = 8;
/// The fewest passes Argon2 accepts.
pub const ARGON2_MIN_ITERATIONS: u32 = 1;

/// Password hashing capacity of one api instance, and the cost of a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    /// Hashes running at once, each on its own thread with its memory
    /// (`ARGON2_THREADS`, default: the number of cores).
    pub threads: usize,
    /// Requests allowed to wait for a thread; past it, 503 `overloaded` at
    /// once (`ARGON2_MAX_QUEUE`, default: 16 per thread).
    pub max_queue: usize,
    /// Memory per new hash in KiB (`ARGON2_MEMORY_KIB`). Lowered only by
    /// the load test's profile, which needs 100 signups a second on 2
    /// cores; a stored hash keeps the cost it was made with.
    pub memory_kib: u32,
    /// Passes per new hash (`ARGON2_ITERATIONS`); lowered like the memory.
    pub iterations: u32,
}

variables! {
    Argon2Settings {
        threads: Parsed("ARGON2_THREADS", cores()).at_least(1),
        max_queue: Parsed("ARGON2_MAX_QUEUE", 16 * threads),
        memory_kib: AtLeastOrSay(
            "ARGON2_MEMORY_KIB",
            ARGON2_DEFAULT_MEMORY_KIB,
            ARGON2_MIN_MEMORY_KIB,
            "Argon2's minimum",
        ),
        iterations: AtLeastOrSay(
            "ARGON2_ITERATIONS",
            ARGON2_DEFAULT_ITERATIONS,
            ARGON2_MIN_ITERATIONS,
            "Argon2's minimum",
        ),
    }
}

impl Argon2Settings {
    /// Whether new hashes cost less than production's: the load test's
    /// profile, never a deployment's (the api warns at start).
    pub fn is_lowered(&self) -> bool {
        self.memory_kib < ARGON2_DEFAULT_MEMORY_KIB || self.iterations < ARGON2_DEFAULT_ITERATIONS
    }
}

/// A number with its default and a floor below which the value is refused
/// (not raised, as [`Variable::at_least`] does): a cost a library would
/// reject, so the binary stops at start naming it and `why` the floor.
struct AtLeastOrSay<'k, T>(&'k str, T, T, &'k str);

impl<T> Variable<T> for AtLeastOrSay<'_, T>
where
    T: FromStr + Display + Clone + PartialOrd,
    T::Err: Display,
{
    fn read(&self, env: &mut Env<'_>) -> T {
        let Self(key, default, floor, why) = self;
        let value = env.parsed(key, default.clone());
        if value < *floor {
            env.problem(format!("{key}={value} is below {floor} ({why})"));
            return default.clone();
        }
        value
    }

    fn write(&self, value: &T, vars: &mut Vars) {
        push(vars, self.0, value.to_string());
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::settings;

    #[test]
    fn a_hashing_cost_below_argon2s_minimum_is_refused_at_start_naming_it() {
        let database = ("DATABASE_URL", "postgres://localhost/app");
        let error = settings(&[
            database,
            ("ARGON2_MEMORY_KIB", "7"),
            ("ARGON2_ITERATIONS", "0"),
        ])
        .expect_err("Argon2 would refuse both")
        .to_string();
        assert!(
            error.contains("ARGON2_MEMORY_KIB=7 is below 8 (Argon2's minimum)"),
            "{error}"
        );
        assert!(
            error.contains("ARGON2_ITERATIONS=0 is below 1 (Argon2's minimum)"),
            "{error}"
        );

        let lowest = settings(&[
            database,
            ("ARGON2_MEMORY_KIB", "8"),
            ("ARGON2_ITERATIONS", "1"),
        ])
        .expect("Argon2's minimums are valid");
        assert_eq!(
            (lowest.auth.argon2.memory_kib, lowest.auth.argon2.iterations),
            (8, 1)
        );
        assert!(lowest.auth.argon2.is_lowered());
        let stronger = settings(&[database, ("ARGON2_MEMORY_KIB", "65536")]).expect("valid");
        assert!(
            !stronger.auth.argon2.is_lowered(),
            "more memory is not lowered"
        );
    }
}
