//! The web app at `/`: plain HTML, CSS and JavaScript modules from `web/`,
//! compiled into the binary, so what ships is what runs and the api needs
//! no file beside it.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::endpoints::{Endpoints, Limits};
use crate::conditional;
use crate::state::AppState;

/// `GET /`, `/admin` and their assets: pages, not part of the JSON
/// contract.
pub(super) fn endpoints(endpoints: Endpoints) -> Endpoints {
    ASSETS.iter().fold(endpoints, |endpoints, asset| {
        endpoints.undocumented(
            asset.path,
            get(move |state, headers| serve(state, headers, asset)),
            Limits::JSON,
        )
    })
}

/// A file of the app: where it is served, what it is, and whether only
/// operators' deployments (with `ADMIN_TOKEN`) have it.
struct Asset {
    path: &'static str,
    body: &'static str,
    content_type: &'static str,
    operators_only: bool,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Every file under `web/`, compiled in.
static ASSETS: [Asset; 6] = [
    Asset {
        path: "/",
        body: include_str!("../../../web/index.html"),
        content_type: HTML,
        operators_only: false,
    },
    Asset {
        path: "/app.js",
        body: include_str!("../../../web/app.js"),
        content_type: JS,
        operators_only: false,
    },
    Asset {
        path: "/app.css",
        body: include_str!("../../../web/app.css"),
        content_type: "text/css; charset=utf-8",
        operators_only: false,
    },
    Asset {
        path: "/favicon.svg",
        body: include_str!("../../../web/favicon.svg"),
        content_type: "image/svg+xml",
        operators_only: false,
    },
    Asset {
        path: "/admin",
        body: include_str!("../../../web/admin.html"),
        content_type: HTML,
        operators_only: true,
    },
    Asset {
        path: "/admin.js",
        body: include_str!("../../../web/admin.js"),
        content_type: JS,
        operators_only: true,
    },
];

/// The file, revalidated on every load (`no-cache` + `ETag`): a deploy is
/// seen at once, an unchanged file costs a 304. The operators' dashboard
/// exists only where `ADMIN_TOKEN` is set, like the endpoints it calls.
async fn serve(
    State(state): State<AppState>,
    request: HeaderMap,
    asset: &'static Asset,
) -> Response {
    if asset.operators_only && state.admin_token_hash.is_none() {
        return crate::error::ApiError::NotFound("route").into_response();
    }
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
