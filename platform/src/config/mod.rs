//! One typed [`Settings`], read from the environment by both binaries
//! (12-factor), grouped by concern: each group is handed whole to the code
//! that uses it.
//!
//! - `settings.rs`: the groups and what each field means.
//! - `read.rs`: reading them from variables, every problem reported at once.
//! - `write.rs`: writing them back ([`Settings::to_env`]) for child
//!   processes, so tests change settings as typed values.
//! - `values.rs`: the values with a syntax of their own (CORS origins, log
//!   format).
//!
//! Every variable is documented in `.env.example`; none of their names
//! changed when the settings were grouped.

mod read;
mod settings;
mod values;
mod write;

pub use read::{ConfigError, load_dotenv};
pub use settings::{
    AlertSettings, Argon2Settings, AuthSettings, DatabaseSettings, HttpLimits, LoginFailureLimit,
    MailSettings, MaintenanceSettings, PhotoSettings, ProviderSettings, RedisSettings, S3Settings,
    ServerSettings, Settings, StorageSettings, TelemetrySettings, UploadLimits, WorkerSettings,
};
pub use values::{CorsOrigins, LogFormat};

#[cfg(test)]
mod tests;
