//! The web app at `/`: plain HTML, CSS and JavaScript modules from `web/`,
//! compiled into the binary, so what ships is what runs and the api needs
//! no file beside it; and `/js/labels.js`, the job catalogue's labels as a
//! module, so the pages name jobs the way the server does.

use std::sync::LazyLock;

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
    body: fn() -> &'static str,
    content_type: &'static str,
    operators_only: bool,
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// A file of `web/`, compiled in: `asset!(path, file, type)`, and
/// `operators` for the dashboard's.
macro_rules! asset {
    ($path:literal, $file:literal, $content_type:expr) => {
        asset!(@ $path, $file, $content_type, false)
    };
    ($path:literal, $file:literal, $content_type:expr, operators) => {
        asset!(@ $path, $file, $content_type, true)
    };
    (@ $path:literal, $file:literal, $content_type:expr, $operators_only:literal) => {
        Asset {
            path: $path,
            body: || include_str!(concat!("../../../web/", $file)),
            content_type: $content_type,
            operators_only: $operators_only,
        }
    };
}

/// Every file under `web/`, and the labels.
static ASSETS: &[Asset] = &[
    asset!("/", "index.html", HTML),
    // The app's own screens, which emails link to.
    asset!("/forgot-password", "index.html", HTML),
    asset!("/reset-password", "index.html", HTML),
    asset!("/verify-email", "index.html", HTML),
    asset!("/unsubscribe", "index.html", HTML),
    asset!("/app.js", "app.js", JS),
    asset!("/ui.js", "ui.js", JS),
    asset!("/js/api.js", "js/api.js", JS),
    asset!("/js/session.js", "js/session.js", JS),
    asset!("/js/forms.js", "js/forms.js", JS),
    asset!("/js/auth.js", "js/auth.js", JS),
    asset!("/js/links.js", "js/links.js", JS),
    asset!("/js/profile.js", "js/profile.js", JS),
    asset!("/js/photo.js", "js/photo.js", JS),
    asset!("/js/jobs.js", "js/jobs.js", JS),
    asset!("/js/live.js", "js/live.js", JS),
    asset!("/js/account.js", "js/account.js", JS),
    Asset {
        path: "/js/labels.js",
        body: labels_module,
        content_type: JS,
        operators_only: false,
    },
    asset!("/app.css", "app.css", "text/css; charset=utf-8"),
    asset!("/favicon.svg", "favicon.svg", "image/svg+xml"),
    asset!("/admin", "admin.html", HTML, operators),
    asset!("/admin.js", "admin.js", JS, operators),
    asset!("/js/admin/call.js", "js/admin/call.js", JS, operators),
    asset!(
        "/js/admin/elements.js",
        "js/admin/elements.js",
        JS,
        operators
    ),
    asset!("/js/admin/queues.js", "js/admin/queues.js", JS, operators),
    asset!("/js/admin/failed.js", "js/admin/failed.js", JS, operators),
];

/// The job catalogue's labels as a JavaScript module, made once: the web
/// app and the dashboard import it instead of keeping their own list, so a
/// queue added to the catalogue is named on every page.
fn labels_module() -> &'static str {
    static MODULE: LazyLock<String> = LazyLock::new(|| {
        let labels: serde_json::Map<String, serde_json::Value> = catalogue::QueueName::ALL
            .iter()
            .map(|queue| (queue.as_str().to_owned(), queue.label().into()))
            .collect();
        // JSON is JavaScript: the strings arrive escaped.
        format!(
            "// What people call each queue's jobs, made by the api from its job\n\
             // catalogue (catalogue/src/lib.rs): the one list, served, not copied.\n\n\
             const LABELS = new Map(Object.entries({}));\n\n\
             /** The label of `queue`'s jobs; its wire name if the catalogue has none. */\n\
             export const labelOf = (queue) => LABELS.get(queue) ?? queue;\n",
            serde_json::Value::Object(labels)
        )
    });
    &MODULE
}

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
    let mut response =
        conditional::answer(&request, (asset.body)(), asset.content_type, "no-cache");
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, state.app_policy.clone());
    // No other window keeps a handle on ours (the token lives in it).
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}
