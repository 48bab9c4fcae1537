//! Postgres.

use secrecy::SecretString;

use super::variables::{Parsed, Required, variables};

/// Postgres.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// Connection string (`DATABASE_URL`, required).
    pub url: SecretString,
    /// Upper bound of the pool (`DATABASE_MAX_CONNECTIONS`).
    pub max_connections: u32,
}

variables! {
    DatabaseSettings {
        url: Required("DATABASE_URL"),
        max_connections: Parsed("DATABASE_MAX_CONNECTIONS", 10),
    }
}
