//! Alert incidents: the `incidents` row. This module is the only writer of
//! that table.
//!
//! ```text
//! open (once per kind and queue at a time) → told → close → told
//! ```
//!
//! The partial unique index lets exactly one evaluation open an incident
//! and exactly one close it, so however many api instances watch, the team
//! hears of each start and end once. Whether it has been told is kept
//! apart from the state, so a message that could not be sent is owed and
//! retried rather than lost.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// What an incident is about: one condition, on one queue or on the whole
/// system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Jobs wait and no worker consumes the queue.
    NoConsumer,
    /// Workers consume the queue but its oldest job waits too long.
    OldestWaiting,
    /// Too many of the queue's jobs failed for good lately.
    Failures,
    /// A provider refuses our credentials: the queue is held.
    Misconfigured,
    /// Job records that have not reached Redis.
    Outbox,
}

impl Kind {
    /// Every kind, in the order the dashboard lists them.
    pub const ALL: [Kind; 5] = [
        Kind::NoConsumer,
        Kind::OldestWaiting,
        Kind::Failures,
        Kind::Misconfigured,
        Kind::Outbox,
    ];

    /// The stored name (the table's check constraint lists the same).
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::NoConsumer => "no_consumer",
            Kind::OldestWaiting => "oldest_waiting",
            Kind::Failures => "failures",
            Kind::Misconfigured => "misconfigured",
            Kind::Outbox => "outbox",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// An incident as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Incident {
    /// Its number.
    pub incident_id: i64,
    /// `no_consumer`, `oldest_waiting`, `failures`, `misconfigured` or `outbox`.
    pub kind: String,
    /// The queue, or `""` for the outbox.
    pub queue: String,
    /// What was measured against what threshold, as the message read.
    pub summary: String,
    /// When the condition was first seen.
    pub opened_at: DateTime<Utc>,
    /// When it was seen to end; `None` while open.
    pub closed_at: Option<DateTime<Utc>>,
    /// When the team was told it started; `None` while that is owed.
    pub opened_notified_at: Option<DateTime<Utc>>,
    /// When the team was told it ended.
    pub closed_notified_at: Option<DateTime<Utc>>,
}

/// Opens an incident of `kind` on `queue` unless one is open already;
/// returns it when this call opened it.
pub async fn open(
    db: impl PgExecutor<'_>,
    kind: Kind,
    queue: &str,
    summary: &str,
) -> Result<Option<Incident>, sqlx::Error> {
    sqlx::query_as!(
        Incident,
        "insert into incidents (kind, queue, summary) values ($1, $2, $3)
         on conflict (kind, queue) where closed_at is null do nothing
         returning incident_id, kind, queue, summary, opened_at, closed_at,
                   opened_notified_at, closed_notified_at",
        kind.as_str(),
        queue,
        summary,
    )
    .fetch_optional(db)
    .await
}

/// Closes `incident_id` if it is open; returns whether this call closed it.
pub async fn close(db: impl PgExecutor<'_>, incident_id: i64) -> Result<bool, sqlx::Error> {
    let closed = sqlx::query!(
        "update incidents set closed_at = now()
         where incident_id = $1 and closed_at is null",
        incident_id,
    )
    .execute(db)
    .await?;
    Ok(closed.rows_affected() == 1)
}

/// Every open incident, oldest first.
pub async fn open_ones(db: impl PgExecutor<'_>) -> Result<Vec<Incident>, sqlx::Error> {
    sqlx::query_as!(
        Incident,
        "select incident_id, kind, queue, summary, opened_at, closed_at,
                opened_notified_at, closed_notified_at
         from incidents where closed_at is null order by opened_at, incident_id",
    )
    .fetch_all(db)
    .await
}

/// The open incidents and those closed in the last `hours`, newest first:
/// what the dashboard shows.
pub async fn recent(db: impl PgExecutor<'_>, hours: i32) -> Result<Vec<Incident>, sqlx::Error> {
    sqlx::query_as!(
        Incident,
        "select incident_id, kind, queue, summary, opened_at, closed_at,
                opened_notified_at, closed_notified_at
         from incidents
         where closed_at is null or closed_at > now() - make_interval(hours => $1)
         order by closed_at is null desc, opened_at desc, incident_id desc
         limit 100",
        hours,
    )
    .fetch_all(db)
    .await
}

/// Incidents whose start or end the team has not been told of yet, oldest
/// first. Only a day back: a message owed longer is news to nobody.
pub async fn owed(db: impl PgExecutor<'_>) -> Result<Vec<Incident>, sqlx::Error> {
    sqlx::query_as!(
        Incident,
        "select incident_id, kind, queue, summary, opened_at, closed_at,
                opened_notified_at, closed_notified_at
         from incidents
         where (opened_notified_at is null
                or (closed_at is not null and closed_notified_at is null))
           and opened_at > now() - interval '1 day'
         order by opened_at, incident_id",
    )
    .fetch_all(db)
    .await
}

/// The team was told `incident_id` started.
pub async fn told_opened(db: impl PgExecutor<'_>, incident_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update incidents set opened_notified_at = now() where incident_id = $1",
        incident_id,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The team was told `incident_id` ended.
pub async fn told_closed(db: impl PgExecutor<'_>, incident_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update incidents set closed_notified_at = now() where incident_id = $1",
        incident_id,
    )
    .execute(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_stored_name() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(Kind::parse("stuck"), None);
    }
}
