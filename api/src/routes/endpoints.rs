//! Declaring an endpoint: its route and its OpenAPI entry come from one
//! `routes!(handler)` (utoipa-axum), and its limits are stated on the same
//! line. Nothing about an endpoint is decided by which router it sits in.
//!
//! ```text
//! endpoints.add(routes!(signup), Limits::CREDENTIALS)
//! ```

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::routing::MethodRouter;
use tower::ServiceBuilder;
use tower_http::timeout::TimeoutLayer;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{OpenApi, Ref, RefOr};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::rate_limit;
use crate::state::AppState;

/// Room for the multipart framing around an uploaded file.
pub const FRAMING_BYTES: u64 = 64 * 1024;

/// What one request to an endpoint may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body accepted; more is 413.
    pub body: usize,
    /// Longest the answer may take; then 503.
    pub time: Duration,
    /// Counted per client (`AUTH_RATE_LIMIT`): 429 past the limit.
    pub per_client: bool,
}

impl Limits {
    /// JSON bodies are small; anything bigger is a mistake or an attack.
    /// Answered within 30 s.
    pub const JSON: Self = Self {
        body: 16 * 1024,
        time: Duration::from_secs(30),
        per_client: false,
    };

    /// Signup, login and operator sign-in: as [`Limits::JSON`], and
    /// counted per client against password guessing.
    pub const CREDENTIALS: Self = Self {
        per_client: true,
        ..Self::JSON
    };

    /// A file of up to `max_bytes` in a multipart body: a 20 MiB photo from
    /// a phone on a slow link takes minutes, not seconds.
    pub fn upload(max_bytes: u64) -> Self {
        Self {
            body: usize::try_from(max_bytes + FRAMING_BYTES).unwrap_or(usize::MAX),
            time: Duration::from_secs(600),
            per_client: false,
        }
    }

    /// `router`, enforcing these limits (outermost first: time, body size,
    /// per-client count).
    pub(crate) fn apply(
        self,
        router: MethodRouter<AppState>,
        state: &AppState,
    ) -> MethodRouter<AppState> {
        let router = if self.per_client {
            router.layer::<_, Infallible>(middleware::from_fn_with_state(
                state.auth_limit.clone(),
                rate_limit::limit,
            ))
        } else {
            router
        };
        // One layer for both: each layer on a route is a boxed clone and a
        // boxed future per request.
        router.layer::<_, Infallible>(
            ServiceBuilder::new()
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    self.time,
                ))
                .layer(DefaultBodyLimit::max(self.body)),
        )
    }
}

impl Limits {
    /// Adds to `operation` the error answers these limits and the
    /// operation's inputs can cause, where its declaration does not already
    /// describe them: the document lists every status the api can answer.
    fn document(self, operation: &mut Operation) {
        let body = operation.request_body.as_ref().map(|body| match body {
            RefOr::T(body) => body.content.contains_key("application/json"),
            RefOr::Ref(_) => false,
        });
        let takes = |place: ParameterIn| {
            operation
                .parameters
                .iter()
                .flatten()
                .any(|parameter| matches!(parameter, RefOr::T(p) if p.parameter_in == place))
        };
        let (query, path) = (takes(ParameterIn::Query), takes(ParameterIn::Path));
        let mut implied = vec![(
            "503",
            "Not answered within the endpoint's time limit; or at capacity, or a dependency is \
             down (with `Retry-After`)"
                .to_owned(),
            None,
        )];
        if let Some(json) = body {
            implied.push(("400", "The body is malformed".to_owned(), None));
            implied.push((
                "408",
                "The body came slower than the minimum pace".to_owned(),
                None,
            ));
            implied.push((
                "413",
                format!("The body is over {} KiB", self.body.div_ceil(1024)),
                None,
            ));
            if json {
                implied.push(("415", "The body is not `application/json`".to_owned(), None));
                implied.push(("422", "A field is missing or invalid".to_owned(), None));
            }
        }
        if query {
            implied.push(("400", "The query string is malformed".to_owned(), None));
        }
        if path {
            // A segment that is not UTF-8 once decoded, or not the type
            // the parameter has, is refused before the handler runs.
            implied.push(("400", "A path segment is malformed".to_owned(), None));
        }
        if self.per_client {
            implied.push((
                "429",
                "Too many attempts from this client".to_owned(),
                Some("Retry-After"),
            ));
        }
        // A route's own entry is more specific than these generic ones (the
        // fields a 422 names, the limit a 429 counts): it wins.
        for (status, description, header) in implied {
            operation
                .responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| RefOr::T(error_answer(&description, header)));
        }
    }
}

/// An error answer: the shape every error has (`ErrorBody`), and `header`
/// (`Retry-After`) when the answer always carries it.
fn error_answer(description: &str, header: Option<&str>) -> Response {
    let mut answer = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    );
    if let Some(name) = header {
        let seconds = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0));
        answer = answer.header(name, HeaderBuilder::new().schema(Some(seconds)).build());
    }
    answer.build()
}

/// Every operation of a path.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The api's endpoints and the OpenAPI document describing them, built
/// together so they cannot drift apart.
pub struct Endpoints {
    router: OpenApiRouter<AppState>,
    state: AppState,
}

impl Endpoints {
    /// No endpoints yet; `document` holds what is not an endpoint (title,
    /// tags, security schemes).
    pub fn new(document: OpenApi, state: &AppState) -> Self {
        Self {
            router: OpenApiRouter::with_openapi(document),
            state: state.clone(),
        }
    }

    /// What the limits of an endpoint may depend on (e.g. `PHOTO_MAX_BYTES`).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Documented endpoints: one `routes!(handler, …)` (handlers of one
    /// path), each with `limits`.
    pub fn add(self, endpoints: UtoipaMethodRouter<AppState>, limits: Limits) -> Self {
        let (schemas, mut paths, router) = endpoints;
        for item in paths.paths.values_mut() {
            for operation in operations(item) {
                limits.document(operation);
            }
        }
        let router = limits.apply(router, &self.state);
        Self {
            router: self.router.routes((schemas, paths, router)),
            state: self.state,
        }
    }

    /// An endpoint the document does not describe: the web app's files and
    /// the scrape endpoint, which are not part of the JSON contract.
    pub fn undocumented(self, path: &str, router: MethodRouter<AppState>, limits: Limits) -> Self {
        let router = limits.apply(router, &self.state);
        Self {
            router: self.router.route(path, router),
            state: self.state,
        }
    }

    /// The router and the document.
    pub fn into_parts(self) -> (Router<AppState>, OpenApi) {
        self.router.split_for_parts()
    }
}
