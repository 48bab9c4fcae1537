//! `stripe-event`: applies one Stripe event the webhook recorded.
//!
//! - `customer.subscription.created`, `.updated`, `.deleted`: the user's
//!   subscription takes the state the event carries, unless a newer event
//!   about it was applied already (`store::subscriptions`), so events
//!   arriving late or twice change nothing. Two events of the same second
//!   with different states (`created` as `incomplete` and `updated` as
//!   `active` routinely are) do not say which is later: the subscription
//!   then takes what Stripe holds (`GET /v1/subscriptions/{id}`, the row
//!   locked meanwhile), so the stored state is Stripe's whatever the order
//!   of deliveries. A 404 means Stripe has no such subscription any more: it
//!   is stored as `canceled` (it cannot be paid for, and an older event
//!   cannot bring it back). Without `STRIPE_SECRET_KEY`, the status further
//!   along a subscription's life wins (`subscriptions::later_of_same_second`).
//! - `customer.deleted`: the user no longer has that customer.
//!
//! An event for a customer no account has (created outside this app, or
//! for an account since deleted), or of a type not handled here, completes
//! as ignored with the reason: it is recorded, and retrying would not
//! change it. An event whose object is not what its type says fails
//! permanently, into the dead letters, for an operator to look at.
//!
//! Once an event is handled, the payloads of events whose customer no live
//! account has are purged (`stripe_events::purge_unclaimed`): they name a
//! person we keep nothing else about. Results name no user: the job record
//! is the system's, and outlives a deleted account.

use anyhow::anyhow;
use catalogue::StripeEvent;
use platform::config::Provider;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use store::subscriptions::{Applied, Subscription};
use store::{stripe_events, subscriptions, users};

use super::{JobMeta, Perform};
use crate::budget;
use crate::context::JobContext;
use crate::error::{Classify, JobError};

/// A Stripe subscription object, as much as we keep of it.
#[derive(Deserialize)]
struct StripeSubscription {
    id: String,
    customer: Expandable,
    status: String,
    #[serde(default)]
    cancel_at_period_end: bool,
    /// On the subscription before Stripe's 2025-03-31 API version…
    current_period_end: Option<i64>,
    #[serde(default)]
    items: Items,
}

#[derive(Deserialize, Default)]
struct Items {
    #[serde(default)]
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    price: Option<Price>,
    /// …and on each item from it.
    current_period_end: Option<i64>,
}

#[derive(Deserialize)]
struct Price {
    id: String,
}

/// A reference Stripe may send as an id or, expanded, as the object.
#[derive(Deserialize)]
#[serde(untagged)]
enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    fn id(&self) -> &str {
        match self {
            Self::Id(id) | Self::Object { id } => id,
        }
    }
}

impl StripeSubscription {
    fn state(self) -> Subscription {
        let first = self.items.data.into_iter().next();
        let period_end = self
            .current_period_end
            .or_else(|| first.as_ref().and_then(|item| item.current_period_end));
        Subscription {
            subscription_id: self.id,
            status: self.status,
            price_id: first.and_then(|item| item.price).map(|price| price.id),
            current_period_end: period_end
                .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0)),
            cancel_at_period_end: self.cancel_at_period_end,
        }
    }
}

impl Perform for StripeEvent {
    const SERVICE: &'static str = "Billing";

    async fn perform(self, ctx: &JobContext, _job: &JobMeta) -> Result<Value, JobError> {
        let Some(event) = stripe_events::get(&ctx.pool, &self.event_id).await? else {
            return Err(JobError::Permanent(anyhow!(
                "the Stripe event {} is not recorded (pruned, or the job was added by hand)",
                self.event_id
            )));
        };
        if event.is_purged() {
            // Purged while the job waited: its customer's account was deleted.
            let why = event.payload["purged"]
                .as_str()
                .unwrap_or("its customer is gone");
            return Ok(json!({
                "ignored": format!("its payload was purged: {why}"),
                "type": event.event_type,
            }));
        }
        let outcome = apply(ctx, &event).await;
        // After it is handled (`customer.deleted` may just have left its
        // customer to nobody); a failed event stays whole for an operator.
        if outcome.is_ok() {
            stripe_events::purge_unclaimed(&ctx.pool, &self.event_id).await?;
        }
        outcome
    }
}

/// Applies `event` by its type; an `ignored` result says why it changed
/// nothing.
async fn apply(ctx: &JobContext, event: &stripe_events::StoredEvent) -> Result<Value, JobError> {
    let object = &event.payload["data"]["object"];
    let ignored = |reason: String| Ok(json!({ "ignored": reason, "type": event.event_type }));
    match event.event_type.as_str() {
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => {
            let subscription = StripeSubscription::deserialize(object)
                .permanent("the event's object is not a subscription")?;
            let customer = subscription.customer.id().to_owned();
            let Some(user_id) = users::id_by_stripe_customer(&ctx.pool, &customer).await? else {
                return ignored(format!("no account has the Stripe customer {customer}"));
            };
            let state = subscription.state();
            let mut tx = ctx.pool.begin().await?;
            let (written, tie) =
                match subscriptions::apply(&mut tx, user_id, &state, event.created).await? {
                    Applied::Written => (state, None),
                    Applied::Newer | Applied::Same => {
                        return ignored(format!(
                            "a newer event about {} (or this state) was applied already",
                            state.subscription_id
                        ));
                    }
                    Applied::Tie(stored) => {
                        let (settled, how) = settle_tie(ctx, stored, state).await?;
                        subscriptions::settle(&mut tx, user_id, &settled, event.created).await?;
                        (settled, Some(how))
                    }
                };
            tx.commit().await?;
            // The plan the user's open tabs show changed.
            ctx.feed.publish(queue::feed::Change::Account(user_id));
            Ok(json!({
                "applied": event.event_type,
                "subscription": written.subscription_id,
                "status": written.status,
                "same_second_settled_by": tie,
            }))
        }
        "customer.deleted" => {
            let customer = object["id"]
                .as_str()
                .ok_or_else(|| JobError::Permanent(anyhow!("the deleted customer has no id")))?;
            match users::stripe_customer_deleted(&ctx.pool, customer).await? {
                Some(_) => Ok(json!({ "customer_cleared": customer })),
                None => ignored(format!("no account has the Stripe customer {customer}")),
            }
        }
        other => ignored(format!("events of type {other} are not handled")),
    }
}

/// Which of two states of the same second the subscription takes, and
/// what decided: Stripe's answer, or the status rule without a key.
async fn settle_tie(
    ctx: &JobContext,
    stored: Subscription,
    incoming: Subscription,
) -> Result<(Subscription, &'static str), JobError> {
    let Some(secret_key) = &ctx.providers.stripe_secret_key else {
        let later = subscriptions::later_of_same_second(&stored, &incoming).clone();
        return Ok((later, "status order"));
    };
    let id = &incoming.subscription_id;
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(JobError::Permanent(anyhow!(
            "the subscription id {id:?} is not one Stripe makes"
        )));
    }
    ctx.budgets.take(Provider::Stripe).await?;
    let response = ctx
        .http
        .get(format!(
            "{}/v1/subscriptions/{id}",
            ctx.providers.stripe_api_base
        ))
        .bearer_auth(secret_key.expose_secret())
        .send()
        .await
        .transient("could not reach Stripe")?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        let gone = Subscription {
            status: "canceled".to_owned(),
            ..incoming
        };
        return Ok((gone, "stripe: no such subscription"));
    }
    if !status.is_success() {
        let retry_after = budget::retry_after(response.headers());
        let error = anyhow!("Stripe answered {status} to reading subscription {id}");
        // A 429 holds every Stripe caller back, without spending an attempt.
        return Err(ctx
            .budgets
            .refused(Provider::Stripe, status, retry_after, error)
            .await);
    }
    let held: StripeSubscription = response
        .json()
        .await
        .transient("Stripe's answer was not a subscription")?;
    if held.id != *id {
        return Err(JobError::Permanent(anyhow!(
            "Stripe answered subscription {} when asked for {id}",
            held.id
        )));
    }
    Ok((held.state(), "stripe"))
}
