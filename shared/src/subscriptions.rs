//! Users' Stripe subscriptions: the `subscriptions` row. This module is the
//! only writer of that table.
//!
//! ```text
//! apply (created, or a newer state) → apply … → (the user's row goes: cascade)
//! ```
//!
//! Stripe sends events out of order and more than once. Every row keeps the
//! `created` time of the event that wrote it, and [`apply`] writes only a
//! newer event's state, so a late `updated` never undoes a `deleted`. Two
//! events of the same second are ordered by what Stripe allows: a canceled
//! subscription is never active again, so on a tie `canceled` stays.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgExecutor;
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

/// Writes `state` for `user_id` as of an event created at `event_created`,
/// unless the row holds a newer event's state. Returns whether it wrote.
pub async fn apply(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    state: &Subscription,
    event_created: DateTime<Utc>,
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
            or (subscriptions.event_created = excluded.event_created
                and subscriptions.status <> 'canceled')",
        state.subscription_id,
        user_id,
        state.status,
        state.price_id,
        state.current_period_end,
        state.cancel_at_period_end,
        event_created,
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
