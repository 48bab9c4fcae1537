//! Writing the settings back as variables, for child processes.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::read::{DAY, SECOND};
use super::settings::*;
use catalogue::{QueueName, QueueSettings};

impl Settings {
    /// Every variable, with the value that reads back as these settings
    /// (an empty value is the same as unset): what a child process (a test's
    /// `worker` binary) is started with. Secrets are in it, exposed.
    pub fn to_env(&self) -> Vec<(String, String)> {
        let Settings {
            database,
            redis,
            server,
            auth,
            photos,
            storage,
            mail,
            providers,
            queues,
            worker,
            maintenance,
            alerts,
            telemetry,
        } = self;
        let secret = |value: &Option<SecretString>| {
            value
                .as_ref()
                .map_or_else(String::new, |secret| secret.expose_secret().to_owned())
        };
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let secs = |duration: &Duration| duration.as_secs().to_string();
        let mut vars: Vec<(String, String)> = [
            ("DATABASE_URL", database.url.expose_secret().to_owned()),
            (
                "DATABASE_MAX_CONNECTIONS",
                database.max_connections.to_string(),
            ),
            ("REDIS_URL", redis.url.expose_secret().to_owned()),
            ("REDIS_CLUSTER_NODES", secret(&redis.cluster_nodes)),
            ("QUEUE_PREFIX", redis.queue_prefix.clone()),
            ("OUTBOX_REDELIVER_AFTER_SECS", secs(&redis.redeliver_after)),
            ("HOST", server.host.clone()),
            ("PORT", server.port.to_string()),
            ("PUBLIC_URL", server.public_url.clone()),
            (
                "HTTP_HEADER_TIMEOUT_SECS",
                secs(&server.http.header_timeout),
            ),
            ("HTTP_IDLE_TIMEOUT_SECS", secs(&server.http.idle_timeout)),
            (
                "HTTP_BODY_MIN_BYTES_PER_SEC",
                server.http.body_min_rate.to_string(),
            ),
            ("HTTP_BODY_WINDOW_SECS", secs(&server.http.body_window)),
            (
                "HTTP_MAX_CONNECTIONS",
                server.http.max_connections.to_string(),
            ),
            (
                "HTTP_FIRST_BYTE_TIMEOUT_SECS",
                secs(&server.http.first_byte_timeout),
            ),
            (
                "HTTP_MAX_CONNECTIONS_PER_CLIENT",
                server.http.max_connections_per_client.to_string(),
            ),
            ("CORS_ALLOWED_ORIGINS", server.cors_allowed_origins.to_env()),
            ("CLIENT_IP_HEADER", text(&server.client_ip_header)),
            ("METRICS_TOKEN", secret(&server.metrics_token)),
            ("AUTH_RATE_LIMIT", auth.rate_limit.to_string()),
            ("LOGIN_FAILURE_LIMIT", auth.login_failures.max.to_string()),
            (
                "LOGIN_FAILURE_WINDOW_SECS",
                secs(&auth.login_failures.window),
            ),
            ("PASSWORD_RESET_TTL_SECS", secs(&auth.password_reset_ttl)),
            (
                "EMAIL_VERIFICATION_TTL_SECS",
                secs(&auth.email_verification_ttl),
            ),
            ("ARGON2_THREADS", auth.argon2.threads.to_string()),
            ("ARGON2_MAX_QUEUE", auth.argon2.max_queue.to_string()),
            ("ADMIN_TOKEN", secret(&auth.admin_token)),
            ("PHOTO_MAX_BYTES", photos.max_bytes.to_string()),
            ("PHOTO_MAX_PIXELS", photos.max_pixels.to_string()),
            (
                "PHOTO_MAX_DECODE_BYTES",
                photos.max_decode_bytes.to_string(),
            ),
            (
                "PHOTO_UPLOADS_PER_HOUR",
                photos.uploads.per_hour.to_string(),
            ),
            ("PHOTO_QUOTA_BYTES", photos.uploads.quota_bytes.to_string()),
            (
                "PHOTO_MAX_CONCURRENT_UPLOADS",
                photos.uploads.max_concurrent.to_string(),
            ),
            (
                "PHOTO_MAX_CONCURRENT_UPLOADS_PER_ACCOUNT",
                photos.uploads.max_concurrent_per_account.to_string(),
            ),
            ("STORAGE_URL", storage.url.clone()),
            ("AWS_ENDPOINT", text(&storage.s3.endpoint)),
            ("AWS_REGION", text(&storage.s3.region)),
            ("AWS_ACCESS_KEY_ID", text(&storage.s3.access_key_id)),
            (
                "AWS_SECRET_ACCESS_KEY",
                secret(&storage.s3.secret_access_key),
            ),
            ("AWS_ALLOW_HTTP", storage.s3.allow_http.to_string()),
            ("UPLOAD_SPOOL_DIR", storage.spool_dir.display().to_string()),
            ("SMTP_URL", secret(&mail.smtp_url)),
            ("MAIL_FROM", mail.from.clone()),
            ("MAILBOX_DIR", mail.mailbox_dir.display().to_string()),
            ("FOLLOW_UP_DELAY_SECS", secs(&mail.follow_up_delay)),
            ("UNSUBSCRIBE_SECRET", secret(&mail.unsubscribe_secret)),
            ("STRIPE_SECRET_KEY", secret(&providers.stripe_secret_key)),
            ("STRIPE_API_BASE", providers.stripe_api_base.clone()),
            (
                "STRIPE_WEBHOOK_SECRET",
                secret(&providers.stripe_webhook_secret),
            ),
            (
                "STRIPE_WEBHOOK_TOLERANCE_SECS",
                secs(&providers.stripe_webhook_tolerance),
            ),
            (
                "STRIPE_WEBHOOK_MAX_BYTES",
                providers.stripe_webhook_max_bytes.to_string(),
            ),
            ("SLACK_WEBHOOK_URL", secret(&providers.slack_webhook_url)),
            (
                "CONFIG_FAULT_PAUSE_SECS",
                secs(&providers.config_fault_pause),
            ),
            (
                "WORKER_HTTP_PORT",
                worker.http_port.unwrap_or(0).to_string(),
            ),
            ("SHUTDOWN_TIMEOUT_SECS", secs(&worker.shutdown_timeout)),
            (
                "MAINTENANCE_INTERVAL_SECS",
                maintenance
                    .interval
                    .map_or_else(|| "0".to_owned(), |i| secs(&i)),
            ),
            (
                "JOB_RECORD_RETENTION_DAYS",
                (maintenance.job_record_retention.as_secs() / DAY.as_secs()).to_string(),
            ),
            ("PHOTO_CLEANUP_GRACE_SECS", secs(&maintenance.photo_grace)),
            ("ALERT_SLACK_WEBHOOK_URL", secret(&alerts.slack_webhook_url)),
            ("ALERT_EMAIL_TO", alerts.email_to.join(",")),
            ("ALERT_CHECK_INTERVAL_SECS", secs(&alerts.check_interval)),
            ("ALERT_NO_CONSUMER_SECS", secs(&alerts.no_consumer)),
            ("ALERT_OLDEST_WAITING_SECS", secs(&alerts.oldest_waiting)),
            ("ALERT_FAILED_JOBS", alerts.failed_jobs.to_string()),
            ("ALERT_FAILED_RATIO", alerts.failed_ratio.to_string()),
            ("ALERT_FAILURE_WINDOW_SECS", secs(&alerts.failure_window)),
            ("ALERT_OUTBOX_SECS", secs(&alerts.outbox)),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                text(&telemetry.otlp_endpoint),
            ),
            ("LOG_FORMAT", telemetry.log_format.as_str().to_owned()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        for &queue in QueueName::ALL {
            vars.extend(queue_env(queue, &queues.get(queue)));
        }
        vars
    }
}

/// The `QUEUE_<NAME>_<FIELD>` variables that read back as `settings`.
fn queue_env(queue: QueueName, settings: &QueueSettings) -> Vec<(String, String)> {
    let prefix = queue.env_prefix();
    let ms = |duration: Duration| crate::millis(duration).to_string();
    let rate = settings.rate_limit;
    [
        ("CONCURRENCY", settings.concurrency.to_string()),
        ("ATTEMPTS", settings.attempts.to_string()),
        ("BACKOFF_MS", ms(settings.backoff)),
        ("RATE_MAX", rate.map_or(0, |limit| limit.max).to_string()),
        ("RATE_PER_MS", ms(rate.map_or(SECOND, |limit| limit.per))),
        (
            "KEEP_COMPLETED_SECS",
            settings.keep_completed.as_secs().to_string(),
        ),
        (
            "KEEP_COMPLETED_COUNT",
            settings.keep_completed_count.to_string(),
        ),
        (
            "KEEP_FAILED_SECS",
            settings.keep_failed.as_secs().to_string(),
        ),
        ("LOCK_DURATION_MS", ms(settings.lock_duration)),
        ("STALLED_INTERVAL_MS", ms(settings.stalled_interval)),
        ("TIMEOUT_SECS", settings.timeout.as_secs().to_string()),
    ]
    .into_iter()
    .map(|(field, value)| (format!("{prefix}{field}"), value))
    .collect()
}
