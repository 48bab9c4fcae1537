//! The settings, grouped by concern. Each field names its variable.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::values::{CorsOrigins, LogFormat};
use catalogue::{QueueName, QueueSettings, QueueTable};

/// Everything either binary needs to know about its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Postgres.
    pub database: DatabaseSettings,
    /// Redis, where the queues live.
    pub redis: RedisSettings,
    /// The api's HTTP server: address, links, limits, browsers, scrapers.
    pub server: ServerSettings,
    /// Sign-up, login and operator access.
    pub auth: AuthSettings,
    /// Profile photos: what is accepted, and per-account limits.
    pub photos: PhotoSettings,
    /// Where files are kept.
    pub storage: StorageSettings,
    /// Outgoing email.
    pub mail: MailSettings,
    /// Third-party services (Stripe, Slack).
    pub providers: ProviderSettings,
    /// How each queue is retried, kept and consumed (`QUEUE_<NAME>_…`).
    pub queues: QueueTable,
    /// The worker process.
    pub worker: WorkerSettings,
    /// Housekeeping: how often, and what is old enough to go.
    pub maintenance: MaintenanceSettings,
    /// Telling the team when a queue stops moving.
    pub alerts: AlertSettings,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
}

impl Settings {
    /// How `queue`'s jobs are retried, kept and consumed.
    pub fn queue(&self, queue: QueueName) -> QueueSettings {
        self.queues.get(queue)
    }
}

/// Postgres.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// Connection string (`DATABASE_URL`, required).
    pub url: SecretString,
    /// Upper bound of the pool (`DATABASE_MAX_CONNECTIONS`).
    pub max_connections: u32,
}

/// Redis, where the BullMQ queues live.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// Connection URL (`REDIS_URL`).
    pub url: SecretString,
    /// Seed nodes of a Redis Cluster (`REDIS_CLUSTER_NODES`, comma-separated
    /// `redis://` or `rediss://` URLs, which may hold passwords); when set,
    /// `url` is not used.
    pub cluster_nodes: Option<SecretString>,
    /// What our Redis keys start with: BullMQ's prefix (`QUEUE_PREFIX`).
    /// On a cluster, see [`RedisSettings::bullmq_name`].
    pub queue_prefix: String,
    /// A job Redis should hold that has not run this long after it was
    /// handed over (or fell due) is handed over again, in case Redis lost it
    /// (`OUTBOX_REDELIVER_AFTER_SECS`).
    pub redeliver_after: Duration,
}

impl RedisSettings {
    /// Whether the queues live on a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster_nodes.is_some()
    }

    /// The seed nodes of the cluster, if there is one.
    pub fn cluster_node_urls(&self) -> Vec<String> {
        use secrecy::ExposeSecret as _;
        self.cluster_nodes
            .as_ref()
            .map(|nodes| {
                nodes
                    .expose_secret()
                    .split(',')
                    .map(str::trim)
                    .filter(|node| !node.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The name BullMQ knows `queue` by. On a single Redis it is the
    /// queue's own (keys `bull:welcome-email:wait`, as Node BullMQ writes
    /// them). On a cluster every key of a queue must share a hash slot,
    /// since BullMQ's scripts touch several at once, and each queue should
    /// have its own slot so the queues spread over the shards: the name is
    /// wrapped in braces, a hash tag (`{welcome-email}`, keys
    /// `bull:{welcome-email}:wait`), as BullMQ documents for clusters.
    /// Node tools open the queue by this name.
    pub fn bullmq_name(&self, queue: QueueName) -> String {
        if self.is_cluster() {
            format!("{{{queue}}}")
        } else {
            queue.as_str().to_owned()
        }
    }
}

/// The api's HTTP server.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Address the api listens on (`HOST`).
    pub host: String,
    /// Port the api listens on (`PORT`).
    pub port: u16,
    /// Base of every link we hand out, without a trailing slash
    /// (`PUBLIC_URL`); emails link to it too.
    pub public_url: String,
    /// Connection and body limits against slow or greedy clients.
    pub http: HttpLimits,
    /// Pages on other origins allowed to call the api from a browser
    /// (`CORS_ALLOWED_ORIGINS`).
    pub cors_allowed_origins: CorsOrigins,
    /// Header carrying the client address, appended by a trusted reverse
    /// proxy, e.g. `X-Forwarded-For`; unset: the TCP peer (`CLIENT_IP_HEADER`).
    pub client_ip_header: Option<String>,
    /// Bearer token a scraper must send to read the api's `/metrics`;
    /// `None` leaves it open (`METRICS_TOKEN`).
    pub metrics_token: Option<SecretString>,
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
    /// A new connection must send its first byte within this
    /// (`HTTP_FIRST_BYTE_TIMEOUT_SECS`): a browser's preconnect is used
    /// within seconds, a silent connection holds a slot for nothing.
    pub first_byte_timeout: Duration,
    /// Open connections per client address (an IPv6 /64) per instance; 0
    /// turns the cap off, as it is by default behind a proxy
    /// (`CLIENT_IP_HEADER`), whose address every connection has
    /// (`HTTP_MAX_CONNECTIONS_PER_CLIENT`).
    pub max_connections_per_client: usize,
}

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
    /// How long a password reset link works (`PASSWORD_RESET_TTL_SECS`).
    pub password_reset_ttl: Duration,
    /// How long an email verification link works
    /// (`EMAIL_VERIFICATION_TTL_SECS`).
    pub email_verification_ttl: Duration,
    /// Bearer token for the operator endpoints, 32 characters at least;
    /// `None` disables them (`ADMIN_TOKEN`).
    pub admin_token: Option<SecretString>,
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

/// Profile photos: what the api accepts and the worker decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhotoSettings {
    /// Largest upload accepted, in bytes (`PHOTO_MAX_BYTES`).
    pub max_bytes: u64,
    /// Largest photo accepted, in pixels (width × height), against
    /// decompression bombs (`PHOTO_MAX_PIXELS`).
    pub max_pixels: u64,
    /// Most bytes one photo's decoder may hold, judged from the file's
    /// header (`PHOTO_MAX_DECODE_BYTES`): worker memory is at most this
    /// times the image-resize concurrency, whatever is uploaded.
    pub max_decode_bytes: u64,
    /// Per-account and per-instance limits on uploads.
    pub uploads: UploadLimits,
}

/// Photo uploads: per account and per instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Uploads per account per hour; then 429 (`PHOTO_UPLOADS_PER_HOUR`, 0 = off).
    pub per_hour: u32,
    /// Bytes of photos an account may have stored, replaced ones included
    /// until they are cleaned up (`PHOTO_QUOTA_BYTES`, 0 = off).
    pub quota_bytes: u64,
    /// Uploads in progress at once on one instance; more get 503
    /// (`PHOTO_MAX_CONCURRENT_UPLOADS`).
    pub max_concurrent: usize,
    /// Uploads in progress at once per account, on all instances together;
    /// more get 429 (`PHOTO_MAX_CONCURRENT_UPLOADS_PER_ACCOUNT`, 0 = off).
    /// Without it, two accounts trickling bodies at the minimum pace hold
    /// every upload slot of an instance.
    pub max_concurrent_per_account: u32,
}

/// Where uploads and job output (photos, PDFs) are stored.
#[derive(Debug, Clone)]
pub struct StorageSettings {
    /// A folder path, a `file://` URL or `s3://bucket/prefix` (`STORAGE_URL`).
    pub url: String,
    /// S3 access when `url` is `s3://…`.
    pub s3: S3Settings,
    /// Where uploads are spooled while they arrive (`UPLOAD_SPOOL_DIR`,
    /// default: the system's temporary folder).
    pub spool_dir: PathBuf,
}

/// How to reach S3 or an S3-compatible store (the standard `AWS_*` names);
/// unset fields fall back to the AWS SDK's usual sources (instance role,
/// web identity, …).
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

/// Outgoing email.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// SMTP server; `None` writes emails to [`MailSettings::mailbox_dir`]
    /// instead (`SMTP_URL`).
    pub smtp_url: Option<SecretString>,
    /// Sender of every email (`MAIL_FROM`).
    pub from: String,
    /// Development mailbox used when no SMTP server is configured (`MAILBOX_DIR`).
    pub mailbox_dir: PathBuf,
    /// How long after an account is verified its follow-up email is due
    /// (`FOLLOW_UP_DELAY_SECS`).
    pub follow_up_delay: Duration,
    /// Signs the unsubscribe links of product mail, 32 characters at least;
    /// `None` sends no product mail (`UNSUBSCRIBE_SECRET`).
    pub unsubscribe_secret: Option<SecretString>,
}

/// Third-party services.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// Stripe API key; `None` makes the stripe-customer job a recorded
    /// no-op (`STRIPE_SECRET_KEY`).
    pub stripe_secret_key: Option<SecretString>,
    /// Stripe API base URL, without a trailing slash (`STRIPE_API_BASE`).
    pub stripe_api_base: String,
    /// The webhook endpoint's signing secret (`whsec_…`); `None` turns
    /// `POST /api/webhooks/stripe` off (`STRIPE_WEBHOOK_SECRET`).
    pub stripe_webhook_secret: Option<SecretString>,
    /// How old a signed event may be, against replays
    /// (`STRIPE_WEBHOOK_TOLERANCE_SECS`).
    pub stripe_webhook_tolerance: Duration,
    /// The largest event body taken (`STRIPE_WEBHOOK_MAX_BYTES`).
    pub stripe_webhook_max_bytes: usize,
    /// Slack incoming webhook for signup announcements; `None` skips them
    /// (`SLACK_WEBHOOK_URL`).
    pub slack_webhook_url: Option<SecretString>,
    /// How long a queue stays paused when a provider refuses our
    /// credentials (`CONFIG_FAULT_PAUSE_SECS`): its jobs wait rather than fail.
    pub config_fault_pause: Duration,
}

/// The worker process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Port of the worker's `/healthz` and `/metrics`; `None` (`0`) serves
    /// neither (`WORKER_HTTP_PORT`, default 3001).
    pub http_port: Option<u16>,
    /// How long a stopping worker lets in-flight jobs finish (`SHUTDOWN_TIMEOUT_SECS`).
    pub shutdown_timeout: Duration,
}

/// The scheduled housekeeping (the `maintenance` queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceSettings {
    /// How often each task runs; `None` (0) schedules none
    /// (`MAINTENANCE_INTERVAL_SECS`, default an hour).
    pub interval: Option<Duration>,
    /// Finished job records older than this are deleted
    /// (`JOB_RECORD_RETENTION_DAYS`, default 30; whole days).
    pub job_record_retention: Duration,
    /// Replaced and failed photos, and files no photo names, are deleted
    /// once this old (`PHOTO_CLEANUP_GRACE_SECS`, default a day).
    pub photo_grace: Duration,
}

/// Alerts: which conditions open an incident, and where the team is told.
/// Each threshold of 0 turns its condition off.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Slack incoming webhook the incidents are posted to
    /// (`ALERT_SLACK_WEBHOOK_URL`).
    pub slack_webhook_url: Option<SecretString>,
    /// Addresses (comma-separated) the incidents are emailed to, through
    /// `SMTP_URL` or the development mailbox (`ALERT_EMAIL_TO`).
    pub email_to: Vec<String>,
    /// How often the conditions are evaluated (`ALERT_CHECK_INTERVAL_SECS`).
    pub check_interval: Duration,
    /// A queue's oldest waiting job this old with no worker consuming the
    /// queue (`ALERT_NO_CONSUMER_SECS`).
    pub no_consumer: Duration,
    /// A queue's oldest waiting job this old while workers consume it: they
    /// are too slow or stuck (`ALERT_OLDEST_WAITING_SECS`).
    pub oldest_waiting: Duration,
    /// More jobs than this failed for good in a queue within
    /// [`failure_window`](Self::failure_window) (`ALERT_FAILED_JOBS`).
    pub failed_jobs: u64,
    /// A larger share of a queue's finished jobs than this failed within the
    /// window, once enough finished to judge (`ALERT_FAILED_RATIO`).
    pub failed_ratio: f64,
    /// The window failures are counted in (`ALERT_FAILURE_WINDOW_SECS`).
    pub failure_window: Duration,
    /// A job record that has not reached Redis after this long
    /// (`ALERT_OUTBOX_SECS`).
    pub outbox: Duration,
}

/// Logs and traces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetrySettings {
    /// Where traces go over OTLP/HTTP, e.g. `http://collector:4318`; `None`
    /// sends none (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub otlp_endpoint: Option<String>,
    /// `json` for log shippers, `pretty` for humans (`LOG_FORMAT`).
    pub log_format: LogFormat,
}
