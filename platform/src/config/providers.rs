//! Third-party services: Stripe, Slack and the mail relay, and the rate
//! budget each of them allows us.

use std::time::Duration;

use catalogue::RateLimit;

use secrecy::SecretString;

use super::variables::{BaseUrl, Parsed, SECOND, Secret, Secs, Variable as _, variables};

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
    /// Stripe calls a second, all queues and workers together
    /// (`STRIPE_RATE_LIMIT`): Stripe allows 100 in live mode, 25 in test
    /// mode, and answers 429 beyond.
    pub stripe_rate_limit: u64,
    /// Slack messages a second, all queues and workers together
    /// (`SLACK_RATE_LIMIT`): an incoming webhook takes about one.
    pub slack_rate_limit: u64,
    /// Emails a second handed to the SMTP relay, all queues and workers
    /// together (`MAIL_RATE_LIMIT`): the relay's sending rate.
    pub mail_rate_limit: u64,
}

/// A service whose calls share one rate budget, whichever queue or worker
/// makes them: its limit is the provider's, not a queue's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// The Stripe API (`stripe-customer`, `stripe-event`, `account-deletion`).
    Stripe,
    /// The Slack incoming webhook (`slack-notify`).
    Slack,
    /// The SMTP relay (the email queues).
    Mail,
}

impl Provider {
    /// Every provider, in a stable order.
    pub const ALL: &'static [Provider] = &[Provider::Stripe, Provider::Slack, Provider::Mail];

    /// Its name in Redis keys, metrics labels and the dashboard.
    pub const fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::Slack => "slack",
            Provider::Mail => "mail",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ProviderSettings {
    /// How many calls `provider` takes per window, from every queue and
    /// worker together.
    pub fn budget(&self, provider: Provider) -> RateLimit {
        let max = match provider {
            Provider::Stripe => self.stripe_rate_limit,
            Provider::Slack => self.slack_rate_limit,
            Provider::Mail => self.mail_rate_limit,
        };
        RateLimit {
            max,
            per: Duration::from_secs(1),
        }
    }
}

variables! {
    ProviderSettings {
        stripe_secret_key: Secret("STRIPE_SECRET_KEY"),
        stripe_api_base: BaseUrl("STRIPE_API_BASE", "https://api.stripe.com"),
        stripe_webhook_secret: Secret("STRIPE_WEBHOOK_SECRET"),
        stripe_webhook_tolerance: Secs("STRIPE_WEBHOOK_TOLERANCE_SECS", 300).at_least(SECOND),
        stripe_webhook_max_bytes: Parsed("STRIPE_WEBHOOK_MAX_BYTES", 256 * 1024).at_least(1024),
        slack_webhook_url: Secret("SLACK_WEBHOOK_URL"),
        config_fault_pause: Secs("CONFIG_FAULT_PAUSE_SECS", 300).at_least(SECOND),
        stripe_rate_limit: Parsed("STRIPE_RATE_LIMIT", 25).at_least(1),
        slack_rate_limit: Parsed("SLACK_RATE_LIMIT", 1).at_least(1),
        mail_rate_limit: Parsed("MAIL_RATE_LIMIT", 500).at_least(1),
    }
}
