//! `POST /api/webhooks/stripe`: Stripe tells us what changed (a
//! subscription, a deleted customer). The request is acknowledged as soon
//! as the event is safe: signature checked on the raw bytes, the event and
//! its `stripe-event` job recorded in one transaction and committed
//! (deliveries arriving together share it: `crate::stripe_intake`), the
//! job then handed to Redis. The work happens in the worker, so Stripe never waits on it and
//! never times out into a retry storm.
//!
//! Stripe delivers at least once; the event id is the key of its row, so a
//! second delivery is acknowledged and records nothing. Off (404) unless
//! `STRIPE_WEBHOOK_SECRET` is set.

use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use store::records::Origin;
use store::stripe_events::StoredEvent;
use utoipa_axum::routes;
use uuid::Uuid;

use super::endpoints::{Endpoints, Limits};
use crate::error::ApiError;
use crate::extract::RawBody;
use crate::request_id::RequestId;
use crate::state::AppState;
use crate::stripe_intake::{Intake, IntakeError};

/// `POST /api/webhooks/stripe`, with the body limit of its setting.
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    let limits = Limits {
        body: endpoints.state().providers.stripe_webhook_max_bytes,
        // Stripe gives up on a delivery after 10 s and retries it.
        time: Duration::from_secs(10),
        per_client: false,
    };
    endpoints.add(routes!(stripe_webhook), limits)
}

/// The fields of an event we rely on; the rest is stored as sent.
#[derive(Deserialize)]
struct Envelope {
    id: String,
    object: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    /// Present, and an object naming its kind (checked by deserializing).
    #[serde(rename = "data")]
    _data: EnvelopeData,
}

/// `data`: the object the event is about.
#[derive(Deserialize)]
struct EnvelopeData {
    #[serde(rename = "object")]
    _object: DataObject,
}

/// The object names its kind (`subscription`, `customer`, …); only that is
/// read, so nothing of the object is copied.
#[derive(Deserialize)]
struct DataObject {
    #[serde(rename = "object")]
    _kind: String,
}

/// What Stripe gets back: the event is safe with us.
#[derive(Serialize, utoipa::ToSchema)]
struct Received {
    received: bool,
    /// Whether this delivery was a repeat of one recorded before (nothing
    /// new was recorded).
    duplicate: bool,
    /// The `stripe-event` job that applies it; `null` for a repeat.
    #[schema(required)]
    job_id: Option<Uuid>,
}

/// Receives a Stripe event. The `Stripe-Signature` header must sign the raw
/// body with the endpoint secret (`t=<unix time>,v1=<hex HMAC-SHA256 of
/// "{t}.{body}">`, more `v1` values allowed during a secret rotation),
/// within `STRIPE_WEBHOOK_TOLERANCE_SECS` of now. Anything else is 400 and
/// records nothing.
#[utoipa::path(post, path = "/api/webhooks/stripe", tag = "webhooks",
    params(("Stripe-Signature" = String, Header,
        description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"{t}.{raw body}\">`; several `v1` during a secret rotation")),
    request_body(content = Object, content_type = "application/json",
        description = "A Stripe event object (`object: \"event\"`), exactly as Stripe sent it"),
    responses(
        (status = 200, description = "Recorded (or recorded before); applied in the background", body = Received),
        (status = 400, description = "Unsigned, wrongly signed, stale, or not a Stripe event; nothing was recorded", body = crate::error::Body),
        (status = 404, description = "The webhook is off (`STRIPE_WEBHOOK_SECRET` is not set)", body = crate::error::Body),
    ))]
#[tracing::instrument(name = "stripe_webhook", skip_all, fields(event.id, event.type))]
async fn stripe_webhook(
    State(state): State<AppState>,
    request: RequestId,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Received>, ApiError> {
    let webhook = state
        .stripe_webhook
        .as_ref()
        .ok_or(ApiError::NotFound("webhook"))?;
    let signature = headers
        .get("stripe-signature")
        .map(|value| value.as_bytes());
    webhook
        .verify(signature, &body, SystemTime::now())
        .map_err(|error| ApiError::InvalidWebhook(error.to_string()))?;
    let event = parse(&body)?;
    let span = tracing::Span::current();
    span.record("event.id", event.event_id.as_str());
    span.record("event.type", event.event_type.as_str());

    let origin = Origin {
        request_id: Some(request.as_str().to_owned()),
        trace_parent: platform::telemetry::current_trace_parent(),
    };
    match state.stripe_intake.take(event, origin).await {
        Ok(Intake::Recorded(job_id)) => {
            tracing::info!("stripe event recorded");
            Ok(Json(Received {
                received: true,
                duplicate: false,
                job_id: Some(job_id),
            }))
        }
        Ok(Intake::Duplicate) => {
            // Delivered before: the first delivery's job applies it.
            tracing::info!("stripe event received again; already recorded");
            Ok(Json(Received {
                received: true,
                duplicate: true,
                job_id: None,
            }))
        }
        // Logged once for its group, by the intake.
        Err(IntakeError::Database(_)) => Err(ApiError::Unavailable(anyhow::anyhow!(
            "the event could not be stored"
        ))),
        Err(IntakeError::Stopped) => Err(ApiError::Unavailable(anyhow::anyhow!(
            "the api is stopping"
        ))),
    }
}

/// The signed body as an event: a JSON object with `object: "event"`, an
/// `evt_` id, a type, a creation time and a `data.object`.
fn parse(body: &[u8]) -> Result<StoredEvent, ApiError> {
    let not_an_event = |problem: &str| {
        ApiError::InvalidWebhook(format!("the body is not a Stripe event: {problem}"))
    };
    let payload: serde_json::Value =
        serde_json::from_slice(body).map_err(|error| not_an_event(&error.to_string()))?;
    let envelope =
        Envelope::deserialize(&payload).map_err(|error| not_an_event(&error.to_string()))?;
    if envelope.object != "event" {
        return Err(not_an_event("`object` is not \"event\""));
    }
    if !envelope.id.starts_with("evt_") || envelope.id.len() > 255 {
        return Err(not_an_event("`id` is not an event id"));
    }
    if envelope.event_type.is_empty() || envelope.event_type.len() > 255 {
        return Err(not_an_event("`type` is missing"));
    }
    let created = DateTime::from_timestamp(envelope.created, 0)
        .ok_or_else(|| not_an_event("`created` is not a time"))?;
    Ok(StoredEvent {
        event_id: envelope.id,
        event_type: envelope.event_type,
        created,
        payload,
    })
}
