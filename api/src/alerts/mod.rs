//! Alerts: the api watches the queues and the outbox, and tells the team
//! when an incident starts and when it ends.
//!
//! Every instance measures on each `ALERT_CHECK_INTERVAL_SECS` tick (and
//! publishes what it saw as gauges, so `/metrics` asks Redis nothing); one
//! at a time, under a Postgres advisory lock, turns the findings into
//! incident rows and sends what is owed. The api watches rather than the
//! worker because "no worker is running" is one of the things to notice.
//!
//! - `conditions.rs`: which incidents a measurement shows (pure, tested).
//! - `notify.rs`: the Slack and email channels.

mod conditions;
mod notify;

use std::collections::HashSet;
use std::sync::Arc;

use crate::owners::incidents;
use crate::owners::incidents::{Incident, Kind};
use catalogue::QueueName;
use futures::future::join_all;
use metrics::gauge;
use platform::config::{AlertSettings, Provider, ProviderSettings, Settings};
use queue::JobQueues;
use sqlx::{PgConnection, PgPool};

pub use conditions::{Finding, QueueFigures, Snapshot, findings};
pub use notify::{Alert, Notifier};

/// The advisory lock one evaluator holds at a time ("acmealrt").
const LOCK: i64 = 0x6163_6d65_616c_7274;

/// Watches, records and tells; one per api instance.
pub struct Monitor {
    pool: PgPool,
    queues: Arc<JobQueues>,
    settings: AlertSettings,
    /// Whose budgets are published with the queues' figures.
    providers: ProviderSettings,
    notifier: Notifier,
    dashboard: String,
}

impl Monitor {
    /// A monitor for `settings`; fails on a channel that cannot work.
    pub fn new(settings: &Settings, pool: PgPool, queues: Arc<JobQueues>) -> anyhow::Result<Self> {
        let notifier = Notifier::from_settings(settings)?;
        if !notifier.is_on() {
            tracing::warn!(
                "no ALERT_SLACK_WEBHOOK_URL or ALERT_EMAIL_TO: incidents are recorded and shown \
                 on the dashboard, nobody is told"
            );
        }
        if let Some(mailbox) = notifier.emails_to_files() {
            // Not refused: the local stack has no SMTP server, and there the
            // mailbox is where a developer looks.
            tracing::warn!(
                mailbox = %mailbox.display(),
                "ALERT_EMAIL_TO is set but SMTP_URL is not: alert emails are only written as \
                 files to MAILBOX_DIR, where nobody will see them; set SMTP_URL"
            );
        }
        Ok(Self {
            pool,
            queues,
            settings: settings.alerts.clone(),
            providers: settings.providers.clone(),
            notifier,
            dashboard: format!("{}/admin", settings.links.public_url),
        })
    }

    /// Checks every interval, from start, until the task is aborted.
    pub async fn run(self) {
        let mut ticks = tokio::time::interval(self.settings.check_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = self.check().await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "could not evaluate the alerts"
                );
            }
        }
    }

    /// One evaluation: measure, then (if no other instance is at it)
    /// open and close incidents and send what is owed.
    pub async fn check(&self) -> anyhow::Result<()> {
        let snapshot = self.measure().await?;
        let found = findings(&snapshot, &self.settings);
        let mut tx = self.pool.begin().await?;
        let ours = sqlx::query_scalar!(r#"select pg_try_advisory_xact_lock($1) as "ours!""#, LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !ours {
            return Ok(());
        }
        reconcile(&mut tx, &snapshot, &found).await?;
        if self.notifier.is_on() {
            self.deliver(&mut tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sends every owed message, in order; stops at the first failure (the
    /// channel is likely down) and leaves the rest owed for the next tick.
    async fn deliver(&self, conn: &mut PgConnection) -> anyhow::Result<()> {
        for incident in incidents::owed(&mut *conn).await? {
            let id = incident.incident_id;
            if incident.opened_notified_at.is_none() {
                let alert = Alert::opened(&incident, &self.dashboard);
                if !self.sent(&alert, &format!("{id}-opened")).await {
                    return Ok(());
                }
                incidents::told_opened(&mut *conn, id).await?;
            }
            if incident.closed_at.is_some() {
                let alert = Alert::closed(&incident, &self.dashboard);
                if !self.sent(&alert, &format!("{id}-closed")).await {
                    return Ok(());
                }
                incidents::told_closed(&mut *conn, id).await?;
            }
        }
        Ok(())
    }

    async fn sent(&self, alert: &Alert, key: &str) -> bool {
        match self.notifier.send(alert, key).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), alert = %alert.title, "alert not sent; retried next check");
                false
            }
        }
    }

    /// What Redis and Postgres show now; also published as gauges.
    async fn measure(&self) -> anyhow::Result<Snapshot> {
        let (measured, memory, budgets) = tokio::join!(
            join_all(
                QueueName::ALL
                    .iter()
                    .map(|&queue| self.measure_queue(queue)),
            ),
            self.queues.memory(),
            join_all(Provider::ALL.iter().map(|&provider| {
                self.queues
                    .budget_use(provider, self.providers.budget(provider))
            })),
        );
        // Only published: a spent budget is the budget working.
        for reading in budgets.into_iter().flatten() {
            reading.publish();
        }
        // Redis' memory is only published: Prometheus alerts on it (with
        // `noeviction` a full Redis refuses writes). Kept as last measured
        // while Redis does not answer: not known to be healthy.
        if let Ok(Some(memory)) = memory {
            gauge!("redis_memory_used_bytes").set(memory.used as f64);
            gauge!("redis_memory_max_bytes").set(memory.max as f64);
        }
        let mut snapshot = Snapshot::default();
        let mut unknown = 0;
        for (queue, figures) in QueueName::ALL.iter().zip(measured) {
            match figures {
                Some(figures) => {
                    snapshot.queues.insert(*queue, figures);
                }
                None => unknown += 1,
            }
        }
        if unknown > 0 {
            tracing::warn!(
                queues = unknown,
                "Redis did not answer for some queues; their alerts wait"
            );
        }
        for row in store::records::finished_within(&self.pool, self.settings.failure_window).await?
        {
            if let Ok(queue) = row.queue.parse::<QueueName>() {
                let finished = conditions::Finished {
                    finished: u64::try_from(row.finished).unwrap_or(0),
                    failed: u64::try_from(row.failed).unwrap_or(0),
                };
                snapshot.finished.insert(queue, finished);
            }
        }
        let (pending, oldest) = store::records::outbox_backlog(&self.pool).await?;
        snapshot.outbox = (u64::try_from(pending).unwrap_or(0), oldest);
        gauge!("outbox_pending_jobs").set(pending as f64);
        gauge!("outbox_oldest_pending_seconds").set(oldest.map_or(0.0, |age| age.as_secs_f64()));
        Ok(snapshot)
    }

    async fn measure_queue(&self, queue: QueueName) -> Option<QueueFigures> {
        let (counts, oldest, consumers, misconfigured) = tokio::join!(
            self.queues.counts(queue),
            self.queues.oldest_waiting_age(queue),
            self.queues.consumers(queue),
            self.queues.misconfigured(queue),
        );
        let (counts, oldest, consumers, misconfigured) = (
            counts.ok()?,
            oldest.ok()?,
            consumers.ok()?,
            misconfigured.ok()?,
        );
        counts.publish(oldest);
        let name = queue.as_str();
        gauge!("queue_consumers", "queue" => name).set(consumers as f64);
        gauge!("queue_misconfigured", "queue" => name)
            .set(f64::from(u8::from(misconfigured.is_some())));
        Some(QueueFigures {
            waiting: counts.waiting,
            oldest_waiting: oldest,
            consumers,
            misconfigured,
        })
    }
}

/// Opens the incidents found and not open, closes the open ones measured
/// and not found; logs each change.
async fn reconcile(
    conn: &mut PgConnection,
    snapshot: &Snapshot,
    found: &[Finding],
) -> Result<(), sqlx::Error> {
    let open: Vec<Incident> = incidents::open_ones(&mut *conn).await?;
    let open_keys: HashSet<(&str, &str)> = open
        .iter()
        .map(|incident| (incident.kind.as_str(), incident.queue.as_str()))
        .collect();
    let found_keys: HashSet<(&str, &str)> = found
        .iter()
        .map(|finding| (finding.kind.as_str(), finding.queue))
        .collect();
    for finding in found {
        if !open_keys.contains(&(finding.kind.as_str(), finding.queue))
            && incidents::open(&mut *conn, finding.kind, finding.queue, &finding.summary)
                .await?
                .is_some()
        {
            tracing::warn!(kind = finding.kind.as_str(), queue = finding.queue, summary = %finding.summary, "incident opened");
        }
    }
    for incident in &open {
        let still = found_keys.contains(&(incident.kind.as_str(), incident.queue.as_str()));
        let known = Kind::parse(&incident.kind)
            .is_some_and(|kind| snapshot.measured(kind, &incident.queue));
        if !still && known && incidents::close(&mut *conn, incident.incident_id).await? {
            tracing::info!(kind = %incident.kind, queue = %incident.queue, summary = %incident.summary, "incident closed");
        }
    }
    Ok(())
}
