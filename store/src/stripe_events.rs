//! Stripe events received by the webhook: the `stripe_events` row. This
//! module is the only writer of that table.
//!
//! ```text
//! record (with its stripe-event job record, once per event id)
//!   → purge_customer / purge_unclaimed (the payload goes, the id stays) → prune
//! ```
//!
//! An event is stored whole, as Stripe signed it, so the job that applies
//! it reads exactly what was verified, and an operator can see what
//! arrived. Stripe delivers an event at least once; the event id is the
//! key, so a second delivery records nothing and starts no job.
//!
//! A payload names its customer's person (a customer object's `email` and
//! `name`, an invoice's `customer_email`), so it is kept whole only while
//! the customer is a live account's: the account's deletion purges its
//! customer's events ([`purge_customer`]), and the job purges an event whose
//! customer is no live account's ([`purge_unclaimed`]: a stranger, an
//! account being deleted, or a customer Stripe deleted), which catches the
//! events that arrive after a deletion (Stripe sends `customer.deleted`
//! with the email and name when we delete the customer). A purged event
//! keeps its id, type and time, so a redelivery is still recognised.

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

impl StoredEvent {
    /// Whether the payload was purged (by [`purge_customer`] or
    /// [`purge_unclaimed`]): it then holds only why, and no event.
    pub fn is_purged(&self) -> bool {
        self.payload.get("data").is_none() && self.payload.get("purged").is_some()
    }
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

/// Stores each event, to be applied by the job paired with it, inside the
/// caller's transaction, in one statement (a group of deliveries committed
/// together). Returns the jobs of the events stored; an event received
/// before (or twice in `events`) stores nothing the second time, and its
/// job is not among them.
pub async fn record_all(
    conn: &mut PgConnection,
    events: &[(&StoredEvent, Uuid)],
) -> Result<Vec<Uuid>, sqlx::Error> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids = Vec::with_capacity(events.len());
    let mut types = Vec::with_capacity(events.len());
    let mut created = Vec::with_capacity(events.len());
    let mut payloads = Vec::with_capacity(events.len());
    let mut jobs = Vec::with_capacity(events.len());
    for (event, job_id) in events {
        ids.push(event.event_id.clone());
        types.push(event.event_type.clone());
        created.push(event.created);
        payloads.push(event.payload.clone());
        jobs.push(*job_id);
    }
    sqlx::query_scalar!(
        "insert into stripe_events (event_id, type, created, payload, job_id)
         select * from unnest($1::text[], $2::text[], $3::timestamptz[], $4::jsonb[], $5::uuid[])
         on conflict (event_id) do nothing
         returning job_id",
        &ids,
        &types,
        &created,
        &payloads,
        &jobs,
    )
    .fetch_all(conn)
    .await
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

/// Purges the payload of every event about `customer_id` (the account
/// that had it is being deleted). Returns how many.
pub async fn purge_customer(
    db: impl PgExecutor<'_>,
    customer_id: &str,
) -> Result<u64, sqlx::Error> {
    let purged = sqlx::query!(
        "update stripe_events
         set payload = jsonb_build_object('purged', 'the account of its customer was deleted')
         where customer_id = $1",
        customer_id,
    )
    .execute(db)
    .await?;
    Ok(purged.rows_affected())
}

/// Purges the payload of every event about the customer of `event_id`,
/// if no live account has that customer (none ever did, its account is
/// being deleted or is gone, or Stripe deleted the customer). Returns how
/// many.
pub async fn purge_unclaimed(db: impl PgExecutor<'_>, event_id: &str) -> Result<u64, sqlx::Error> {
    let purged = sqlx::query!(
        "update stripe_events
         set payload = jsonb_build_object('purged', 'no account has its customer')
         where customer_id = (select customer_id from stripe_events where event_id = $1)
           and not exists (select 1 from users
                           where users.stripe_customer_id = stripe_events.customer_id
                             and users.deleting_since is null)",
        event_id,
    )
    .execute(db)
    .await?;
    Ok(purged.rows_affected())
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
