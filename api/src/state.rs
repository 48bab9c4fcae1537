//! What every handler can reach.

use std::sync::Arc;

use axum::http::HeaderName;
use shared::config::{HttpLimits, LoginFailureLimit, UploadLimits};
use shared::queue::JobQueues;
use shared::storage::Storage;
use sqlx::PgPool;

use crate::passwords::Passwords;
use crate::rate_limit::RateLimiter;
use crate::token_cache::{TokenCache, TokenHash};

/// Shared, cheaply clonable application state.
#[derive(Clone)]
pub struct AppState {
    /// Postgres: users, tokens and the job records.
    pub pool: PgPool,
    /// The BullMQ queues jobs are handed to after commit.
    pub queues: Arc<JobQueues>,
    /// Uploaded photos and what the jobs produced (photo sizes, guides).
    pub storage: Storage,
    /// Largest photo upload accepted, in bytes (`PHOTO_MAX_BYTES`).
    pub photo_max_bytes: u64,
    /// Largest photo accepted, in pixels (`PHOTO_MAX_PIXELS`).
    pub photo_max_pixels: u64,
    /// Most bytes one photo's decoder may hold (`PHOTO_MAX_DECODE_BYTES`).
    pub photo_max_decode_bytes: u64,
    /// Connection and body limits (timeouts, body pace, connection cap).
    pub http: HttpLimits,
    /// Per-account and per-instance upload limits.
    pub upload_limits: Arc<UploadLimits>,
    /// Uploads in progress on this instance (`PHOTO_MAX_CONCURRENT_UPLOADS`).
    pub upload_slots: Arc<tokio::sync::Semaphore>,
    /// Argon2 hashing threads and their bounded queue.
    pub passwords: Passwords,
    /// Failed logins allowed per account, from any address.
    pub login_failures: LoginFailureLimit,
    /// Recently verified bearer tokens.
    pub tokens: Arc<TokenCache>,
    /// Limits signups and logins per client; `None` when disabled.
    pub auth_limiter: Option<Arc<RateLimiter>>,
    /// Where a trusted proxy puts the client address (`CLIENT_IP_HEADER`).
    pub client_ip_header: Option<HeaderName>,
    /// SHA-256 of `ADMIN_TOKEN`; `None` disables the admin endpoints.
    pub admin_token_hash: Option<TokenHash>,
    /// Signs the dashboard's session cookies; `None` without `ADMIN_TOKEN`.
    pub admin_session_key: Option<Arc<crate::admin_session::SessionKey>>,
    /// Cookies get `Secure` when `PUBLIC_URL` is https.
    pub secure_cookies: bool,
    /// SHA-256 of `METRICS_TOKEN`; `None` leaves `/metrics` open.
    pub metrics_token_hash: Option<TokenHash>,
    /// The web app's Content-Security-Policy (images may come from S3).
    pub app_policy: axum::http::HeaderValue,
    /// Base of the URLs we return (`PUBLIC_URL`), without a trailing slash.
    pub public_url: Arc<str>,
}

impl AppState {
    /// The URL a client polls for the status of `job_id`.
    pub fn job_status_url(&self, job_id: uuid::Uuid) -> String {
        format!("{}/api/jobs/{job_id}", self.public_url)
    }
}
