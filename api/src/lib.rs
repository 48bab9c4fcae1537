//! The HTTP API: validates, writes, records the slow work, and answers in
//! milliseconds. The work itself happens in the `worker` binary.
//!
//! - [`Application`]: builds the router on a bound listener and serves it.
//! - [`routes`]: HTTP only, one module per resource (`signup`, `session`,
//!   `me`, `jobs`, `health`, `admin`, `photos`): extract, call a flow,
//!   answer.
//! - [`accounts`]: the account flows (signup, confirmation, reset,
//!   credentials, deletion, the take-over of unproven addresses) and
//!   their rules, written once.
//! - [`domain`]: validated input (`EmailAddress`, `UserName`, `Password`, `NewUser`).
//! - [`alerts`]: incidents of stuck, unconsumed and failing queues, told to the team.
//! - [`outbox`]: job records written with the change that causes them
//!   through one [`UnitOfWork`](outbox::UnitOfWork) (record, commit, hand
//!   over), and the relay that delivers the ones Redis did not take.
//! - [`stripe_intake`]: Stripe events stored with their jobs, deliveries
//!   arriving together committed together.
//! - [`pace`]: the minimum pace of request bodies.
//! - [`drain`]: reading a refused body's rest, so the client sees the answer.
//! - [`passwords`]: Argon2id on dedicated threads behind a bounded queue.
//! - [`auth`]: hashed opaque bearer tokens, checked and revoked.
//! - [`admin_session`]: the dashboard's signed session cookie.
//! - [`browser`]: security headers, the web app's CSP, CORS.
//! - [`conditional`]: `ETag` and `304 Not Modified` for the polled answers.
//! - [`job_versions`]: 304s for unchanged jobs without a query, told of
//!   every change by the change feed.
//! - [`events`]: live job status pushed to the browser (`GET /api/me/events`),
//!   from the same feed.
//! - [`error`]: the single [`ApiError`](error::ApiError) and its JSON shape.
//! - [`request_id`]: one `x-request-id` per request, carried to its jobs.
//! - [`rate_limit`]: per-client limits on signup and login (429), bounded memory.
//! - [`token_cache`]: recently verified tokens, sparing the hot path a query.
//! - [`metrics`]: Prometheus metrics of requests, Argon2 and the outbox.
//! - [`layers`]: the middleware around every route, as one list.
//! - [`extract`], [`state`]: request extractors and shared state.
//! - [`owners`]: the tables only the api writes (operators' sessions, incidents).

pub mod accounts;
pub mod admin_session;
pub mod alerts;
pub mod auth;
pub mod browser;
pub mod conditional;
pub mod domain;
pub mod drain;
pub mod error;
pub mod events;
pub mod extract;
pub mod job_versions;
pub mod layers;
pub mod metrics;
pub mod outbox;
pub mod owners;
pub mod pace;
pub mod passwords;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod state;
pub mod stripe_intake;
pub mod stripe_signature;
pub mod token_cache;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use platform::config::Settings;
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;

use crate::error::ApiError;
use crate::state::AppState;

/// How often the outbox relay looks for jobs Redis did not take.
const RELAY_INTERVAL: Duration = Duration::from_secs(5);
/// How often leftovers of uploads cut short by a crash are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// The API, bound to its port and ready to serve.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    cors: Option<CorsLayer>,
    monitor: alerts::Monitor,
}

impl Application {
    /// Connects, migrates and binds. Fails with a clear message when
    /// Postgres is unreachable or the port is taken.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let pool = store::db::migrated_pool(&settings.database).await?;
        // Installed before the first request, so no request goes uncounted.
        platform::metrics::handle();
        let server = &settings.server;
        let address = format!("{}:{}", server.host, server.port);
        let listener = TcpListener::bind(&address)
            .await
            .with_context(|| format!("failed to listen on {address}"))?;
        if settings.server.metrics_token.is_none() {
            tracing::warn!(
                "METRICS_TOKEN is not set: /metrics on the api's port is open to anyone who \
                 reaches it; set it, or keep /metrics away from the public at the proxy"
            );
        }
        let state = AppState::build(settings, pool)?;
        let monitor = alerts::Monitor::new(settings, state.pool.clone(), state.queues.clone())?;
        Ok(Self {
            listener,
            state,
            cors: browser::cors(&server.cors_allowed_origins),
            monitor,
        })
    }

    /// The address actually bound (useful with `PORT=0`).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    /// The outbox relay, the alert monitor and the listener for changed
    /// jobs run alongside for as long as the server does.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let relay = tokio::spawn(outbox::run_relay(
            self.state.pool.clone(),
            self.state.queues.clone(),
            self.state.feed.clone(),
            RELAY_INTERVAL,
            self.state.redis.redeliver_after,
        ));
        let sweeper = tokio::spawn(sweep_abandoned_uploads(self.state.clone()));
        let state = self.state.clone();
        let listener = tokio::spawn(async move {
            job_versions::follow(
                &state.queues,
                &state.redis,
                &state.job_versions,
                &state.events,
            )
            .await
        });
        let deliveries = tokio::spawn(events::deliver::run(self.state.clone()));
        // Under the idle timeout, so a quiet stream never looks idle.
        let heartbeat = events::HEARTBEAT_EVERY.min(self.state.http.idle_timeout / 2);
        let keeper = tokio::spawn(events::deliver::keep(self.state.clone(), heartbeat));
        // Streams end the moment the signal comes, not after the drain:
        // their clients reconnect to another instance meanwhile.
        let hub = self.state.events.clone();
        let shutdown = async move {
            shutdown.await;
            hub.close();
        };
        let queues = self.state.queues.clone();
        let eviction = tokio::spawn(async move { queue::watch_eviction_policy(&queues).await });
        tracing::info!(address = %self.local_addr()?, "api listening");
        let monitor = tokio::spawn(self.monitor.run());
        let http = self.state.http;
        let served =
            platform::server::serve(self.listener, router(self.state, self.cors), http, shutdown)
                .await
                .context("the HTTP server failed");
        relay.abort();
        sweeper.abort();
        listener.abort();
        deliveries.abort();
        keeper.abort();
        monitor.abort();
        eviction.abort();
        served
    }
}

/// Every [`SWEEP_INTERVAL`], from start: removes what uploads cut short by a
/// crash left (a live upload cleans up after itself): spool files, and
/// `uploading` rows older than any upload may take (marked failed), so they
/// stop counting as in progress.
async fn sweep_abandoned_uploads(state: AppState) {
    // Older than any upload may take.
    let stale = routes::endpoints::Limits::upload(0).time * 2;
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        ticks.tick().await;
        match state.storage.sweep_spool(stale).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "removed spool files of interrupted uploads"),
            Err(error) => tracing::warn!(%error, "could not sweep the upload spool"),
        }
        match store::photos::sweep_abandoned(&state.pool, stale).await {
            Ok(0) => {}
            Ok(failed) => tracing::info!(failed, "marked interrupted uploads failed"),
            Err(error) => tracing::warn!(%error, "could not sweep interrupted uploads"),
        }
    }
}

/// The whole HTTP surface, with its middleware; `cors` for pages on other
/// origins. Each endpoint's own limits are declared with it
/// ([`routes::endpoints`]).
pub fn router(state: AppState, cors: Option<CorsLayer>) -> Router {
    let routes = routes::table::routes(&state).fallback(|| async { ApiError::NotFound("route") });
    layers::Layer::ALL
        .into_iter()
        .fold(routes, |router, layer| layer.wrap(router, &state))
        // Outermost: a preflight is answered before any limit or route.
        .layer(tower::util::option_layer(cors))
        .with_state(state)
}
