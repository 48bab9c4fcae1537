//! What every job handler can reach, built once at start-up.

use std::sync::Arc;
use std::time::Duration;

use platform::config::{
    LinkSettings, MaintenanceSettings, PhotoSettings, ProviderSettings, Settings,
};
use queue::JobQueues;
use queue::feed::{Change, Publisher};
use sqlx::PgPool;
use storage::Storage;
use store::unsubscribe::UnsubscribeKey;

use crate::budget::Budgets;
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
    /// What photos may cost to decode.
    pub photos: PhotoSettings,
    /// Stripe, Slack, and how long a queue pauses when one refuses our
    /// credentials.
    pub providers: ProviderSettings,
    /// The links in emails: their base, and how long a token in one works.
    pub links: LinkSettings,
    /// For third-party APIs.
    pub http: reqwest::Client,
    /// Queue handles, to pause a queue a provider asked us to slow down on.
    pub queues: Arc<JobQueues>,
    /// Each provider's rate budget, taken before every call to it.
    pub budgets: Budgets,
    /// Tells every api instance of the job records this worker wrote.
    pub feed: Publisher,
    /// What the maintenance tasks keep and for how long.
    pub maintenance: MaintenanceSettings,
    /// Signs the unsubscribe links of product mail; `None` sends none.
    pub unsubscribe: Option<UnsubscribeKey>,
}

impl JobContext {
    /// Builds everything handlers need; fails on bad configuration, not later.
    pub fn build(settings: &Settings) -> anyhow::Result<Self> {
        let queues = Arc::new(JobQueues::new(&settings.redis, settings.queues));
        let budgets = Budgets::new(queues.clone(), settings.providers.clone());
        Ok(Self {
            maintenance: settings.maintenance,
            pool: store::db::pool(&settings.database)?,
            mailer: Mailer::from_settings(&settings.mail, budgets.clone())?,
            templates: Templates::load()?,
            guide_renderer: Arc::new(GuideRenderer::load()?),
            storage: Storage::from_settings(&settings.storage)?,
            photos: settings.photos,
            providers: settings.providers.clone(),
            links: settings.links.clone(),
            http: provider_client()?,
            feed: Publisher::spawn(queues.clone()),
            queues,
            budgets,
            unsubscribe: settings
                .mail
                .unsubscribe_secret
                .as_ref()
                .map(UnsubscribeKey::new),
        })
    }
}

impl JobContext {
    /// `job`'s record changed: every api instance forgets what it knew of it.
    pub fn changed(&self, job: uuid::Uuid) {
        self.feed.publish(Change::Job(job));
    }
}

/// The client third-party APIs (Stripe, Slack) are called with: pooled,
/// with timeouts so a hung provider fails an attempt instead of holding a
/// worker slot for ever.
fn provider_client() -> anyhow::Result<reqwest::Client> {
    platform::http::builder()?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .user_agent(concat!("acme-worker/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| anyhow::anyhow!("cannot build the HTTP client: {error}"))
}
