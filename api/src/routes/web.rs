//! The web app at `/`: plain HTML, CSS and JavaScript modules from `web/`,
//! compiled into the binary, so what ships is what runs and the api needs
//! no file beside it.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::conditional;
use crate::state::AppState;

/// `GET /` and the app's assets.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|state, headers| asset(state, headers, INDEX)))
        .route(
            "/app.js",
            get(|state, headers| asset(state, headers, SCRIPT)),
        )
        .route(
            "/app.css",
            get(|state, headers| asset(state, headers, STYLE)),
        )
        .route(
            "/favicon.svg",
            get(|state, headers| asset(state, headers, ICON)),
        )
        .route(
            "/admin",
            get(|state, headers| operators(state, headers, DASHBOARD)),
        )
        .route(
            "/admin.js",
            get(|state, headers| operators(state, headers, DASHBOARD_SCRIPT)),
        )
}

/// A file of the app and its type.
struct Asset {
    body: &'static str,
    content_type: &'static str,
}

const INDEX: Asset = Asset {
    body: include_str!("../../../web/index.html"),
    content_type: "text/html; charset=utf-8",
};
const SCRIPT: Asset = Asset {
    body: include_str!("../../../web/app.js"),
    content_type: "text/javascript; charset=utf-8",
};
const STYLE: Asset = Asset {
    body: include_str!("../../../web/app.css"),
    content_type: "text/css; charset=utf-8",
};
const DASHBOARD: Asset = Asset {
    body: include_str!("../../../web/admin.html"),
    content_type: "text/html; charset=utf-8",
};
const DASHBOARD_SCRIPT: Asset = Asset {
    body: include_str!("../../../web/admin.js"),
    content_type: "text/javascript; charset=utf-8",
};
const ICON: Asset = Asset {
    body: include_str!("../../../web/favicon.svg"),
    content_type: "image/svg+xml",
};

/// The file, revalidated on every load (`no-cache` + `ETag`): a deploy is
/// seen at once, an unchanged file costs a 304.
async fn asset(State(state): State<AppState>, request: HeaderMap, asset: Asset) -> Response {
    let mut response = conditional::answer(&request, asset.body, asset.content_type, "no-cache");
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, state.app_policy.clone());
    // No other window keeps a handle on ours (the token lives in it).
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// The operators' dashboard: only where `ADMIN_TOKEN` is set; elsewhere it
/// does not exist, like the endpoints it calls.
async fn operators(state: State<AppState>, request: HeaderMap, asset: Asset) -> Response {
    if state.admin_token_hash.is_none() {
        return crate::error::ApiError::NotFound("route").into_response();
    }
    self::asset(state, request, asset).await
}
