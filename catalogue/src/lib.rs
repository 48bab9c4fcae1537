//! The job catalogue: what the API may enqueue and the worker must handle.
//!
//! Every queue is declared once, in [`catalogue!`] below: its wire name,
//! the label people read, its payload type and its default settings.
//! [`QueueName`], its list of all queues, its names, labels and defaults,
//! and each payload's [`Job`] impl are generated from that one declaration,
//! so adding a queue cannot leave a list behind. Queue names are a wire
//! contract (Node BullMQ tools and dashboards see them) and appear nowhere
//! else as strings. Payloads carry ids, not records: a job reads the current
//! row when it runs, so a retry never acts on stale data.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

mod payloads;

pub use payloads::{
    AccountDeletion, AccountEmail, AccountEmailKind, FollowUpEmail, ImageResize, Maintenance,
    MaintenanceTask, OnboardingPdf, SlackNotify, StripeCustomer, StripeEvent, WelcomeEmail,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How one queue's jobs are retried, kept and consumed. Defaults come from
/// the job catalogue ([`QueueName::default_settings`]); every field can be
/// overridden with `QUEUE_<NAME>_<FIELD>` (see `.env.example`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// Jobs one worker process runs at once (`CONCURRENCY`).
    pub concurrency: usize,
    /// Tries per job, the first included (`ATTEMPTS`).
    pub attempts: u32,
    /// Base retry delay, doubled per attempt, with jitter (`BACKOFF_MS`).
    pub backoff: Duration,
    /// At most `max` jobs per `per` across all workers (`RATE_MAX`,
    /// `RATE_PER_MS`); on a batched queue it limits the jobs it fetches, so
    /// leave it off there and pace the runs with [`Batch::every`].
    pub rate_limit: Option<RateLimit>,
    /// Completed jobs stay in Redis this long… (`KEEP_COMPLETED_SECS`)
    pub keep_completed: Duration,
    /// …and no more than this many of them (`KEEP_COMPLETED_COUNT`).
    pub keep_completed_count: usize,
    /// Failed jobs, the dead-letter set, stay this long (`KEEP_FAILED_SECS`).
    pub keep_failed: Duration,
    /// A job's lock; a worker that dies holding it leaves the job to others
    /// after this long (`LOCK_DURATION_MS`).
    pub lock_duration: Duration,
    /// How often a worker looks for jobs whose lock expired (`STALLED_INTERVAL_MS`).
    pub stalled_interval: Duration,
    /// An attempt running longer fails, and its slot is freed (`TIMEOUT_SECS`).
    pub timeout: Duration,
    /// Jobs run together, one run over many, where one call serves them all
    /// (`BATCH_MAX`, `BATCH_EVERY_MS`); `None` runs each job on its own.
    pub batch: Option<Batch>,
}

/// A batched queue: many users trigger the same expensive operation (a
/// provider call that takes one request a second), so a worker holds up to
/// `max` of its jobs and runs them as one, at most one run per `every`
/// across all workers. Each job keeps its own record and outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// The most jobs one run carries; a worker holds this many at once
    /// (the queue's `concurrency` is not used).
    pub max: usize,
    /// The least time between two runs' starts, across all workers.
    pub every: Duration,
}

/// A queue-wide rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Jobs allowed per window.
    pub max: u64,
    /// The window.
    pub per: Duration,
}

/// A job payload: knows its queue, and whose job it is if anyone's.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The queue this kind of job goes to.
    const QUEUE: QueueName;

    /// The user the job acts for; `None` for the system's own jobs
    /// (maintenance, a Stripe event), which no user polls.
    fn owner(&self) -> Option<Uuid>;
}

/// Declares the queues: `Variant = "wire-name" (field), label "Words",
/// payload Type (owner field), settings expr;` per queue, with its doc
/// comment. `field` names the queue in [`QueueTable`]; the label is what
/// people read (the web app, the dashboard). A payload without an owner
/// field is a system job, which no user polls.
macro_rules! catalogue {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident = $name:literal ($field:ident), label $label:literal, payload $payload:ident $(($owner:ident))?, settings $settings:expr;
    )*) => {
        /// Every queue's settings, a field per queue: the catalogue's
        /// defaults, overridden from the environment (`QUEUE_<NAME>_…`). The
        /// api (job options) and the worker read the same table; tests
        /// change it as typed values (`s.queues.welcome_email.attempts = 3`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct QueueTable {
            $( $(#[doc = $doc])* pub $field: QueueSettings, )*
        }

        impl Default for QueueTable {
            fn default() -> Self {
                Self { $( $field: $settings, )* }
            }
        }

        impl QueueTable {
            /// The settings of `queue`.
            pub fn get(&self, queue: QueueName) -> QueueSettings {
                *self.get_ref(queue)
            }

            /// The settings of `queue`, to change them.
            pub fn get_mut(&mut self, queue: QueueName) -> &mut QueueSettings {
                match queue {
                    $(QueueName::$variant => &mut self.$field,)*
                }
            }

            fn get_ref(&self, queue: QueueName) -> &QueueSettings {
                match queue {
                    $(QueueName::$variant => &self.$field,)*
                }
            }
        }

        /// Every queue, one per kind of slow work, so each has its own limits.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum QueueName {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl QueueName {
            /// All queues, in a stable order.
            pub const ALL: &'static [QueueName] = &[$(QueueName::$variant),*];

            /// The queue's name, which is also its jobs' name. BullMQ knows
            /// the queue by it on a single Redis; on a cluster see
            /// `RedisSettings::bullmq_name`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(QueueName::$variant => $name,)*
                }
            }

            /// What people call this queue's jobs ("Welcome email"): the web
            /// app and the dashboard show it, served from here so no page
            /// keeps a second list (`GET /js/labels.js`).
            pub const fn label(self) -> &'static str {
                match self {
                    $(QueueName::$variant => $label,)*
                }
            }

            /// Defaults for this queue; `QUEUE_<NAME>_…` variables override them.
            pub fn default_settings(self) -> QueueSettings {
                QueueTable::default().get(self)
            }

            /// The prefix of this queue's variables, e.g. `QUEUE_WELCOME_EMAIL_`.
            pub fn env_prefix(self) -> String {
                format!("QUEUE_{}_", self.as_str().replace('-', "_").to_uppercase())
            }
        }

        $(
            impl Job for $payload {
                const QUEUE: QueueName = QueueName::$variant;

                fn owner(&self) -> Option<Uuid> {
                    None $(.or(Some(self.$owner)))?
                }
            }
        )*
    };
}

/// What every queue shares unless it says otherwise: completed jobs kept a
/// day (the durable status is in Postgres anyway), failed ones a week (the
/// dead-letter set). A 10 s lock checked every 5 s: a job whose worker was
/// killed runs again within about 20 s (BullMQ's 30 s and 30 s take up to
/// 90 s), for one lock renewal per running job every 5 s. A minute per
/// attempt is generous for a network call. I/O-bound queues wait on the
/// network, so they get many slots; CPU-bound ones get one per core, as more
/// would only queue for it.
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
    batch: None,
};

catalogue! {
    /// Renders and sends the welcome email after signup.
    WelcomeEmail = "welcome-email" (welcome_email), label "Welcome email",
        payload WelcomeEmail (user_id),
        settings QueueSettings { concurrency: 16, ..BASE };

    /// Creates the user's Stripe customer. Stripe answers in ~0.5 s and
    /// allows 100 requests/s; retries are safe (idempotency key), so be
    /// patient through outages.
    StripeCustomer = "stripe-customer" (stripe_customer), label "Billing account",
        payload StripeCustomer (user_id),
        settings QueueSettings { attempts: 8, backoff: Duration::from_secs(5), ..BASE };

    /// Announces signups in Slack. Slack allows about one message per
    /// second per webhook, so the queue is batched: one message a second
    /// carries every signup since the last one (up to 200, twice the peak
    /// of 100 signups a second), and a burst never builds a backlog.
    SlackNotify = "slack-notify" (slack_notify), label "Team notification",
        payload SlackNotify (user_id),
        settings QueueSettings {
            attempts: 8,
            backoff: Duration::from_secs(5),
            batch: Some(Batch { max: 200, every: Duration::from_secs(1) }),
            ..BASE
        };

    /// Renders the user's onboarding guide (PDF) and stores it: milliseconds
    /// of CPU and nothing else.
    OnboardingPdf = "onboarding-pdf" (onboarding_pdf), label "Onboarding guide (PDF)",
        payload OnboardingPdf (user_id),
        settings QueueSettings { concurrency: cores(), attempts: 3, ..BASE };

    /// Makes the three sizes of an uploaded profile photo. Decoding and
    /// resizing keeps a core busy for tens of milliseconds (the slowest file
    /// the decode limits let through, under a second), so one job per core;
    /// 30 s is for a loaded machine, not for bombs.
    ImageResize = "image-resize" (image_resize), label "Photo processing",
        payload ImageResize (user_id),
        settings QueueSettings {
            concurrency: cores(),
            attempts: 3,
            timeout: Duration::from_secs(30),
            ..BASE
        };

    /// Account email the user is waiting for or must see (a password reset
    /// link, a notice that the password changed): its own queue, so it
    /// never waits behind a backlog of welcome emails.
    AccountEmail = "account-email" (account_email), label "Account email",
        payload AccountEmail (user_id),
        settings QueueSettings { concurrency: 16, ..BASE };

    /// Deletes an account everywhere (storage, Stripe, rows), step by
    /// idempotent step, after the account's running jobs have finished:
    /// patient, as it waits for them and for Stripe.
    AccountDeletion = "account-deletion" (account_deletion), label "Account deletion",
        payload AccountDeletion (user_id),
        settings QueueSettings { attempts: 10, backoff: Duration::from_secs(5), ..BASE };

    /// Applies one Stripe event (received by the webhook and recorded)
    /// to our data: a subscription's state, a deleted customer. Quick
    /// database writes; retried patiently, as Stripe retries for days too.
    StripeEvent = "stripe-event" (stripe_event), label "Billing event",
        payload StripeEvent,
        settings QueueSettings { attempts: 8, backoff: Duration::from_secs(5), ..BASE };

    /// "Finish setting up": product mail, sent `FOLLOW_UP_DELAY_SECS` after
    /// an account is verified, unless the user no longer needs it (a photo
    /// is there), opted out, or left. Its own queue, so ten thousand of
    /// them falling due at once never delay an account email.
    FollowUpEmail = "follow-up-email" (follow_up_email), label "Follow-up email",
        payload FollowUpEmail (user_id),
        settings QueueSettings { concurrency: 16, ..BASE };

    /// Housekeeping on a schedule: expired tokens, old job records, replaced
    /// photos. BullMQ's job schedulers create one job per period however
    /// many workers run.
    Maintenance = "maintenance" (maintenance), label "Maintenance",
        payload Maintenance,
        settings QueueSettings {
            concurrency: 1,
            attempts: 3,
            backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(300),
            ..BASE
        };
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

/// On the wire (JSON answers, job data) a queue is its name.
impl Serialize for QueueName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for QueueName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
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
