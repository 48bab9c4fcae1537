//! Operator endpoints, enabled by setting `ADMIN_TOKEN`: queue views and
//! actions for the dashboard at `/admin` and for scripts. Callers present
//! `ADMIN_TOKEN` as a bearer token, or the dashboard's session cookie.
//!
//! - `access.rs`: the `Admin` extractor, signing in and out, the audit log.
//! - `queues.rs`: counts, dead letters, retries, pauses.
//! - `jobs.rs`: one job, its record beside BullMQ's view.
//! - `incidents.rs`: the alerts' incidents, open and recent.

mod access;
mod incidents;
mod jobs;
mod queues;

use utoipa_axum::routes;

use super::endpoints::{Endpoints, Limits};

/// `POST` and `DELETE /api/admin/session` (signing in and out are
/// credential endpoints, counted per client like login), and the queue
/// views and actions.
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    endpoints
        .add(routes!(access::sign_in), Limits::CREDENTIALS)
        .add(routes!(access::sign_out), Limits::CREDENTIALS)
        .add(routes!(access::sign_out_everyone), Limits::JSON)
        .add(routes!(access::audit), Limits::JSON)
        .add(routes!(queues::queues), Limits::JSON)
        .add(routes!(queues::failed), Limits::JSON)
        .add(routes!(queues::retry_all), Limits::JSON)
        .add(routes!(queues::remove), Limits::JSON)
        .add(routes!(queues::retry), Limits::JSON)
        .add(routes!(queues::pause), Limits::JSON)
        .add(routes!(queues::resume), Limits::JSON)
        .add(routes!(jobs::job), Limits::JSON)
        .add(routes!(incidents::incidents), Limits::JSON)
}
