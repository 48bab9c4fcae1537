//! What every handler can reach.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::http::HeaderName;
use secrecy::ExposeSecret as _;
use tokio::sync::Semaphore;

use platform::config::{
    HttpLimits, LinkSettings, LoginFailureLimit, MailSettings, PhotoSettings, ProviderSettings,
    RedisSettings, Settings,
};
use queue::{EvictionCheck, JobQueues};
use sqlx::PgPool;
use storage::Storage;
use store::unsubscribe::UnsubscribeKey;

use crate::events::Hub;
use crate::job_versions::JobVersions;
use crate::passwords::Passwords;
use crate::rate_limit::{ClientLimit, Limiter};
use crate::stripe_intake::StripeIntake;
use crate::stripe_signature::StripeWebhook;
use crate::token_cache::{TokenCache, TokenHash};
use queue::feed::Publisher;

/// Tokens the api remembers as verified (about 100 bytes each).
const TOKEN_CACHE_CAPACITY: usize = 100_000;
/// Clients a limiter tracks per window, in Redis and in each instance's
/// memory while Redis is away (about 40 bytes each).
const RATE_LIMIT_CAPACITY: usize = 100_000;
/// Failed operator authentications a client may make per window before it
/// is refused outright: enough for typos, nothing for guessing.
const ADMIN_FAILURE_LIMIT: u32 = 10;
const ADMIN_FAILURE_WINDOW: Duration = Duration::from_secs(300);

/// Shared application state: one `Arc`, so the clone axum makes for every
/// handler and extractor is one atomic increment. (Cloned field by field,
/// the pool, the storage paths and a dozen `Arc`s cost a tenth of a polled
/// request's CPU in allocations: see `docs/benchmarks.md`.)
#[derive(Clone)]
pub struct AppState(Arc<App>);

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

/// What every handler can reach, behind [`AppState`].
pub struct App {
    /// Postgres: users, tokens and the job records.
    pub pool: PgPool,
    /// The BullMQ queues jobs are handed to after commit.
    pub queues: Arc<JobQueues>,
    /// Tells every api instance of the job records this one wrote.
    pub feed: Publisher,
    /// Redis' eviction policy as `/readyz` reports it, asked at most once
    /// a second.
    pub eviction: EvictionCheck,
    /// Uploaded photos and what the jobs produced (photo sizes, guides).
    pub storage: Storage,
    /// What photos are accepted, and the per-account upload limits.
    pub photos: PhotoSettings,
    /// Connection and body limits (timeouts, body pace, connection cap).
    pub http: HttpLimits,
    /// Uploads in progress on this instance (`PHOTO_MAX_CONCURRENT_UPLOADS`).
    pub upload_slots: Arc<Semaphore>,
    /// Argon2 hashing threads and their bounded queue.
    pub passwords: Passwords,
    /// Failed logins allowed per account, from any address.
    pub login_failures: LoginFailureLimit,
    /// Recently verified bearer tokens.
    pub tokens: Arc<TokenCache>,
    /// Tags of job statuses answered here, dropped when their job changes.
    pub job_versions: JobVersions,
    /// The live event streams open here (`GET /api/me/events`).
    pub events: Arc<Hub>,
    /// Limits signups and logins per client, on all instances together.
    pub auth_limit: ClientLimit,
    /// SHA-256 of `ADMIN_TOKEN`; `None` disables the admin endpoints.
    pub admin_token_hash: Option<TokenHash>,
    /// Failed operator authentications per client, on all instances
    /// together: past the limit, every admin request from that client is
    /// refused for the window.
    pub admin_failures: Limiter,
    /// Cookies get `Secure` when `PUBLIC_URL` is https.
    pub secure_cookies: bool,
    /// SHA-256 of `METRICS_TOKEN`; `None` leaves `/metrics` open.
    pub metrics_token_hash: Option<TokenHash>,
    /// The web app's Content-Security-Policy (images may come from S3).
    pub app_policy: axum::http::HeaderValue,
    /// The base of the URLs we return (status, photos, the guide).
    pub links: LinkSettings,
    /// Redis: how long a job Redis should hold may not run before the
    /// outbox relay hands it over again.
    pub redis: RedisSettings,
    /// Checks Stripe's webhook signatures; `None` turns the webhook off.
    pub stripe_webhook: Option<StripeWebhook>,
    /// Stripe events taken in, deliveries arriving together committed
    /// together.
    pub stripe_intake: StripeIntake,
    /// Stripe: the largest webhook event taken.
    pub providers: ProviderSettings,
    /// Checks unsubscribe links; `None` when product mail is off.
    pub unsubscribe: Option<UnsubscribeKey>,
    /// Mail: when the follow-up email is due after verification (only sent
    /// with [`App::unsubscribe`]).
    pub mail: MailSettings,
}

impl AppState {
    /// The state of an api with `settings`, on `pool`. Each part of it is
    /// built from the settings group it belongs to.
    pub fn build(settings: &Settings, pool: PgPool) -> anyhow::Result<Self> {
        let Settings {
            server,
            links,
            auth,
            photos,
            storage,
            mail,
            providers,
            redis,
            queues,
            ..
        } = settings;
        let client_ip_header = server
            .client_ip_header
            .as_deref()
            .map(HeaderName::try_from)
            .transpose()
            .context("CLIENT_IP_HEADER is not a valid header name")?;
        let admin_token = auth
            .admin_token
            .as_ref()
            .map(|token| token.expose_secret().trim());
        let queues = Arc::new(JobQueues::new(redis, *queues));
        let feed = Publisher::spawn(queues.clone());
        let stripe_intake = StripeIntake::new(pool.clone(), queues.clone(), feed.clone());
        Ok(Self(Arc::new(App {
            pool,
            storage: Storage::from_settings(storage)?,
            eviction: EvictionCheck::default(),
            photos: *photos,
            http: server.http,
            upload_slots: Arc::new(Semaphore::new(photos.uploads.max_concurrent)),
            passwords: Passwords::start(&auth.argon2)
                .context("cannot start the password hashing threads")?,
            login_failures: auth.login_failures,
            tokens: Arc::new(TokenCache::new(TOKEN_CACHE_CAPACITY)),
            job_versions: JobVersions::new(server.poll_memory_max_age),
            events: Arc::new(Hub::new(settings.events)),
            feed,
            auth_limit: ClientLimit {
                limiter: (auth.rate_limit > 0).then(|| {
                    Arc::new(Limiter::shared(
                        "auth",
                        auth.rate_limit,
                        Duration::from_secs(60),
                        RATE_LIMIT_CAPACITY,
                        queues.clone(),
                    ))
                }),
                client_ip_header,
            },
            admin_token_hash: admin_token.map(crate::auth::hash_token),
            admin_failures: Limiter::shared(
                "admin-failures",
                ADMIN_FAILURE_LIMIT,
                ADMIN_FAILURE_WINDOW,
                RATE_LIMIT_CAPACITY,
                queues.clone(),
            ),
            secure_cookies: links.public_url.starts_with("https://"),
            metrics_token_hash: server
                .metrics_token
                .as_ref()
                .map(store::tokens::hash_setting),
            app_policy: crate::browser::app_policy(storage),
            links: links.clone(),
            redis: redis.clone(),
            stripe_webhook: providers
                .stripe_webhook_secret
                .as_ref()
                .map(|secret| StripeWebhook::new(secret, providers.stripe_webhook_tolerance)),
            stripe_intake,
            providers: providers.clone(),
            unsubscribe: mail.unsubscribe_secret.as_ref().map(UnsubscribeKey::new),
            mail: mail.clone(),
            queues,
        })))
    }

    /// The URL a client polls for the status of `job_id`.
    pub fn job_status_url(&self, job_id: uuid::Uuid) -> String {
        format!("{}/api/jobs/{job_id}", self.links.public_url)
    }
}
