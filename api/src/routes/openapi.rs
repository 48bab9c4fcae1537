//! `GET /api/openapi.json`: the HTTP contract as an OpenAPI 3.1 document,
//! generated from the route functions and body types, so a client in any
//! language can be generated from it and it cannot drift from the code
//! (the api's tests check real answers against it).

use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::conditional;

/// Where the document is served.
pub const PATH: &str = "/api/openapi.json";

/// What the document says besides its operations, which come from each
/// endpoint's declaration (`routes::table`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Acme API",
        version = "1",
        description = "Sign up, upload a profile photo, and follow the background jobs they start. \
                       Every error answer has the shape of `ErrorBody`."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "account", description = "Signup, sessions and the profile"),
        (name = "jobs", description = "The background work a request started"),
        (name = "photos", description = "Profile photos and their sizes"),
        (name = "operations", description = "Health, readiness, and operator views (`ADMIN_TOKEN`)"),
        (name = "webhooks", description = "Events other services send us (Stripe), signed"),
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

/// The document, rendered once at start: it only changes with the binary.
#[derive(Clone)]
pub struct Document(Bytes);

impl Document {
    /// `document` as JSON.
    pub fn render(document: &utoipa::openapi::OpenApi) -> Self {
        Self(Bytes::from(
            document.to_json().expect("the OpenAPI document serializes"),
        ))
    }

    /// The document, or `304` when the client has it.
    pub fn answer(&self, request: &HeaderMap) -> Response {
        conditional::answer(request, self.0.clone(), "application/json", "no-cache")
    }
}
