//! Stripe as its webhooks reach us: events built like Stripe's, signed with
//! the test endpoint secret, delivered to the api.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::TestApp;

/// The endpoint secret tests configure (`STRIPE_WEBHOOK_SECRET`).
pub const WEBHOOK_SECRET: &str = "whsec_test_0123456789abcdef0123456789abcdef";

/// Now, in the Unix seconds Stripe's timestamps use.
pub fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    i64::try_from(secs).expect("in range")
}

/// A Stripe event `id` of `event_type`, created at `created`, about `object`.
pub fn event(id: &str, event_type: &str, created: i64, object: Value) -> Value {
    json!({
        "id": id,
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created,
        "type": event_type,
        "livemode": false,
        "pending_webhooks": 1,
        "data": { "object": object },
    })
}

/// A subscription object of `customer`, in Stripe's 2025 shape (the period
/// on the item).
pub fn subscription(id: &str, customer: &str, status: &str, price: &str, period_end: i64) -> Value {
    json!({
        "id": id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "cancel_at_period_end": false,
        "items": { "object": "list", "data": [{
            "id": "si_1",
            "object": "subscription_item",
            "price": { "id": price, "object": "price" },
            "current_period_end": period_end,
        }]},
    })
}

/// The `Stripe-Signature` of `body` at `timestamp`, with `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let timestamp = u64::try_from(timestamp).expect("after 1970");
    api::stripe_signature::sign(secret, timestamp, body)
}

impl TestApp {
    /// Posts `body` to the Stripe webhook with `signature` (none if `None`).
    pub async fn post_stripe_webhook(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/api/webhooks/stripe", self.address))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        request.send().await.expect("the api answers")
    }

    /// Delivers `event` as Stripe does, signed now; returns the answer's
    /// status and body.
    pub async fn deliver_stripe_event(&self, event: &Value) -> (u16, Value) {
        let body = serde_json::to_vec(event).expect("JSON");
        let signature = signature(WEBHOOK_SECRET, now(), &body);
        let response = self.post_stripe_webhook(&body, Some(&signature)).await;
        let status = response.status().as_u16();
        (
            status,
            response.json().await.expect("the webhook answers JSON"),
        )
    }
}
