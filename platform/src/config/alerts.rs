//! Alerts: which conditions open an incident, and where the team is told.

use std::time::Duration;

use secrecy::SecretString;

use super::variables::{List, Parsed, SECOND, Secret, Secs, Variable as _, variables};

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

variables! {
    AlertSettings {
        slack_webhook_url: Secret("ALERT_SLACK_WEBHOOK_URL"),
        email_to: List("ALERT_EMAIL_TO"),
        check_interval: Secs("ALERT_CHECK_INTERVAL_SECS", 30).at_least(SECOND),
        no_consumer: Secs("ALERT_NO_CONSUMER_SECS", 120),
        oldest_waiting: Secs("ALERT_OLDEST_WAITING_SECS", 600),
        failed_jobs: Parsed("ALERT_FAILED_JOBS", 10),
        failed_ratio: Parsed("ALERT_FAILED_RATIO", 0.5),
        failure_window: Secs("ALERT_FAILURE_WINDOW_SECS", 900).at_least(SECOND),
        outbox: Secs("ALERT_OUTBOX_SECS", 120),
    }
}
