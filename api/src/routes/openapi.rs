//! `GET /api/openapi.json`: the HTTP contract as an OpenAPI 3.1 document,
//! generated from the route functions and body types, so a client in any
//! language can be generated from it and it cannot drift from the code
//! (the api's tests check real answers against it).

use std::sync::LazyLock;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::conditional;
use crate::state::AppState;

/// `GET /api/openapi.json`.
pub fn router() -> Router<AppState> {
    Router::new().route(PATH, get(document))
}

/// Where the document is served.
pub const PATH: &str = "/api/openapi.json";

/// The contract. Every route of the api is listed here.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Acme API",
        version = "1",
        description = "Sign up, upload a profile photo, and follow the background jobs they start. \
                       Every error answer has the shape of `ErrorBody`."
    ),
    paths(
        super::signup::signup,
        super::session::login,
        super::session::logout,
        super::session::logout_everywhere,
        super::me::me,
        super::me::onboarding_pdf,
        super::jobs::job_status,
        super::jobs::my_jobs,
        super::photos::upload,
        super::photos::serve,
        super::photos::serve_original,
        super::health::healthz,
        super::health::readyz,
        super::admin::sign_in,
        super::admin::sign_out,
        super::admin::queues,
        super::admin::failed,
        super::admin::retry_all,
        super::admin::retry,
        super::admin::remove,
        super::admin::pause,
        super::admin::resume,
        super::admin::job,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "account", description = "Signup, sessions and the profile"),
        (name = "jobs", description = "The background work a request started"),
        (name = "photos", description = "Profile photos and their sizes"),
        (name = "operations", description = "Health, readiness, and operator views (`ADMIN_TOKEN`)"),
    )
)]
pub struct ApiDoc;

/// A file's bytes, in a document: JSON Schema's binary string.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // Only named in the document; files are streamed.
pub(crate) struct FileBytes(Vec<u8>);

/// `bearer`: a session token from signup or login. `admin`: `ADMIN_TOKEN`.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["bearer", "admin"] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// Rendered once: the document only changes with the binary.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_json()
        .expect("the OpenAPI document serializes")
});

async fn document(request: HeaderMap) -> Response {
    conditional::answer(&request, DOCUMENT.as_str(), "application/json", "no-cache")
}
