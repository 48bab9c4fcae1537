//! The api's Prometheus metrics: every request counted and timed by route
//! template and status, requests in flight, and the Argon2 queue sampled
//! when scraped.

use std::collections::HashMap;
use std::sync::{LazyLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

use crate::state::AppState;

/// One request being counted and timed, under its route template
/// (`/api/jobs/{id}`, never the id itself) and a method from a fixed list,
/// so the series stay few whatever clients send. Dropped without
/// [`finish`](Self::finish) (the client went away), it leaves the
/// in-flight gauge and counts nothing.
pub struct Tracked {
    route: Option<MatchedPath>,
    method: &'static str,
    started: Instant,
    _in_flight: InFlight,
}

impl Tracked {
    /// Starts counting `request`.
    pub fn start(request: &Request) -> Self {
        Self {
            route: request.extensions().get::<MatchedPath>().cloned(),
            method: method_label(request.method()),
            started: Instant::now(),
            _in_flight: InFlight::enter(),
        }
    }

    /// Counts the answer `status` and the time it took.
    pub fn finish(self, status: StatusCode) {
        let route = self.route.as_ref().map_or("unmatched", MatchedPath::as_str);
        record(self.method, route, status, self.started.elapsed());
    }
}

/// Standard methods by name; anything else a client invents is `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// One series: a route's counter and histogram for one method and status.
struct Series {
    method: &'static str,
    status: StatusCode,
    count: Counter,
    duration: Histogram,
}

/// The handles of every series seen, by route, so a request costs a lookup
/// instead of building a key and asking the recorder. Bounded: routes are
/// templates, methods a fixed list, statuses three digits.
static SERIES: LazyLock<RwLock<HashMap<String, Vec<Series>>>> = LazyLock::new(RwLock::default);

fn record(method: &'static str, route: &str, status: StatusCode, took: Duration) {
    let seconds = took.as_secs_f64();
    let known = SERIES.read().unwrap_or_else(PoisonError::into_inner);
    if let Some(series) = known.get(route).and_then(|all| {
        all.iter()
            .find(|s| s.method == method && s.status == status)
    }) {
        series.count.increment(1);
        series.duration.record(seconds);
        return;
    }
    drop(known);
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.as_str().to_owned()),
    ];
    let series = Series {
        method,
        status,
        count: counter!("http_requests_total", &labels),
        duration: histogram!("http_request_duration_seconds", &labels),
    };
    series.count.increment(1);
    series.duration.record(seconds);
    let mut known = SERIES.write().unwrap_or_else(PoisonError::into_inner);
    let all = known.entry(route.to_owned()).or_default();
    if !all.iter().any(|s| s.method == method && s.status == status) {
        all.push(series);
    }
}

/// Requests in flight.
static IN_FLIGHT: LazyLock<Gauge> = LazyLock::new(|| gauge!("http_requests_in_flight"));

/// One request in flight; leaves the gauge when dropped, so a request the
/// client abandoned does not stay counted.
struct InFlight;

impl InFlight {
    fn enter() -> Self {
        IN_FLIGHT.increment(1.0);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.decrement(1.0);
    }
}

/// The text exposition, with the Argon2 queue brought up to date first.
/// The queue, outbox and Redis memory gauges are the alert monitor's
/// latest measurement ([`crate::alerts`]): a scrape asks neither Redis nor
/// Postgres anything.
pub fn render(state: &AppState) -> String {
    gauge!("argon2_queue_depth").set(state.passwords.waiting() as f64);
    platform::metrics::handle().render()
}
