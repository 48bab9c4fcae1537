//! Stripe events received by the webhook: the `stripe_events` row. This
//! module is the only writer of that table.
//!
//! ```text
//! record (with its stripe-event job record, once per event id) → prune
//! ```
//!
//! An event is stored whole, as Stripe signed it, so the job that applies
//! it reads exactly what was verified, and an operator can see what
//! arrived. Stripe delivers an event at least once; the event id is the
//! key, so a second delivery records nothing and starts no job.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// An event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Stripe's id, `evt_…`.
    pub event_id: String,
    /// e.g. `customer.subscription.updated`.
    pub event_type: String,
    /// When Stripe created the event: orders the states events carry.
    pub created: DateTime<Utc>,
    /// The event as Stripe sent it.
    pub payload: serde_json::Value,
}

/// Stores `event`, to be applied by the job `job_id`, inside the caller's
/// transaction (with that job's record). Returns `false`, storing nothing,
/// when the event was received before.
pub async fn record(
    conn: &mut PgConnection,
    event: &StoredEvent,
    job_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query!(
        "insert into stripe_events (event_id, type, created, payload, job_id)
         values ($1, $2, $3, $4, $5)
         on conflict (event_id) do nothing",
        event.event_id,
        event.event_type,
        event.created,
        event.payload,
        job_id,
    )
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The event `event_id`, if it was received (and not pruned since).
pub async fn get(
    db: impl PgExecutor<'_>,
    event_id: &str,
) -> Result<Option<StoredEvent>, sqlx::Error> {
    sqlx::query_as!(
        StoredEvent,
        r#"select event_id, type as "event_type", created, payload
           from stripe_events where event_id = $1"#,
        event_id,
    )
    .fetch_optional(db)
    .await
}

/// Deletes events received longer than `retention` ago (scheduled
/// maintenance, with the job records): Stripe stops retrying after three
/// days, so an older event cannot arrive a second time. Returns how many.
pub async fn prune(
    db: impl PgExecutor<'_>,
    retention: std::time::Duration,
) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query!(
        "delete from stripe_events where received_at < now() - make_interval(secs => $1)",
        retention.as_secs_f64(),
    )
    .execute(db)
    .await?;
    Ok(deleted.rows_affected())
}
