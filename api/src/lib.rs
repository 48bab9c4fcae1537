//! The HTTP API: validates, writes, records the slow work, and answers in
//! milliseconds. The work itself happens in the `worker` binary.
//!
//! - [`Application`]: builds the router on a bound listener and serves it.
//! - [`routes`]: one module per resource (`signup`, `session`, `me`,
//!   `jobs`, `health`, `admin`, `photos`).
//! - [`domain`]: validated input (`EmailAddress`, `UserName`, `Password`, `NewUser`).
//! - [`outbox`]: job records written with the change that causes them, and
//!   the relay that delivers the ones Redis did not take.
//! - [`server`]: the connection loop, with header, idle and connection limits.
//! - [`pace`]: the minimum pace of request bodies.
//! - [`drain`]: reading a refused body's rest, so the client sees the answer.
//! - [`passwords`]: Argon2id on dedicated threads behind a bounded queue.
//! - [`auth`]: hashed opaque bearer tokens, checked and revoked.
//! - [`admin_session`]: the dashboard's signed session cookie.
//! - [`browser`]: security headers, the web app's CSP, CORS.
//! - [`conditional`]: `ETag` and `304 Not Modified` for the polled answers.
//! - [`error`]: the single [`ApiError`](error::ApiError) and its JSON shape.
//! - [`request_id`]: one `x-request-id` per request, carried to its jobs.
//! - [`rate_limit`]: per-client limits on signup and login (429), bounded memory.
//! - [`token_cache`]: recently verified tokens, sparing the hot path a query.
//! - [`metrics`]: Prometheus metrics of requests, Argon2 and the outbox.
//! - [`extract`], [`state`]: request extractors and shared state.

pub mod admin_session;
pub mod auth;
pub mod browser;
pub mod conditional;
pub mod domain;
pub mod drain;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod outbox;
pub mod pace;
pub mod passwords;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod server;
pub mod state;
pub mod token_cache;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::http::StatusCode;
use axum::{Router, middleware};
use secrecy::ExposeSecret;
use shared::config::Settings;
use shared::queue::JobQueues;
use shared::storage::Storage;
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::passwords::Passwords;
use crate::rate_limit::RateLimiter;
use crate::request_id::RequestId;
use crate::state::AppState;
use crate::token_cache::TokenCache;

/// JSON bodies are small; anything bigger is a mistake or an attack.
const JSON_BODY_LIMIT: usize = 16 * 1024;
/// Tokens the api remembers as verified (about 100 bytes each).
const TOKEN_CACHE_CAPACITY: usize = 100_000;
/// Clients the signup/login limiter tracks (about 40 bytes each).
const RATE_LIMIT_CAPACITY: usize = 100_000;
/// Longest a request may take before it is answered 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The same for photo uploads, which move megabytes from phones.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);
/// How often the outbox relay looks for jobs Redis did not take.
const RELAY_INTERVAL: Duration = Duration::from_secs(5);
/// How often leftovers of uploads cut short by a crash are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// The API, bound to its port and ready to serve.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    cors: Option<CorsLayer>,
}

impl Application {
    /// Connects, migrates and binds. Fails with a clear message when
    /// Postgres is unreachable or the port is taken.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let pool = shared::db::migrated_pool(settings).await?;
        // Installed before the first request, so no request goes uncounted.
        shared::metrics::handle();
        let address = format!("{}:{}", settings.host, settings.port);
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("failed to listen on {address}"))?;
        let client_ip_header = settings
            .client_ip_header
            .as_deref()
            .map(HeaderName::try_from)
            .transpose()
            .context("CLIENT_IP_HEADER is not a valid header name")?;
        let state = AppState {
            pool,
            queues: Arc::new(JobQueues::new(settings)),
            storage: Storage::from_settings(settings)?,
            photo_max_bytes: settings.photo_max_bytes,
            photo_max_pixels: settings.photo_max_pixels,
            photo_max_decode_bytes: settings.photo_max_decode_bytes,
            http: settings.http,
            upload_limits: Arc::new(settings.uploads.clone()),
            upload_slots: Arc::new(tokio::sync::Semaphore::new(settings.uploads.max_concurrent)),
            passwords: Passwords::start(settings.argon2.threads, settings.argon2.max_queue)
                .context("cannot start the password hashing threads")?,
            login_failures: settings.login_failures,
            tokens: Arc::new(TokenCache::new(TOKEN_CACHE_CAPACITY)),
            auth_limiter: (settings.auth_rate_limit > 0).then(|| {
                Arc::new(RateLimiter::new(
                    settings.auth_rate_limit,
                    Duration::from_secs(60),
                    RATE_LIMIT_CAPACITY,
                ))
            }),
            client_ip_header,
            admin_token_hash: settings
                .admin_token
                .as_ref()
                .map(|token| auth::hash_token(token.expose_secret().trim())),
            public_url: settings.public_url.as_str().into(),
            app_policy: browser::app_policy(settings),
            admin_session_key: settings.admin_token.as_ref().map(|token| {
                Arc::new(admin_session::SessionKey::derive(
                    token.expose_secret().trim(),
                ))
            }),
            secure_cookies: settings.public_url.starts_with("https://"),
            metrics_token_hash: settings
                .metrics_token
                .as_ref()
                .map(|token| auth::hash_token(token.expose_secret().trim())),
        };
        Ok(Self {
            listener,
            state,
            cors: browser::cors(&settings.cors_allowed_origins),
        })
    }

    /// The address actually bound (useful with `PORT=0`).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    /// The outbox relay runs alongside for as long as the server does.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let relay = tokio::spawn(outbox::run_relay(
            self.state.pool.clone(),
            self.state.queues.clone(),
            RELAY_INTERVAL,
        ));
        let sweeper = tokio::spawn(sweep_abandoned_uploads(self.state.clone()));
        tracing::info!(address = %self.local_addr()?, "api listening");
        let http = self.state.http;
        let served = server::serve(self.listener, router(self.state, self.cors), http, shutdown)
            .await
            .context("the HTTP server failed");
        relay.abort();
        sweeper.abort();
        served
    }
}

/// Every [`SWEEP_INTERVAL`], from start: removes what uploads cut short by a
/// crash left (a live upload cleans up after itself): spool files and
/// `uploading` rows older than any upload may take, so they stop counting
/// against their account's limits.
async fn sweep_abandoned_uploads(state: AppState) {
    let stale = UPLOAD_TIMEOUT * 2;
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        ticks.tick().await;
        match state.storage.sweep_spool(stale).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed spool files of interrupted uploads"),
            Err(error) => tracing::warn!(%error, "could not sweep the upload spool"),
        }
        let rows = sqlx::query!(
            "delete from photos where state = 'uploading'
             and created_at < now() - make_interval(secs => $1)",
            stale.as_secs_f64(),
        )
        .execute(&state.pool)
        .await;
        match rows {
            Ok(done) if done.rows_affected() > 0 => {
                tracing::info!(
                    removed = done.rows_affected(),
                    "removed rows of interrupted uploads"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not sweep interrupted uploads"),
        }
    }
}

/// The whole HTTP surface, with its middleware; `cors` for pages on other
/// origins.
pub fn router(state: AppState, cors: Option<CorsLayer>) -> Router {
    let credentials = Router::new()
        .merge(routes::signup())
        .merge(routes::login())
        .merge(routes::admin_session())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limit::limit,
        ));
    let quick = Router::new()
        .merge(credentials)
        .merge(routes::profile())
        .merge(routes::logout())
        .merge(routes::jobs())
        .merge(routes::health())
        .merge(routes::admin())
        .merge(routes::web())
        .merge(routes::openapi::router())
        .merge(routes::metrics())
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(timeout(REQUEST_TIMEOUT));
    // A 20 MiB photo from a phone on a slow link takes minutes, not seconds.
    let uploads = routes::photos(state.photo_max_bytes).layer(timeout(UPLOAD_TIMEOUT));
    let largest_body = state.photo_max_bytes + routes::PHOTO_FRAMING_BYTES;
    let http = state.http;
    Router::new()
        .merge(quick)
        .merge(uploads)
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn(move |request, next| {
            drain::drain_refused(largest_body, request, next)
        }))
        // Outside the drain, so draining a refused body keeps the pace too.
        .layer(middleware::from_fn(move |request, next| {
            pace::enforce(http, request, next)
        }))
        .layer(middleware::from_fn(browser::security_headers))
        .layer(middleware::from_fn(metrics::track))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
                let id = request
                    .extensions()
                    .get::<RequestId>()
                    .map_or("", RequestId::as_str);
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    uri = %request.uri(),
                    request_id = %id,
                )
            }),
        )
        // Outside the span, so the span has the id.
        .layer(middleware::from_fn(request_id::assign))
        // Outermost: a preflight is answered before any limit or route.
        .layer(tower::util::option_layer(cors))
        .with_state(state)
}

fn timeout(limit: Duration) -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, limit)
}
