//! What every job handler can reach, built once at start-up.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use shared::config::Settings;
use shared::queue::JobQueues;
use shared::storage::Storage;
use sqlx::PgPool;

use crate::email::{Mailer, Templates};
use crate::pdf::GuideRenderer;

/// Shared by all handlers of all queues in this process.
pub struct JobContext {
    /// Postgres: users and job records.
    pub pool: PgPool,
    /// Email delivery.
    pub mailer: Mailer,
    /// Email templates.
    pub templates: Templates,
    /// The onboarding guide's template and fonts, shared with blocking threads.
    pub guide_renderer: Arc<GuideRenderer>,
    /// Where uploads are read from and job output (PDFs, photos) goes.
    pub storage: Storage,
    /// Largest photo decoded, in pixels (`PHOTO_MAX_PIXELS`).
    pub photo_max_pixels: u64,
    /// Most bytes one photo's decoder may hold (`PHOTO_MAX_DECODE_BYTES`).
    pub photo_max_decode_bytes: u64,
    /// How long a queue pauses when a provider refuses our credentials.
    pub config_fault_pause: Duration,
    /// Base for links in emails (`PUBLIC_URL`).
    pub public_url: String,
    /// For third-party APIs.
    pub http: reqwest::Client,
    /// Queue handles, to pause a queue a provider asked us to slow down on.
    pub queues: JobQueues,
    /// Slack incoming webhook; `None` skips the announcements.
    pub slack_webhook_url: Option<SecretString>,
    /// What the maintenance tasks keep and for how long.
    pub maintenance: shared::config::MaintenanceSettings,
    /// Stripe credentials and endpoint.
    pub stripe: Stripe,
}

/// Where and how to reach Stripe.
pub struct Stripe {
    /// `None`: the stripe-customer job records a skip instead of calling Stripe.
    pub secret_key: Option<SecretString>,
    /// `https://api.stripe.com`, or a mock in tests.
    pub api_base: String,
}

impl JobContext {
    /// Builds everything handlers need; fails on bad configuration, not later.
    pub fn build(settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            maintenance: settings.maintenance,
            pool: shared::db::pool(settings)?,
            mailer: Mailer::from_settings(settings)?,
            templates: Templates::load()?,
            guide_renderer: Arc::new(GuideRenderer::load()?),
            storage: Storage::from_settings(settings)?,
            photo_max_pixels: settings.photo_max_pixels,
            photo_max_decode_bytes: settings.photo_max_decode_bytes,
            config_fault_pause: settings.config_fault_pause,
            public_url: settings.public_url.clone(),
            http: provider_client()?,
            queues: JobQueues::new(settings),
            slack_webhook_url: settings.slack_webhook_url.clone(),
            stripe: Stripe {
                secret_key: settings.stripe_secret_key.clone(),
                api_base: settings.stripe_api_base.clone(),
            },
        })
    }
}

/// The client third-party APIs (Stripe, Slack) are called with: pooled,
/// with timeouts so a hung provider fails an attempt instead of holding a
/// worker slot for ever.
fn provider_client() -> anyhow::Result<reqwest::Client> {
    shared::http::builder()?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .user_agent(concat!("acme-worker/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| anyhow::anyhow!("cannot build the HTTP client: {error}"))
}
