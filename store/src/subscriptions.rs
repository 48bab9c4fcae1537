//! Users' Stripe subscriptions: the `subscriptions` row. This module is the
//! only writer of that table.
//!
//! ```text
//! apply (created, or a newer event's state) ─┬→ written
//!                                            ├→ newer / same: nothing
//!                                            └→ tie → settle (what Stripe holds)
//! … → (the user's row goes: cascade)
//! ```
//!
//! Stripe sends events out of order and more than once. Every row keeps the
//! `created` time of the event that wrote it, and [`apply`] writes only a
//! newer event's state, so a late `updated` never undoes a `deleted`. But
//! Stripe's `created` is in seconds, and `customer.subscription.created`
//! (`incomplete`) and `.updated` (`active`, once paid) routinely share one:
//! from two events of the same second with different states, which is
//! later cannot be told. [`apply`] reports that as a [`Applied::Tie`] and
//! keeps the row locked; the caller asks Stripe for the subscription and
//! [`settle`]s the row with Stripe's answer (or, without a Stripe key, with
//! [`later_of_same_second`]'s rule).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// A subscription's state as one event carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Subscription {
    /// Stripe's id, `sub_…`.
    #[serde(rename = "id")]
    pub subscription_id: String,
    /// Stripe's status: `active`, `trialing`, `past_due`, `canceled`, …
    pub status: String,
    /// The price of its first item, `price_…`.
    pub price_id: Option<String>,
    /// When the period paid for ends.
    pub current_period_end: Option<DateTime<Utc>>,
    /// Whether it ends then rather than renewing.
    pub cancel_at_period_end: bool,
}

/// What [`apply`] did with an event's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Written: the subscription's first state, or a newer event's.
    Written,
    /// Not written: the row holds a newer event's state.
    Newer,
    /// Not written: the row holds this very state, from this second.
    Same,
    /// Not written: the row holds another state from an event of the same
    /// second (returned), so which is later is unknown. The row stays
    /// locked until the caller's transaction ends, for [`settle`].
    Tie(Subscription),
}

/// Writes `state` for `user_id` as of an event created at `event_created`,
/// unless the row holds a newer or a same-second event's state. Run it in
/// a transaction: on a [`Applied::Tie`] the row is locked until it ends.
pub async fn apply(
    conn: &mut PgConnection,
    user_id: Uuid,
    state: &Subscription,
    event_created: DateTime<Utc>,
) -> Result<Applied, sqlx::Error> {
    if upsert(&mut *conn, user_id, state, event_created, false).await? {
        return Ok(Applied::Written);
    }
    // The upsert locked the row although it did not update it.
    let stored = sqlx::query!(
        "select subscription_id, status, price_id, current_period_end, cancel_at_period_end,
                event_created
         from subscriptions where subscription_id = $1 for update",
        state.subscription_id,
    )
    .fetch_one(&mut *conn)
    .await?;
    let held = Subscription {
        subscription_id: stored.subscription_id,
        status: stored.status,
        price_id: stored.price_id,
        current_period_end: stored.current_period_end,
        cancel_at_period_end: stored.cancel_at_period_end,
    };
    Ok(if stored.event_created > event_created {
        Applied::Newer
    } else if held == *state {
        Applied::Same
    } else {
        Applied::Tie(held)
    })
}

/// Ends a [`Applied::Tie`]: writes `state` (what Stripe holds, or the
/// rule's pick) as of `event_created`, unless a newer event's state was
/// written meanwhile. Returns whether it wrote.
pub async fn settle(
    conn: &mut PgConnection,
    user_id: Uuid,
    state: &Subscription,
    event_created: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    upsert(conn, user_id, state, event_created, true).await
}

/// Of two states carried by events of the same second, the later one, when
/// Stripe cannot be asked (no `STRIPE_SECRET_KEY`): the one further along a
/// subscription's life, `incomplete` → `trialing` → `active` → `past_due`,
/// `paused` → `unpaid` → `canceled`, `incomplete_expired`. Within one second
/// a subscription only moves forward on that path (it is paid right after
/// it is created, falls behind only at a renewal, and never leaves an end).
/// Equal or unknown statuses: `incoming`, the one delivered last.
pub fn later_of_same_second<'a>(
    stored: &'a Subscription,
    incoming: &'a Subscription,
) -> &'a Subscription {
    fn rank(status: &str) -> Option<u8> {
        Some(match status {
            "incomplete" => 0,
            "trialing" => 1,
            "active" => 2,
            "past_due" | "paused" => 3,
            "unpaid" => 4,
            "canceled" | "incomplete_expired" => 5,
            _ => return None,
        })
    }
    match (rank(&stored.status), rank(&incoming.status)) {
        (Some(held), Some(new)) if held > new => stored,
        _ => incoming,
    }
}

/// Inserts or overwrites the row with `state` if it holds an older event's
/// state (or, `or_same_second`, one of the same second).
async fn upsert(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    state: &Subscription,
    event_created: DateTime<Utc>,
    or_same_second: bool,
) -> Result<bool, sqlx::Error> {
    let written = sqlx::query!(
        "insert into subscriptions (subscription_id, user_id, status, price_id,
                                    current_period_end, cancel_at_period_end, event_created)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (subscription_id) do update
         set status = excluded.status, price_id = excluded.price_id,
             current_period_end = excluded.current_period_end,
             cancel_at_period_end = excluded.cancel_at_period_end,
             event_created = excluded.event_created, updated_at = now()
         where subscriptions.event_created < excluded.event_created
            or ($8 and subscriptions.event_created = excluded.event_created)",
        state.subscription_id,
        user_id,
        state.status,
        state.price_id,
        state.current_period_end,
        state.cancel_at_period_end,
        event_created,
        or_same_second,
    )
    .execute(db)
    .await?;
    Ok(written.rows_affected() == 1)
}

/// The subscription `GET /api/me` shows: the user's live one (any status
/// but `canceled` and `incomplete_expired`), else the latest that ended.
pub async fn current_of_user(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
) -> Result<Option<Subscription>, sqlx::Error> {
    sqlx::query_as!(
        Subscription,
        "select subscription_id, status, price_id, current_period_end, cancel_at_period_end
         from subscriptions where user_id = $1
         order by status in ('canceled', 'incomplete_expired'), event_created desc
         limit 1",
        user_id,
    )
    .fetch_optional(db)
    .await
}
