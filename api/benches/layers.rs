//! What each layer around the routes costs, in CPU per request: the
//! production stack (`api::layers::Layer::ALL`) applied one layer at a time
//! around a handler that answers like `GET /api/jobs/{id}` (the polled JSON
//! with its ETag, or a 304) without the database, driven in-process
//! (`tower::ServiceExt::oneshot`, no sockets) on one thread, with the
//! production tracing subscriber (JSON, info) and metrics recorder
//! installed. The difference between two lines is one layer's cost.
//!
//! `cargo bench -p api --bench layers [requests per line, default 200000]`

#![allow(clippy::print_stdout)] // A benchmark prints its table.

use std::hint::black_box;
use std::time::Instant;

use api::layers::Layer;
use api::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, header};
use axum::routing::get;
use platform::config::{LogFormat, Settings};
use tower::ServiceExt as _;

fn main() {
    let requests: u32 = std::env::args()
        .nth(1)
        .filter(|arg| !arg.starts_with('-'))
        .map_or(200_000, |n| n.parse().expect("a number of requests"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(measure(requests));
}

async fn measure(requests: u32) {
    let storage = std::env::temp_dir().join(format!("layers-bench-{}", std::process::id()));
    let settings = Settings::from_lookup(|key| match key {
        // Never connected: the handler does not touch the database.
        "DATABASE_URL" => Some("postgres://unused@127.0.0.1:1/unused".into()),
        "STORAGE_URL" => Some(storage.display().to_string()),
        "ARGON2_THREADS" => Some("1".into()),
        _ => None,
    })
    .expect("bench settings");
    // As in production: JSON logs at info (to a pipe nobody reads) and the
    // Prometheus recorder.
    let _telemetry = platform::telemetry::init(LogFormat::Json, "layers-bench", None);
    platform::metrics::handle();
    let pool = store::db::pool(&settings.database).expect("a lazy pool");
    let state = AppState::build(&settings, pool).expect("the state");
    let etag = {
        let response = answer(HeaderMap::new()).await;
        response.headers()[header::ETAG].clone()
    };

    println!("{requests} requests per line, one thread; ns per request (what the line adds)");
    println!(
        "{:<34} {:>10} {:>9}   {:>10} {:>9}",
        "layers", "200", "+", "304", "+"
    );
    let mut previous: Option<(f64, f64)> = None;
    for applied in 0..=Layer::ALL.len() {
        let router = Layer::ALL[..applied]
            .iter()
            .fold(handler(), |router, layer| layer.wrap(router, &state))
            .with_state(state.clone());
        let full = time(&router, requests, None).await;
        let not_modified = time(&router, requests, Some(etag.to_str().expect("ascii"))).await;
        let name = if applied == 0 {
            "handler alone".to_owned()
        } else {
            format!("+ {:?}", Layer::ALL[applied - 1])
        };
        let (full_delta, nm_delta) =
            previous.map_or((0.0, 0.0), |(f, n)| (full - f, not_modified - n));
        println!(
            "{name:<34} {full:>10.0} {full_delta:>+9.0}   {not_modified:>10.0} {nm_delta:>+9.0}"
        );
        previous = Some((full, not_modified));
    }
    std::fs::remove_dir_all(&storage).ok();
}

/// A route shaped like `GET /api/jobs/{id}`, without the database.
fn handler() -> Router<AppState> {
    Router::new().route(
        "/api/jobs/{id}",
        get(|headers: HeaderMap| async move { answer(headers).await }),
    )
}

/// The polled answer: a job status as the api serializes it.
async fn answer(headers: HeaderMap) -> axum::response::Response {
    let status = serde_json::json!({
        "id": "01a22262-1227-71af-93b3-b1b91c1ea0ff",
        "name": "welcome-email",
        "state": "completed",
        "attempts_made": 1,
        "max_attempts": 5,
        "progress": 100,
        "result": {"delivered_to": "ada@example.com", "transport": "smtp"},
        "error": null,
        "created_at": "2026-11-28T13:39:42.244385Z",
        "started_at": "2026-11-28T13:39:42.263172Z",
        "finished_at": "2026-11-28T13:39:42.301234Z",
    });
    api::conditional::private_json(&headers, &status)
}

/// Mean ns per request, the best of five rounds of `requests / 5` (after a
/// warm-up of a tenth): the machine's other work only ever adds time.
async fn time(router: &Router, requests: u32, if_none_match: Option<&str>) -> f64 {
    let request = || {
        let mut builder = Request::get("/api/jobs/01a22262-1227-71af-93b3-b1b91c1ea0ff")
            .header(
                header::AUTHORIZATION,
                "Bearer ltM0hlZI7yYQXiB-Wtqcg-hMhOWrhMHHj9V5GVO9W5I",
            )
            .header(header::USER_AGENT, "wrk");
        if let Some(etag) = if_none_match {
            builder = builder.header(header::IF_NONE_MATCH, etag);
        }
        builder.body(Body::empty()).expect("a request")
    };
    for _ in 0..requests / 10 {
        black_box(router.clone().oneshot(request()).await.expect("infallible"));
    }
    let per_round = (requests / 5).max(1);
    let mut best = f64::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        for _ in 0..per_round {
            let response = router.clone().oneshot(request()).await.expect("infallible");
            black_box(response);
        }
        best = best.min(started.elapsed().as_nanos() as f64 / f64::from(per_round));
    }
    best
}
