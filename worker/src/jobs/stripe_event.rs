//! `stripe-event`: applies one Stripe event the webhook recorded.
//!
//! - `customer.subscription.created`, `.updated`, `.deleted`: the user's
//!   subscription takes the state the event carries, unless a newer event
//!   about it was applied already (`shared::subscriptions`), so events
//!   arriving late or twice change nothing.
//! - `customer.deleted`: the user no longer has that customer.
//!
//! An event for a customer no account has (created outside this app, or
//! for an account since deleted), or of a type not handled here, completes
//! as ignored with the reason: it is recorded, and retrying would not
//! change it. An event whose object is not what its type says fails
//! permanently, into the dead letters, for an operator to look at.

use anyhow::anyhow;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::jobs::StripeEvent;
use shared::subscriptions::{self, Subscription};
use shared::{stripe_events, users};

use super::{JobMeta, Perform};
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
        let object = &event.payload["data"]["object"];
        let ignored = |reason: String| Ok(json!({ "ignored": reason, "type": event.event_type }));
        match event.event_type.as_str() {
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted" => {
                let subscription = StripeSubscription::deserialize(object)
                    .permanent("the event's object is not a subscription")?;
                let customer = subscription.customer.id().to_owned();
                let Some(user_id) = users::id_by_stripe_customer(&ctx.pool, &customer).await?
                else {
                    return ignored(format!("no account has the Stripe customer {customer}"));
                };
                let state = subscription.state();
                if !subscriptions::apply(&ctx.pool, user_id, &state, event.created).await? {
                    return ignored(format!(
                        "a newer event about {} was applied already",
                        state.subscription_id
                    ));
                }
                Ok(json!({
                    "applied": event.event_type,
                    "user_id": user_id,
                    "subscription": state.subscription_id,
                    "status": state.status,
                }))
            }
            "customer.deleted" => {
                let customer = object["id"].as_str().ok_or_else(|| {
                    JobError::Permanent(anyhow!("the deleted customer has no id"))
                })?;
                match users::stripe_customer_deleted(&ctx.pool, customer).await? {
                    Some(user_id) => {
                        Ok(json!({ "customer_cleared": customer, "user_id": user_id }))
                    }
                    None => ignored(format!("no account has the Stripe customer {customer}")),
                }
            }
            other => ignored(format!("events of type {other} are not handled")),
        }
    }
}
