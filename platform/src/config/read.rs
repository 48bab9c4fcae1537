//! Reading the settings from variables, and writing them back.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use super::settings::*;
use super::values::{CorsOrigins, LogFormat};
use catalogue::{QueueName, QueueSettings, QueueTable, RateLimit, cores};

/// The settings that were missing or malformed, all of them.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError(Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration (see .env.example):")?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

/// Loads `./.env` into the process environment, so `cargo run -p api` works
/// like `scripts/dev`; variables already set win. Only the working
/// directory is searched (not its parents), so a process started elsewhere,
/// by a test for instance, never picks up a developer's file. No file is
/// fine; a malformed one is an error naming the line.
pub fn load_dotenv() -> Result<(), String> {
    match dotenvy::from_path(".env") {
        Ok(()) => Ok(()),
        Err(error) if error.not_found() => Ok(()),
        Err(error) => Err(format!("cannot read .env: {error}")),
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process
    /// environment (which is shared by every test thread).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut env = Env {
            lookup: &lookup,
            problems: &mut problems,
        };
        let database_url = env.required("DATABASE_URL");
        let mut queues = QueueTable::default();
        for &queue in QueueName::ALL {
            *queues.get_mut(queue) = queue_settings(&mut env, queue);
        }
        let argon2_threads = env.parsed("ARGON2_THREADS", cores()).max(1);
        let client_ip_header: Option<String> = env.optional("CLIENT_IP_HEADER");
        let settings = Settings {
            database: DatabaseSettings {
                url: SecretString::from(database_url.unwrap_or_default()),
                max_connections: env.parsed("DATABASE_MAX_CONNECTIONS", 10),
            },
            redis: RedisSettings {
                url: SecretString::from(env.or("REDIS_URL", "redis://127.0.0.1:6379")),
                cluster_nodes: env.cluster_nodes("REDIS_CLUSTER_NODES"),
                queue_prefix: env.or("QUEUE_PREFIX", "bull"),
                redeliver_after: env.secs("OUTBOX_REDELIVER_AFTER_SECS", 300).max(SECOND),
            },
            server: ServerSettings {
                host: env.or("HOST", "0.0.0.0"),
                port: env.parsed("PORT", 3000),
                public_url: env
                    .or("PUBLIC_URL", "http://localhost:3000")
                    .trim_end_matches('/')
                    .to_owned(),
                http: HttpLimits {
                    header_timeout: env.secs("HTTP_HEADER_TIMEOUT_SECS", 10).max(SECOND),
                    idle_timeout: env.secs("HTTP_IDLE_TIMEOUT_SECS", 75).max(SECOND),
                    body_min_rate: env.parsed("HTTP_BODY_MIN_BYTES_PER_SEC", 1024),
                    body_window: env.secs("HTTP_BODY_WINDOW_SECS", 10).max(SECOND),
                    max_connections: env.parsed("HTTP_MAX_CONNECTIONS", 1024).max(1),
                    first_byte_timeout: env.secs("HTTP_FIRST_BYTE_TIMEOUT_SECS", 10).max(SECOND),
                    max_connections_per_client: env.parsed(
                        "HTTP_MAX_CONNECTIONS_PER_CLIENT",
                        if client_ip_header.is_some() { 0 } else { 64 },
                    ),
                },
                cors_allowed_origins: env.parsed("CORS_ALLOWED_ORIGINS", CorsOrigins::SameOrigin),
                client_ip_header,
                metrics_token: env.secret("METRICS_TOKEN"),
            },
            auth: AuthSettings {
                rate_limit: env.parsed("AUTH_RATE_LIMIT", 20),
                login_failures: LoginFailureLimit {
                    max: env.parsed("LOGIN_FAILURE_LIMIT", 10),
                    window: env.secs("LOGIN_FAILURE_WINDOW_SECS", 900),
                },
                password_reset_ttl: env.secs("PASSWORD_RESET_TTL_SECS", 1800),
                email_verification_ttl: env.secs("EMAIL_VERIFICATION_TTL_SECS", 86_400),
                argon2: Argon2Settings {
                    threads: argon2_threads,
                    max_queue: env.parsed("ARGON2_MAX_QUEUE", 16 * argon2_threads),
                },
                admin_token: env.long_secret("ADMIN_TOKEN"),
            },
            photos: PhotoSettings {
                max_bytes: env.parsed("PHOTO_MAX_BYTES", 20 * 1024 * 1024),
                max_pixels: env.parsed("PHOTO_MAX_PIXELS", 50_000_000),
                max_decode_bytes: env.parsed("PHOTO_MAX_DECODE_BYTES", 100 * 1024 * 1024),
                uploads: UploadLimits {
                    per_hour: env.parsed("PHOTO_UPLOADS_PER_HOUR", 20),
                    quota_bytes: env.parsed("PHOTO_QUOTA_BYTES", 200 * 1024 * 1024),
                    max_concurrent: env.parsed("PHOTO_MAX_CONCURRENT_UPLOADS", 32).max(1),
                    max_concurrent_per_account: env
                        .parsed("PHOTO_MAX_CONCURRENT_UPLOADS_PER_ACCOUNT", 2),
                },
            },
            storage: StorageSettings {
                url: env.or("STORAGE_URL", ".dev/storage"),
                s3: S3Settings {
                    endpoint: env.optional("AWS_ENDPOINT"),
                    region: env.optional("AWS_REGION"),
                    access_key_id: env.optional("AWS_ACCESS_KEY_ID"),
                    secret_access_key: env.secret("AWS_SECRET_ACCESS_KEY"),
                    allow_http: env.parsed("AWS_ALLOW_HTTP", false),
                },
                spool_dir: env
                    .optional("UPLOAD_SPOOL_DIR")
                    .map_or_else(std::env::temp_dir, PathBuf::from),
            },
            mail: MailSettings {
                smtp_url: env.secret("SMTP_URL"),
                from: env.or("MAIL_FROM", "Acme <hello@acme.test>"),
                mailbox_dir: PathBuf::from(env.or("MAILBOX_DIR", ".dev/mailbox")),
                follow_up_delay: env.secs("FOLLOW_UP_DELAY_SECS", DAY.as_secs()),
                unsubscribe_secret: env.long_secret("UNSUBSCRIBE_SECRET"),
            },
            providers: ProviderSettings {
                stripe_secret_key: env.secret("STRIPE_SECRET_KEY"),
                stripe_api_base: env
                    .or("STRIPE_API_BASE", "https://api.stripe.com")
                    .trim_end_matches('/')
                    .to_owned(),
                stripe_webhook_secret: env.secret("STRIPE_WEBHOOK_SECRET"),
                stripe_webhook_tolerance: env
                    .secs("STRIPE_WEBHOOK_TOLERANCE_SECS", 300)
                    .max(SECOND),
                stripe_webhook_max_bytes: env
                    .parsed("STRIPE_WEBHOOK_MAX_BYTES", 256 * 1024)
                    .max(1024),
                slack_webhook_url: env.secret("SLACK_WEBHOOK_URL"),
                config_fault_pause: env.secs("CONFIG_FAULT_PAUSE_SECS", 300).max(SECOND),
            },
            queues,
            worker: WorkerSettings {
                http_port: Some(env.parsed("WORKER_HTTP_PORT", 3001_u16)).filter(|&port| port != 0),
                shutdown_timeout: env.secs("SHUTDOWN_TIMEOUT_SECS", 30),
            },
            maintenance: MaintenanceSettings {
                interval: Some(env.secs("MAINTENANCE_INTERVAL_SECS", 3600))
                    .filter(|interval| !interval.is_zero()),
                job_record_retention: Duration::from_secs(
                    env.parsed("JOB_RECORD_RETENTION_DAYS", 30_u64)
                        .saturating_mul(DAY.as_secs()),
                ),
                photo_grace: env.secs("PHOTO_CLEANUP_GRACE_SECS", DAY.as_secs()),
            },
            alerts: AlertSettings {
                slack_webhook_url: env.secret("ALERT_SLACK_WEBHOOK_URL"),
                email_to: env
                    .optional("ALERT_EMAIL_TO")
                    .map(|list| {
                        list.split(',')
                            .map(str::trim)
                            .filter(|address| !address.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                check_interval: env.secs("ALERT_CHECK_INTERVAL_SECS", 30).max(SECOND),
                no_consumer: env.secs("ALERT_NO_CONSUMER_SECS", 120),
                oldest_waiting: env.secs("ALERT_OLDEST_WAITING_SECS", 600),
                failed_jobs: env.parsed("ALERT_FAILED_JOBS", 10),
                failed_ratio: env.parsed("ALERT_FAILED_RATIO", 0.5),
                failure_window: env.secs("ALERT_FAILURE_WINDOW_SECS", 900).max(SECOND),
                outbox: env.secs("ALERT_OUTBOX_SECS", 120),
            },
            telemetry: TelemetrySettings {
                otlp_endpoint: env.optional("OTEL_EXPORTER_OTLP_ENDPOINT"),
                log_format: env.parsed("LOG_FORMAT", LogFormat::Json),
            },
        };
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError(problems))
        }
    }
}

/// The shortest secret accepted for a key that signs links, or a token
/// that opens the operators' endpoints: past guessing, online or offline.
const MIN_SECRET_CHARS: usize = 32;

pub(super) const SECOND: Duration = Duration::from_secs(1);
pub(super) const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// `queue`'s defaults, overridden by `QUEUE_<NAME>_<FIELD>` variables.
fn queue_settings<F: Fn(&str) -> Option<String>>(
    env: &mut Env<'_, F>,
    queue: QueueName,
) -> QueueSettings {
    let prefix = queue.env_prefix();
    let d = queue.default_settings();
    let key = |field: &str| format!("{prefix}{field}");
    let millis = |env: &mut Env<'_, F>, field: &str, default: Duration| {
        Duration::from_millis(env.parsed(&key(field), crate::millis(default)).max(1))
    };
    let rate_max = env.parsed(&key("RATE_MAX"), d.rate_limit.map_or(0, |limit| limit.max));
    let rate_per = millis(
        env,
        "RATE_PER_MS",
        d.rate_limit.map_or(SECOND, |limit| limit.per),
    );
    QueueSettings {
        concurrency: env.parsed(&key("CONCURRENCY"), d.concurrency).max(1),
        attempts: env.parsed(&key("ATTEMPTS"), d.attempts).max(1),
        backoff: millis(env, "BACKOFF_MS", d.backoff),
        // RATE_MAX=0 turns a default limit off.
        rate_limit: (rate_max > 0).then_some(RateLimit {
            max: rate_max,
            per: rate_per,
        }),
        keep_completed: env.secs(&key("KEEP_COMPLETED_SECS"), d.keep_completed.as_secs()),
        keep_completed_count: env.parsed(&key("KEEP_COMPLETED_COUNT"), d.keep_completed_count),
        keep_failed: env.secs(&key("KEEP_FAILED_SECS"), d.keep_failed.as_secs()),
        lock_duration: millis(env, "LOCK_DURATION_MS", d.lock_duration),
        stalled_interval: millis(env, "STALLED_INTERVAL_MS", d.stalled_interval),
        timeout: env
            .secs(&key("TIMEOUT_SECS"), d.timeout.as_secs())
            .max(SECOND),
    }
}

/// Reads variables and collects what is wrong with them.
struct Env<'a, F> {
    lookup: &'a F,
    problems: &'a mut Vec<String>,
}

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn optional(&mut self, key: &str) -> Option<String> {
        (self.lookup)(key).filter(|value| !value.trim().is_empty())
    }

    fn secret(&mut self, key: &str) -> Option<SecretString> {
        self.optional(key).map(SecretString::from)
    }

    /// A secret that keys a MAC: shorter than [`MIN_SECRET_CHARS`] would
    /// make it guessable offline.
    fn long_secret(&mut self, key: &str) -> Option<SecretString> {
        let value = self.optional(key)?;
        if value.chars().count() < MIN_SECRET_CHARS {
            self.problems.push(format!(
                "{key} must be at least {MIN_SECRET_CHARS} characters (e.g. `openssl rand -hex 32`)"
            ));
        }
        Some(SecretString::from(value))
    }

    /// Comma-separated Redis URLs, each checked for its scheme.
    fn cluster_nodes(&mut self, key: &str) -> Option<SecretString> {
        let value = self.optional(key)?;
        let nodes: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|node| !node.is_empty())
            .collect();
        if nodes.is_empty() {
            self.problems.push(format!(
                "{key} names no node: give seed URLs separated by commas"
            ));
        }
        for node in &nodes {
            if !(node.starts_with("redis://") || node.starts_with("rediss://")) {
                // The node itself may hold a password: say where, not what.
                let host = node.rsplit('@').next().unwrap_or_default();
                self.problems.push(format!(
                    "{key}: every node must be a redis:// or rediss:// URL, not {host:?}"
                ));
            }
        }
        Some(SecretString::from(value))
    }

    fn required(&mut self, key: &str) -> Option<String> {
        let value = self.optional(key);
        if value.is_none() {
            self.problems.push(format!("{key} is required but not set"));
        }
        value
    }

    fn or(&mut self, key: &str, default: &str) -> String {
        self.optional(key).unwrap_or_else(|| default.to_owned())
    }

    fn secs(&mut self, key: &str, default: u64) -> Duration {
        Duration::from_secs(self.parsed(key, default))
    }

    fn parsed<T>(&mut self, key: &str, default: T) -> T
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.optional(key) {
            None => default,
            Some(raw) => raw.trim().parse().unwrap_or_else(|error| {
                self.problems
                    .push(format!("{key}={raw:?} is invalid: {error}"));
                default
            }),
        }
    }
}
