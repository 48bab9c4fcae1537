//! The job catalogue: what the API may enqueue and the worker must handle.
//!
//! Queue names are a wire contract (Node BullMQ tools and dashboards see
//! them), so they live here once, as [`QueueName`], and nowhere else as
//! strings. Payloads carry ids, not records: a job reads the current row when
//! it runs, so a retry never acts on stale data.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{QueueSettings, RateLimit};

/// Every queue, one per kind of slow work, so each has its own limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueName {
    /// Renders and sends the welcome email after signup.
    WelcomeEmail,
    /// Creates the user's Stripe customer.
    StripeCustomer,
    /// Announces the signup in Slack.
    SlackNotify,
    /// Renders the user's onboarding guide (PDF) and stores it.
    OnboardingPdf,
    /// Makes the three sizes of an uploaded profile photo.
    ImageResize,
}

impl QueueName {
    /// All queues, in a stable order.
    pub const ALL: &'static [QueueName] = &[
        QueueName::WelcomeEmail,
        QueueName::StripeCustomer,
        QueueName::SlackNotify,
        QueueName::OnboardingPdf,
        QueueName::ImageResize,
    ];

    /// The BullMQ queue name, which is also the job name.
    pub const fn as_str(self) -> &'static str {
        match self {
            QueueName::WelcomeEmail => "welcome-email",
            QueueName::StripeCustomer => "stripe-customer",
            QueueName::SlackNotify => "slack-notify",
            QueueName::OnboardingPdf => "onboarding-pdf",
            QueueName::ImageResize => "image-resize",
        }
    }

    /// Defaults for this queue; `QUEUE_<NAME>_…` variables override them.
    /// I/O-bound queues wait on the network, so they get many slots;
    /// CPU-bound ones get one per core, as more would only queue for it.
    pub fn default_settings(self) -> QueueSettings {
        /// What every queue shares unless it says otherwise: completed jobs
        /// kept a day (the durable status is in Postgres anyway), failed ones
        /// a week (the dead-letter set). A 10 s lock checked every 5 s: a job
        /// whose worker was killed runs again within about 20 s (BullMQ's
        /// 30 s and 30 s take up to 90 s), for one lock renewal per running
        /// job every 5 s. A minute per attempt is generous for a network call.
        const BASE: QueueSettings = QueueSettings {
            concurrency: 8,
            attempts: 5,
            backoff: Duration::from_secs(2),
            rate_limit: None,
            keep_completed: Duration::from_secs(24 * 60 * 60),
            keep_completed_count: 1_000,
            keep_failed: Duration::from_secs(7 * 24 * 60 * 60),
            lock_duration: Duration::from_secs(10),
            stalled_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
        };
        match self {
            QueueName::WelcomeEmail => QueueSettings {
                concurrency: 16,
                ..BASE
            },
            // Stripe answers in ~0.5 s and allows 100 requests/s; retries
            // are safe (idempotency key), so be patient through outages.
            QueueName::StripeCustomer => QueueSettings {
                attempts: 8,
                backoff: Duration::from_secs(5),
                ..BASE
            },
            // Slack allows about one message per second per webhook: a burst
            // of signups queues up instead of being rejected.
            QueueName::SlackNotify => QueueSettings {
                concurrency: 1,
                attempts: 8,
                backoff: Duration::from_secs(5),
                rate_limit: Some(RateLimit {
                    max: 1,
                    per: Duration::from_secs(1),
                }),
                ..BASE
            },
            // A guide takes milliseconds of CPU and nothing else.
            QueueName::OnboardingPdf => QueueSettings {
                concurrency: cores(),
                attempts: 3,
                ..BASE
            },
            // Decoding and resizing a photo keeps a core busy for tens of
            // milliseconds; a second job per core would only wait for it.
            // The slowest file the decode limits let through takes a few
            // seconds; 30 s is for a loaded machine, not for bombs.
            QueueName::ImageResize => QueueSettings {
                concurrency: cores(),
                attempts: 3,
                timeout: Duration::from_secs(30),
                ..BASE
            },
        }
    }
}

/// The cores this process may use; CPU-bound work (jobs that compute,
/// password hashing) gets one slot each.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QueueName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        QueueName::ALL
            .iter()
            .copied()
            .find(|queue| queue.as_str() == s)
            .ok_or_else(|| format!("unknown queue `{s}`"))
    }
}

/// A job payload: knows its queue and whose job it is.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The queue this kind of job goes to.
    const QUEUE: QueueName;

    /// The user who may see this job's status.
    fn owner(&self) -> Uuid;
}

/// Send the welcome email to a user who just signed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WelcomeEmail {
    /// The new user.
    pub user_id: Uuid,
}

impl Job for WelcomeEmail {
    const QUEUE: QueueName = QueueName::WelcomeEmail;

    fn owner(&self) -> Uuid {
        self.user_id
    }
}

/// Create the Stripe customer of a user who just signed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeCustomer {
    /// The new user.
    pub user_id: Uuid,
}

impl Job for StripeCustomer {
    const QUEUE: QueueName = QueueName::StripeCustomer;

    fn owner(&self) -> Uuid {
        self.user_id
    }
}

/// Announce a new user in the team's Slack channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackNotify {
    /// The new user.
    pub user_id: Uuid,
}

impl Job for SlackNotify {
    const QUEUE: QueueName = QueueName::SlackNotify;

    fn owner(&self) -> Uuid {
        self.user_id
    }
}

/// Render and store the onboarding guide of a user who just signed up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnboardingPdf {
    /// The new user.
    pub user_id: Uuid,
}

impl Job for OnboardingPdf {
    const QUEUE: QueueName = QueueName::OnboardingPdf;

    fn owner(&self) -> Uuid {
        self.user_id
    }
}

/// Make the three sizes of an uploaded photo and make it the user's avatar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageResize {
    /// Who uploaded it.
    pub user_id: Uuid,
    /// The `photos` row.
    pub photo_id: Uuid,
}

impl Job for ImageResize {
    const QUEUE: QueueName = QueueName::ImageResize;

    fn owner(&self) -> Uuid {
        self.user_id
    }
}

#[cfg(test)]
mod tests {
    use super::QueueName;

    #[test]
    fn queue_names_round_trip_through_their_wire_form() {
        for queue in QueueName::ALL {
            assert_eq!(queue.as_str().parse::<QueueName>(), Ok(*queue));
            let json = serde_json::to_string(queue).unwrap();
            assert_eq!(json, format!("\"{}\"", queue.as_str()));
        }
        assert!("welcome_email".parse::<QueueName>().is_err());
    }
}
