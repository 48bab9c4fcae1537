//! The one error type of the HTTP boundary and its mapping to responses.
//!
//! Client mistakes carry what the client needs to fix them. Server faults
//! log their full cause chain once, here, and answer with a generic message:
//! internals never leak into a response.

pub use platform::server::LogOnce;

use crate::domain::FieldErrors;
use axum::Json;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all (400).
    #[error("{0}")]
    MalformedJson(String),
    /// A body that is not what its Content-Type says, e.g. broken multipart (400).
    #[error("{0}")]
    MalformedBody(String),
    /// Well-formed JSON of the wrong shape, e.g. a number where text belongs (422).
    #[error("{0}")]
    InvalidJson(String),
    /// The body is larger than the route accepts (413).
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// A photo over `PHOTO_MAX_BYTES` (413, `payload_too_large`).
    #[error("the photo is larger than the {} limit", human_size(*.0))]
    PhotoTooLarge(u64),
    /// The body is not in a format the route accepts (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Fields failed validation (422), each with its problem.
    #[error("some fields are invalid")]
    Validation(FieldErrors),
    /// Signup with an email that already has an account, in any letter case (409).
    #[error("an account with this email already exists")]
    EmailTaken,
    /// A password reset link that is unknown, used or expired (400).
    #[error("this reset link is invalid, used or expired; ask for a new one")]
    InvalidResetLink,
    /// An email verification link that is unknown, used or expired (400).
    #[error("this confirmation link is invalid, used or expired; ask for a new one")]
    InvalidVerificationLink,
    /// A webhook that is not signed by the sender it claims, is stale, or
    /// is not an event (400); the message says which.
    #[error("{0}")]
    InvalidWebhook(String),
    /// An unsubscribe link that is not one we signed (400).
    #[error("this unsubscribe link is invalid; use the one in your latest email")]
    InvalidUnsubscribeLink,
    /// The address is confirmed already: there is nothing to resend (409).
    #[error("the email address is confirmed already")]
    AlreadyVerified,
    /// A signed-in user's password, asked again before a change to the
    /// account, is wrong (403: the session itself is fine).
    #[error("the password is wrong")]
    WrongPassword,
    /// Wrong email or password, or an account locked for strangers after
    /// failed logins: one answer, so it tells nobody which addresses have
    /// an account (401).
    #[error(
        "the email or password is wrong (after many failed attempts an account takes logins only from devices that signed in before, for a while; resetting the password lets you in at once)"
    )]
    InvalidCredentials,
    /// No valid bearer token (401).
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// Nothing here, or nothing this user may see (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Too many attempts from this client; retry after this many seconds (429).
    #[error("too many attempts; retry in {0} seconds")]
    RateLimited(u64),
    /// The account already has this many uploads in progress (429).
    #[error("this account already has {0} uploads in progress; retry when one has finished")]
    UploadsInProgress(u32),
    /// The user already holds this many live streams here (429).
    #[error("this account already has {0} live event streams open; close one (a tab) first")]
    TooManyStreams(usize),
    /// No live stream can be opened here now (this instance is full,
    /// stopping, or not hearing changes); poll, or retry after this many
    /// seconds (503).
    #[error("live updates are unavailable right now; poll the job status, or retry in {0} seconds")]
    StreamsUnavailable(u64),
    /// The request body stopped coming, or came slower than the minimum pace (408).
    #[error("the request body arrived too slowly; the request was cut off")]
    BodyTooSlow,
    /// Signed in, but the request lacks what the action needs (403).
    #[error("{0}")]
    Forbidden(&'static str),
    /// The account has used up a quota (403); the message says which.
    #[error("{0}")]
    QuotaExceeded(String),
    /// This instance is at capacity for this kind of work; retry after this
    /// many seconds (503). Load, not a fault: nothing is logged as an error.
    #[error("the service is busy; retry in {0} seconds")]
    Overloaded(u64),
    /// A dependency is down; retrying later will help (503).
    #[error("the service is temporarily unavailable, please retry")]
    Unavailable(#[source] anyhow::Error),
    /// A bug or an unexpected failure (500).
    #[error("something went wrong on our side")]
    Internal(#[from] anyhow::Error),
}

impl From<store::users::CreateError> for ApiError {
    fn from(error: store::users::CreateError) -> Self {
        match error {
            store::users::CreateError::EmailTaken => Self::EmailTaken,
            store::users::CreateError::Database(error) => Self::database(error),
        }
    }
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_)
            | Self::MalformedBody(_)
            | Self::InvalidResetLink
            | Self::InvalidVerificationLink
            | Self::InvalidWebhook(_)
            | Self::InvalidUnsubscribeLink => StatusCode::BAD_REQUEST,
            Self::InvalidJson(_) | Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge | Self::PhotoTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::EmailTaken | Self::AlreadyVerified => StatusCode::CONFLICT,
            Self::InvalidCredentials | Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::RateLimited(_) | Self::UploadsInProgress(_) | Self::TooManyStreams(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::BodyTooSlow => StatusCode::REQUEST_TIMEOUT,
            Self::QuotaExceeded(_) | Self::Forbidden(_) | Self::WrongPassword => {
                StatusCode::FORBIDDEN
            }
            Self::Overloaded(_) | Self::Unavailable(_) | Self::StreamsUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed_json",
            Self::MalformedBody(_) => "malformed_body",
            Self::InvalidJson(_) => "invalid_json",
            Self::PayloadTooLarge | Self::PhotoTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Validation(_) => "validation_failed",
            Self::EmailTaken => "email_taken",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidResetLink => "invalid_reset_link",
            Self::WrongPassword => "wrong_password",
            Self::InvalidVerificationLink => "invalid_verification_link",
            Self::AlreadyVerified => "already_verified",
            Self::InvalidWebhook(_) => "invalid_webhook",
            Self::InvalidUnsubscribeLink => "invalid_unsubscribe_link",
            Self::Unauthorized => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::RateLimited(_) | Self::UploadsInProgress(_) => "rate_limited",
            Self::TooManyStreams(_) => "too_many_streams",
            Self::StreamsUnavailable(_) => "streams_unavailable",
            Self::BodyTooSlow => "request_timeout",
            Self::QuotaExceeded(_) => "quota_exceeded",
            Self::Forbidden(_) => "forbidden",
            Self::Overloaded(_) => "overloaded",
            Self::Unavailable(_) => "service_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    /// A query parameter that is out of range or malformed (422, under
    /// `error.fields` like a body's fields).
    pub fn invalid_query(parameter: &'static str, problem: String) -> Self {
        Self::Validation(FieldErrors::from([(parameter, problem)]))
    }

    /// Classifies a database failure: an unreachable database is a 503 the
    /// client may retry, anything else a 500.
    pub fn database(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(anyhow::Error::new(error).context("postgres is unreachable"))
            }
            // Two requests took the same rows in opposite orders (rare:
            // moves between two accounts' addresses at once) and Postgres
            // chose this one to give way: trying again succeeds.
            sqlx::Error::Database(ref database)
                if matches!(database.code().as_deref(), Some("40P01" | "40001")) =>
            {
                Self::Unavailable(anyhow::Error::new(error).context("a concurrent request won"))
            }
            other => Self::Internal(anyhow::Error::new(other).context("database query failed")),
        }
    }
}

/// Password hashing: a full queue is load (503 `overloaded`), anything else a bug.
impl From<crate::passwords::HashError> for ApiError {
    fn from(error: crate::passwords::HashError) -> Self {
        match error {
            crate::passwords::HashError::Overloaded(_) => {
                static FULL: LogOnce = LogOnce::new();
                if FULL.due() {
                    tracing::warn!("the password hashing queue is full; answering 503");
                }
                Self::Overloaded(1)
            }
            other => Self::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        Self::database(error)
    }
}

/// Storage trouble is the store's, not the client's: retrying later helps.
impl From<storage::StorageError> for ApiError {
    fn from(error: storage::StorageError) -> Self {
        Self::Unavailable(anyhow::Error::new(error).context("storage is unavailable"))
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if crate::pace::is_too_slow(&rejection) {
            Self::BodyTooSlow
        } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::PayloadTooLarge
        } else {
            Self::MalformedBody(rejection.body_text())
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if crate::pace::is_too_slow(&rejection) {
            return Self::BodyTooSlow;
        }
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType(
                "expected a JSON body with `Content-Type: application/json`".into(),
            ),
            JsonRejection::JsonSyntaxError(e) => Self::MalformedJson(e.body_text()),
            JsonRejection::JsonDataError(e) => Self::InvalidJson(e.body_text()),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            other => Self::MalformedJson(other.body_text()),
        }
    }
}

/// Every error answer: `{"error": {"code", "message", "fields"?}}`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorBody)]
pub(crate) struct Body<'a> {
    error: Detail<'a>,
}

/// What went wrong: a stable `code` to branch on, a `message` for people,
/// and for validation failures the problem of each field.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorDetail)]
pub(crate) struct Detail<'a> {
    #[schema(example = "validation_failed")]
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::BTreeMap<String, String>>)]
    fields: Option<&'a FieldErrors>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(cause) | Self::Unavailable(cause) = &self {
            // `{:#}` prints the whole context chain on one line.
            tracing::error!(error = format!("{cause:#}"), %status, "request failed");
        }
        let fields = match &self {
            Self::Validation(fields) => Some(fields),
            _ => None,
        };
        let body = Body {
            error: Detail {
                code: self.code(),
                message: self.to_string(),
                fields,
            },
        };
        let retry_after = match &self {
            Self::RateLimited(seconds)
            | Self::Overloaded(seconds)
            | Self::StreamsUnavailable(seconds) => Some(*seconds),
            // A tab closing frees a slot; nobody knows when.
            Self::TooManyStreams(_) => Some(10),
            // A dependency blinked: a client that retries soon will likely succeed.
            Self::Unavailable(_) => Some(1),
            // Nobody knows when an upload in progress ends; a few seconds is
            // a pace for a client to check again at.
            Self::UploadsInProgress(_) => Some(5),
            _ => None,
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// `response`, in our JSON shape if it is an error answer that is not
/// already (a 405 from the router, an extractor's plain-text rejection), so
/// a client never has to parse two kinds of error.
pub fn json_shaped(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let reason = status.canonical_reason().unwrap_or("error");
    let code = reason.to_lowercase().replace([' ', '-'], "_");
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "this route does not accept that method".to_owned(),
        _ => reason.to_lowercase(),
    };
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}

/// A size as people read it (binary units, the way phones show file sizes).
fn human_size(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if bytes >= MB {
        format!("{} MB", bytes / MB)
    } else {
        format!("{} KB", bytes.div_ceil(1024))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_faults_never_show_their_cause() {
        let error = ApiError::Internal(anyhow::anyhow!("password for db is hunter2"));
        assert_eq!(error.to_string(), "something went wrong on our side");
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn an_unreachable_database_is_a_retryable_503() {
        let error = ApiError::database(sqlx::Error::PoolTimedOut);
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
