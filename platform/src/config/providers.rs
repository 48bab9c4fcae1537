//! Third-party services: Stripe and Slack.

use std::time::Duration;

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
    }
}
