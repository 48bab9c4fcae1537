//! One typed `Settings`, read from the environment by both binaries (12-factor).
//!
//! Every variable is documented in `.env.example`. A missing or malformed
//! setting is reported at start-up, all problems at once, never as a panic in
//! the middle of a request.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use crate::jobs::{QueueName, QueueSettings, RateLimit, cores};

/// Everything either binary needs to know about its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Postgres connection string (`DATABASE_URL`, required).
    pub database_url: SecretString,
    /// Upper bound of the Postgres pool (`DATABASE_MAX_CONNECTIONS`).
    pub database_max_connections: u32,
    /// Redis holding the BullMQ queues (`REDIS_URL`).
    pub redis_url: SecretString,
    /// Address the API listens on (`HOST`).
    pub host: String,
    /// Port the API listens on (`PORT`).
    pub port: u16,
    /// Base of every link we hand out, without a trailing slash (`PUBLIC_URL`).
    pub public_url: String,
    /// SMTP server; `None` writes emails to [`Settings::mailbox_dir`] instead (`SMTP_URL`).
    pub smtp_url: Option<SecretString>,
    /// Sender of every email (`MAIL_FROM`).
    pub mail_from: String,
    /// Stripe API key; `None` makes the stripe-customer job a recorded no-op (`STRIPE_SECRET_KEY`).
    pub stripe_secret_key: Option<SecretString>,
    /// Stripe API base URL, without a trailing slash (`STRIPE_API_BASE`).
    pub stripe_api_base: String,
    /// Slack incoming webhook for signup announcements; `None` skips them (`SLACK_WEBHOOK_URL`).
    pub slack_webhook_url: Option<SecretString>,
    /// Development mailbox used when no SMTP server is configured (`MAILBOX_DIR`).
    pub mailbox_dir: PathBuf,
    /// Where uploads and job output (photos, PDFs) are stored: a folder
    /// path, a `file://` URL or `s3://bucket/prefix` (`STORAGE_URL`).
    pub storage_url: String,
    /// S3 access when `storage_url` is `s3://…`; unset fields fall back to
    /// the AWS SDK's usual sources (instance role, web identity, …).
    pub s3: S3Settings,
    /// Largest photo upload accepted, in bytes (`PHOTO_MAX_BYTES`).
    pub photo_max_bytes: u64,
    /// Largest photo accepted, in pixels (width × height), against
    /// decompression bombs (`PHOTO_MAX_PIXELS`).
    pub photo_max_pixels: u64,
    /// Most bytes one photo's decoder may hold, judged from the file's header
    /// (`PHOTO_MAX_DECODE_BYTES`): worker memory is at most this times the
    /// image-resize concurrency, whatever is uploaded.
    pub photo_max_decode_bytes: u64,
    /// How long a queue stays paused when a provider refuses our credentials
    /// (`CONFIG_FAULT_PAUSE_SECS`): its jobs wait rather than fail.
    pub config_fault_pause: Duration,
    /// BullMQ key prefix (`QUEUE_PREFIX`); `{bull}` keeps a queue in one Redis Cluster slot.
    pub queue_prefix: String,
    /// Signups plus logins allowed per client per minute; 0 turns the limit
    /// off (`AUTH_RATE_LIMIT`).
    pub auth_rate_limit: u32,
    /// Header carrying the client address, appended by a trusted reverse
    /// proxy, e.g. `X-Forwarded-For`; unset: the TCP peer (`CLIENT_IP_HEADER`).
    pub client_ip_header: Option<String>,
    /// Failed logins allowed per account in a window, from any address.
    pub login_failures: LoginFailureLimit,
    /// Argon2 hashing threads and the queue in front of them.
    pub argon2: Argon2Settings,
    /// Connection and body limits against slow or greedy clients.
    pub http: HttpLimits,
    /// Per-account and per-instance limits on photo uploads.
    pub uploads: UploadLimits,
    /// Bearer token a scraper must send to read the api's `/metrics`; `None`
    /// leaves it open (`METRICS_TOKEN`).
    pub metrics_token: Option<SecretString>,
    /// Port of the worker's `/healthz` and `/metrics`; `None` (`0`) serves
    /// neither (`WORKER_HTTP_PORT`, default 3001).
    pub worker_http_port: Option<u16>,
    /// Housekeeping: how often, and what is old enough to go.
    pub maintenance: MaintenanceSettings,
    /// Pages on other origins allowed to call the api from a browser
    /// (`CORS_ALLOWED_ORIGINS`).
    pub cors_allowed_origins: CorsOrigins,
    /// Bearer token for the operator endpoints; `None` disables them (`ADMIN_TOKEN`).
    pub admin_token: Option<SecretString>,
    /// How long a stopping worker lets in-flight jobs finish (`SHUTDOWN_TIMEOUT_SECS`).
    pub shutdown_timeout: Duration,
    /// How a worker process consumes each queue (`QUEUE_<NAME>_…`).
    pub queues: QueueTable,
    /// Where traces go over OTLP/HTTP, e.g. `http://collector:4318`; `None`
    /// sends none (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otlp_endpoint: Option<String>,
    /// `json` for log shippers, `pretty` for humans (`LOG_FORMAT`).
    pub log_format: LogFormat,
}

/// Every queue's settings: the catalogue's defaults, overridden from the
/// environment. The api (job options) and the worker read the same table.
#[derive(Debug, Clone, Default)]
pub struct QueueTable(HashMap<QueueName, QueueSettings>);

impl QueueTable {
    /// The settings of `queue` (its defaults if the table lacks it).
    pub fn get(&self, queue: QueueName) -> QueueSettings {
        self.0
            .get(&queue)
            .copied()
            .unwrap_or_else(|| queue.default_settings())
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

/// What a client must do to keep its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time to send a request's headers, from its first byte (`HTTP_HEADER_TIMEOUT_SECS`).
    pub header_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed
    /// (`HTTP_IDLE_TIMEOUT_SECS`); keep it above a load balancer's own idle timeout.
    pub idle_timeout: Duration,
    /// A request body must bring at least this many bytes per second…
    /// (`HTTP_BODY_MIN_BYTES_PER_SEC`)
    pub body_min_rate: u64,
    /// …measured over windows this long; a window with less (or nothing) cuts
    /// the request off with 408 (`HTTP_BODY_WINDOW_SECS`).
    pub body_window: Duration,
    /// Open connections per instance; more are answered 503 at once and
    /// closed (`HTTP_MAX_CONNECTIONS`).
    pub max_connections: usize,
}

/// Photo uploads: per account and per instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadLimits {
    /// Uploads per account per hour; then 429 (`PHOTO_UPLOADS_PER_HOUR`, 0 = off).
    pub per_hour: u32,
    /// Bytes of photos an account may have stored, replaced ones included
    /// until they are cleaned up (`PHOTO_QUOTA_BYTES`, 0 = off).
    pub quota_bytes: u64,
    /// Uploads in progress at once on one instance; more get 503
    /// (`PHOTO_MAX_CONCURRENT_UPLOADS`).
    pub max_concurrent: usize,
    /// Where uploads are spooled while they arrive (`UPLOAD_SPOOL_DIR`,
    /// default: the system's temporary folder).
    pub spool_dir: PathBuf,
}

/// How to reach S3 or an S3-compatible store (the standard `AWS_*` names).
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// Endpoint of an S3-compatible store, e.g. MinIO (`AWS_ENDPOINT`).
    pub endpoint: Option<String>,
    /// Bucket region (`AWS_REGION`).
    pub region: Option<String>,
    /// Access key (`AWS_ACCESS_KEY_ID`).
    pub access_key_id: Option<String>,
    /// Secret key (`AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: Option<SecretString>,
    /// Allow a plain-HTTP endpoint, for local stores (`AWS_ALLOW_HTTP`).
    pub allow_http: bool,
}

/// The scheduled housekeeping (the `maintenance` queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceSettings {
    /// How often each task runs; `None` (0) schedules none
    /// (`MAINTENANCE_INTERVAL_SECS`, default an hour).
    pub interval: Option<Duration>,
    /// Finished job records older than this are deleted
    /// (`JOB_RECORD_RETENTION_DAYS`, default 30).
    pub job_record_retention: Duration,
    /// Replaced and failed photos, and files no photo names, are deleted
    /// once this old (`PHOTO_CLEANUP_GRACE_SECS`, default a day).
    pub photo_grace: Duration,
}

/// Which pages on other origins may call the api from a browser. The api's
/// own web app is same-origin and needs none of this.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers: only the api's own pages (unset).
    #[default]
    SameOrigin,
    /// Any origin (`*`). Safe for an api that authenticates with a bearer
    /// header and sets no cookies, but it lets any site spend a user's
    /// token if it has one.
    Any,
    /// Exactly these origins, e.g. `https://app.example.com`.
    List(Vec<String>),
}

impl FromStr for CorsOrigins {
    type Err = String;

    /// A comma-separated list of `scheme://host[:port]`, or `*`.
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let items: Vec<&str> = raw
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .collect();
        if items.is_empty() {
            return Ok(Self::SameOrigin);
        }
        if items == ["*"] {
            return Ok(Self::Any);
        }
        items
            .into_iter()
            .map(|item| {
                // Browsers send the origin without a path; a trailing slash
                // is a common way to write it, so it is forgiven.
                let origin = item.strip_suffix('/').unwrap_or(item);
                let (scheme, rest) = origin.split_once("://").ok_or_else(|| {
                    format!("`{item}` is not an origin like https://app.example.com")
                })?;
                let host_ok = !rest.is_empty()
                    && rest
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
                if !matches!(scheme, "http" | "https") || !host_ok {
                    return Err(format!(
                        "`{item}` is not an origin like https://app.example.com (scheme, host, optional port; no path; `*` alone allows any)"
                    ));
                }
                Ok(origin.to_ascii_lowercase())
            })
            .collect::<Result<_, _>>()
            .map(Self::List)
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for production log pipelines.
    Json,
    /// Coloured, multi-field lines for a developer's terminal.
    Pretty,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            other => Err(format!("expected `json` or `pretty`, got `{other}`")),
        }
    }
}

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
        let queues = QueueTable(
            QueueName::ALL
                .iter()
                .map(|&queue| (queue, queue_settings(&mut env, queue)))
                .collect(),
        );
        let settings = Settings {
            database_url: SecretString::from(database_url.unwrap_or_default()),
            database_max_connections: env.parsed("DATABASE_MAX_CONNECTIONS", 10),
            redis_url: SecretString::from(env.or("REDIS_URL", "redis://127.0.0.1:6379")),
            host: env.or("HOST", "0.0.0.0"),
            port: env.parsed("PORT", 3000),
            public_url: env
                .or("PUBLIC_URL", "http://localhost:3000")
                .trim_end_matches('/')
                .to_owned(),
            smtp_url: env.optional("SMTP_URL").map(SecretString::from),
            mail_from: env.or("MAIL_FROM", "Acme <hello@acme.test>"),
            stripe_secret_key: env.optional("STRIPE_SECRET_KEY").map(SecretString::from),
            stripe_api_base: env
                .or("STRIPE_API_BASE", "https://api.stripe.com")
                .trim_end_matches('/')
                .to_owned(),
            slack_webhook_url: env.optional("SLACK_WEBHOOK_URL").map(SecretString::from),
            mailbox_dir: PathBuf::from(env.or("MAILBOX_DIR", ".dev/mailbox")),
            storage_url: env.or("STORAGE_URL", ".dev/storage"),
            s3: S3Settings {
                endpoint: env.optional("AWS_ENDPOINT"),
                region: env.optional("AWS_REGION"),
                access_key_id: env.optional("AWS_ACCESS_KEY_ID"),
                secret_access_key: env
                    .optional("AWS_SECRET_ACCESS_KEY")
                    .map(SecretString::from),
                allow_http: env.parsed("AWS_ALLOW_HTTP", false),
            },
            photo_max_bytes: env.parsed("PHOTO_MAX_BYTES", 20 * 1024 * 1024),
            photo_max_pixels: env.parsed("PHOTO_MAX_PIXELS", 50_000_000),
            photo_max_decode_bytes: env.parsed("PHOTO_MAX_DECODE_BYTES", 100 * 1024 * 1024),
            config_fault_pause: Duration::from_secs(
                env.parsed("CONFIG_FAULT_PAUSE_SECS", 300).max(1),
            ),
            queue_prefix: env.or("QUEUE_PREFIX", "bull"),
            admin_token: env.optional("ADMIN_TOKEN").map(SecretString::from),
            cors_allowed_origins: env.parsed("CORS_ALLOWED_ORIGINS", CorsOrigins::SameOrigin),
            metrics_token: env.optional("METRICS_TOKEN").map(SecretString::from),
            maintenance: MaintenanceSettings {
                interval: Some(Duration::from_secs(
                    env.parsed("MAINTENANCE_INTERVAL_SECS", 3600),
                ))
                .filter(|interval| !interval.is_zero()),
                job_record_retention: Duration::from_secs(
                    env.parsed("JOB_RECORD_RETENTION_DAYS", 30_u64)
                        .saturating_mul(24 * 60 * 60),
                ),
                photo_grace: Duration::from_secs(
                    env.parsed("PHOTO_CLEANUP_GRACE_SECS", 24 * 60 * 60),
                ),
            },
            worker_http_port: Some(env.parsed("WORKER_HTTP_PORT", 3001_u16))
                .filter(|&port| port != 0),
            login_failures: LoginFailureLimit {
                max: env.parsed("LOGIN_FAILURE_LIMIT", 10),
                window: Duration::from_secs(env.parsed("LOGIN_FAILURE_WINDOW_SECS", 900)),
            },
            argon2: {
                let threads = env.parsed("ARGON2_THREADS", cores()).max(1);
                Argon2Settings {
                    threads,
                    max_queue: env.parsed("ARGON2_MAX_QUEUE", 16 * threads),
                }
            },
            http: HttpLimits {
                header_timeout: Duration::from_secs(
                    env.parsed("HTTP_HEADER_TIMEOUT_SECS", 10).max(1),
                ),
                idle_timeout: Duration::from_secs(env.parsed("HTTP_IDLE_TIMEOUT_SECS", 75).max(1)),
                body_min_rate: env.parsed("HTTP_BODY_MIN_BYTES_PER_SEC", 1024),
                body_window: Duration::from_secs(env.parsed("HTTP_BODY_WINDOW_SECS", 10).max(1)),
                max_connections: env.parsed("HTTP_MAX_CONNECTIONS", 1024).max(1),
            },
            uploads: UploadLimits {
                per_hour: env.parsed("PHOTO_UPLOADS_PER_HOUR", 20),
                quota_bytes: env.parsed("PHOTO_QUOTA_BYTES", 200 * 1024 * 1024),
                max_concurrent: env.parsed("PHOTO_MAX_CONCURRENT_UPLOADS", 32).max(1),
                spool_dir: env
                    .optional("UPLOAD_SPOOL_DIR")
                    .map_or_else(std::env::temp_dir, PathBuf::from),
            },
            auth_rate_limit: env.parsed("AUTH_RATE_LIMIT", 20),
            client_ip_header: env.optional("CLIENT_IP_HEADER"),
            shutdown_timeout: Duration::from_secs(env.parsed("SHUTDOWN_TIMEOUT_SECS", 30)),
            queues,
            otlp_endpoint: env.optional("OTEL_EXPORTER_OTLP_ENDPOINT"),
            log_format: env.parsed("LOG_FORMAT", LogFormat::Json),
        };

        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError(problems))
        }
    }

    /// How `queue`'s jobs are retried, kept and consumed.
    pub fn queue(&self, queue: QueueName) -> QueueSettings {
        self.queues.get(queue)
    }
}

/// `queue`'s defaults, overridden by `QUEUE_<NAME>_<FIELD>` variables.
fn queue_settings<F: Fn(&str) -> Option<String>>(
    env: &mut Env<'_, F>,
    queue: QueueName,
) -> QueueSettings {
    let prefix = format!("QUEUE_{}_", queue.as_str().replace('-', "_").to_uppercase());
    let d = queue.default_settings();
    let key = |field: &str| format!("{prefix}{field}");
    let millis = |env: &mut Env<'_, F>, field: &str, default: Duration| {
        Duration::from_millis(env.parsed(&key(field), crate::millis(default)).max(1))
    };
    let secs = |env: &mut Env<'_, F>, field: &str, default: Duration| {
        Duration::from_secs(env.parsed(&key(field), default.as_secs()))
    };
    let rate_max = env.parsed(&key("RATE_MAX"), d.rate_limit.map_or(0, |limit| limit.max));
    let rate_per = millis(
        env,
        "RATE_PER_MS",
        d.rate_limit
            .map_or(Duration::from_secs(1), |limit| limit.per),
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
        keep_completed: secs(env, "KEEP_COMPLETED_SECS", d.keep_completed),
        keep_completed_count: env.parsed(&key("KEEP_COMPLETED_COUNT"), d.keep_completed_count),
        keep_failed: secs(env, "KEEP_FAILED_SECS", d.keep_failed),
        lock_duration: millis(env, "LOCK_DURATION_MS", d.lock_duration),
        stalled_interval: millis(env, "STALLED_INTERVAL_MS", d.stalled_interval),
        timeout: Duration::from_secs(env.parsed(&key("TIMEOUT_SECS"), d.timeout.as_secs()).max(1)),
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

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|key| vars.get(key).cloned())
    }

    #[test]
    fn defaults_apply_when_only_the_database_is_given() {
        let s = settings(&[("DATABASE_URL", "postgres://localhost/app")]).expect("valid");
        assert_eq!(s.redis_url.expose_secret(), "redis://127.0.0.1:6379");
        assert_eq!((s.host.as_str(), s.port), ("0.0.0.0", 3000));
        assert_eq!(s.queue_prefix, "bull");
        assert_eq!(s.shutdown_timeout, Duration::from_secs(30));
        assert!(s.smtp_url.is_none());
        assert_eq!(s.log_format, LogFormat::Json);
    }

    #[test]
    fn abuse_limits_have_their_documented_defaults() {
        let s = settings(&[("DATABASE_URL", "postgres://localhost/app")]).expect("valid");
        assert_eq!(s.http.header_timeout, Duration::from_secs(10));
        assert_eq!(s.http.idle_timeout, Duration::from_secs(75));
        assert_eq!(
            (s.http.body_min_rate, s.http.body_window),
            (1024, Duration::from_secs(10))
        );
        assert_eq!(s.http.max_connections, 1024);
        assert_eq!(s.argon2.threads, cores());
        assert_eq!(s.argon2.max_queue, 16 * cores());
        assert_eq!(
            s.login_failures,
            LoginFailureLimit {
                max: 10,
                window: Duration::from_secs(900)
            }
        );
        assert_eq!(s.uploads.per_hour, 20);
        assert_eq!(s.uploads.quota_bytes, 200 * 1024 * 1024);
        assert_eq!(s.uploads.max_concurrent, 32);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let error = settings(&[("PORT", "eighty"), ("SHUTDOWN_TIMEOUT_SECS", "-1")])
            .expect_err("three problems");
        let message = error.to_string();
        assert!(message.contains("DATABASE_URL is required"), "{message}");
        assert!(message.contains("PORT=\"eighty\" is invalid"), "{message}");
        assert!(message.contains("SHUTDOWN_TIMEOUT_SECS"), "{message}");
    }

    #[test]
    fn per_queue_settings_are_read_from_the_queue_name() {
        let s = settings(&[
            ("DATABASE_URL", "postgres://localhost/app"),
            ("QUEUE_WELCOME_EMAIL_CONCURRENCY", "3"),
            ("QUEUE_WELCOME_EMAIL_LOCK_DURATION_MS", "2000"),
            ("QUEUE_WELCOME_EMAIL_ATTEMPTS", "2"),
            ("QUEUE_WELCOME_EMAIL_RATE_MAX", "1"),
        ])
        .expect("valid");
        let queue = s.queue(QueueName::WelcomeEmail);
        let defaults = QueueName::WelcomeEmail.default_settings();
        assert_eq!(queue.concurrency, 3);
        assert_eq!(queue.attempts, 2);
        assert_eq!(queue.lock_duration, Duration::from_secs(2));
        assert_eq!(
            queue.rate_limit,
            Some(RateLimit {
                max: 1,
                per: Duration::from_secs(1)
            })
        );
        assert_eq!(queue.stalled_interval, defaults.stalled_interval);
        assert_eq!(queue.keep_failed, defaults.keep_failed);
    }

    #[test]
    fn public_url_loses_its_trailing_slash() {
        let s = settings(&[
            ("DATABASE_URL", "postgres://localhost/app"),
            ("PUBLIC_URL", "https://app.example.com/"),
        ])
        .expect("valid");
        assert_eq!(s.public_url, "https://app.example.com");
    }

    #[test]
    fn cors_origins_are_a_list_of_exact_origins_or_a_star() {
        let origins = |raw: &str| raw.parse::<CorsOrigins>();
        assert_eq!(origins(""), Ok(CorsOrigins::SameOrigin));
        assert_eq!(origins(" * "), Ok(CorsOrigins::Any));
        assert_eq!(
            origins("https://App.example.com/, http://localhost:5173"),
            Ok(CorsOrigins::List(vec![
                "https://app.example.com".into(),
                "http://localhost:5173".into()
            ]))
        );
        for wrong in [
            "app.example.com",
            "https://app.example.com/path",
            "ftp://x",
            "*, https://a.io",
        ] {
            assert!(origins(wrong).is_err(), "{wrong} was accepted");
        }
    }

    #[test]
    fn a_malformed_cors_origin_is_reported_at_start() {
        let error = settings(&[
            ("DATABASE_URL", "postgres://localhost/app"),
            ("CORS_ALLOWED_ORIGINS", "https://ok.io, not-an-origin"),
        ])
        .expect_err("refused");
        assert!(
            error.to_string().contains("CORS_ALLOWED_ORIGINS"),
            "{error}"
        );
    }

    /// `.env.example` promises that any line can be uncommented as it is:
    /// for `scripts/dev`, which sources it with bash, and for the binaries,
    /// which read it with dotenvy.
    #[test]
    fn every_setting_in_env_example_can_be_uncommented_as_it_is() {
        let example =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.env.example"))
                .expect("the example file");
        let uncommented: String = example
            .lines()
            .filter_map(|line| line.strip_prefix("# "))
            .filter(|line| {
                line.split_once('=').is_some_and(|(key, _)| {
                    !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                })
            })
            .map(|line| format!("{line}\n"))
            .collect();
        assert!(uncommented.lines().count() > 40, "found the settings");
        let dir = std::env::temp_dir().join(format!("env-example-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(".env");
        std::fs::write(&path, &uncommented).expect("written");

        let sourced = std::process::Command::new("bash")
            .arg("-c")
            .arg("set -euo pipefail; set -a; source \"$1\"; printf %s \"$MAIL_FROM\"")
            .arg("bash")
            .arg(&path)
            .output()
            .expect("bash runs");
        assert!(
            sourced.status.success(),
            "bash: {}",
            String::from_utf8_lossy(&sourced.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&sourced.stdout),
            "Acme <hello@acme.test>"
        );

        let vars: HashMap<String, String> = dotenvy::from_path_iter(&path)
            .expect("dotenvy opens it")
            .collect::<Result<_, _>>()
            .expect("dotenvy parses every line");
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(vars["MAIL_FROM"], "Acme <hello@acme.test>");
        Settings::from_lookup(|key| vars.get(key).cloned()).expect("every example value is valid");
    }
}
