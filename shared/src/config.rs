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

use crate::jobs::QueueName;

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
    /// Development mailbox used when no SMTP server is configured (`MAILBOX_DIR`).
    pub mailbox_dir: PathBuf,
    /// BullMQ key prefix (`QUEUE_PREFIX`); `{bull}` keeps a queue in one Redis Cluster slot.
    pub queue_prefix: String,
    /// Bearer token for the operator endpoints; `None` disables them (`ADMIN_TOKEN`).
    pub admin_token: Option<SecretString>,
    /// How long a stopping worker lets in-flight jobs finish (`SHUTDOWN_TIMEOUT_SECS`).
    pub shutdown_timeout: Duration,
    /// How a worker process consumes each queue (`QUEUE_<NAME>_…`).
    pub queues: HashMap<QueueName, QueueSettings>,
    /// `json` for log shippers, `pretty` for humans (`LOG_FORMAT`).
    pub log_format: LogFormat,
}

/// How one worker process consumes one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// Jobs run at once (`QUEUE_<NAME>_CONCURRENCY`).
    pub concurrency: usize,
    /// How long a job's lock lasts without renewal; a worker that dies
    /// holding it leaves the job to others after this (`QUEUE_<NAME>_LOCK_DURATION_MS`).
    pub lock_duration: Duration,
    /// How often this worker looks for jobs whose lock expired
    /// (`QUEUE_<NAME>_STALLED_INTERVAL_MS`).
    pub stalled_interval: Duration,
}

impl QueueSettings {
    /// The defaults for `queue`: BullMQ's 30 s lock and stalled check, and
    /// the queue's own concurrency.
    pub const fn defaults(queue: QueueName) -> Self {
        Self {
            concurrency: queue.default_concurrency(),
            lock_duration: Duration::from_secs(30),
            stalled_interval: Duration::from_secs(30),
        }
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
        let queues = QueueName::ALL
            .iter()
            .map(|&queue| {
                let prefix = format!("QUEUE_{}_", queue.as_str().replace('-', "_").to_uppercase());
                let defaults = QueueSettings::defaults(queue);
                let millis = |env: &mut Env<'_, _>, name: &str, default: Duration| {
                    let default = u64::try_from(default.as_millis()).unwrap_or(u64::MAX);
                    Duration::from_millis(env.parsed(&format!("{prefix}{name}"), default).max(1))
                };
                let settings = QueueSettings {
                    concurrency: env
                        .parsed(&format!("{prefix}CONCURRENCY"), defaults.concurrency)
                        .max(1),
                    lock_duration: millis(&mut env, "LOCK_DURATION_MS", defaults.lock_duration),
                    stalled_interval: millis(
                        &mut env,
                        "STALLED_INTERVAL_MS",
                        defaults.stalled_interval,
                    ),
                };
                (queue, settings)
            })
            .collect();
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
            mailbox_dir: PathBuf::from(env.or("MAILBOX_DIR", ".dev/mailbox")),
            queue_prefix: env.or("QUEUE_PREFIX", "bull"),
            admin_token: env.optional("ADMIN_TOKEN").map(SecretString::from),
            shutdown_timeout: Duration::from_secs(env.parsed("SHUTDOWN_TIMEOUT_SECS", 30)),
            queues,
            log_format: env.parsed("LOG_FORMAT", LogFormat::Json),
        };

        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError(problems))
        }
    }

    /// How a worker process consumes `queue`.
    pub fn queue(&self, queue: QueueName) -> QueueSettings {
        self.queues
            .get(&queue)
            .copied()
            .unwrap_or_else(|| QueueSettings::defaults(queue))
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
        ])
        .expect("valid");
        let queue = s.queue(QueueName::WelcomeEmail);
        assert_eq!(queue.concurrency, 3);
        assert_eq!(queue.lock_duration, Duration::from_secs(2));
        assert_eq!(queue.stalled_interval, Duration::from_secs(30));
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
}
