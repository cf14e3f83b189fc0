//! The API's one error type, rendered as `application/problem+json` (RFC 9457) with a stable
//! `type` per kind of problem; authentication problems add RFC 6750's `WWW-Authenticate`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::Json;
use crate::oauth::bearer::BearerError;
use crate::store::StoreError;

/// The media type of every error body (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the kind of problem, e.g. `https://tessera.dev/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For validation problems: what is wrong with each field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        FieldError { field: field.to_owned(), message: message.into() }
    }
}

#[derive(Debug)]
pub enum ApiError {
    Auth(BearerError),
    NotFound(&'static str),
    Validation(Vec<FieldError>),
    Malformed(String),
    /// The body is over `max_body_bytes` (the limit is given).
    TooLarge(usize),
    UnsupportedMediaType,
    Conflict(String),
    IdempotencyMismatch,
    Forbidden(&'static str, String),
    Internal(anyhow::Error),
}

impl From<BearerError> for ApiError {
    fn from(e: BearerError) -> Self {
        ApiError::Auth(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.into())
    }
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title, detail, errors) = match self {
            ApiError::Auth(e) => return e.into_response(),
            ApiError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                "not-found",
                "Not found",
                format!("No {what} with this id in this workspace."),
                vec![],
            ),
            ApiError::Validation(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid request",
                "One or more fields are invalid.".to_owned(),
                errors,
            ),
            ApiError::Malformed(why) => {
                (StatusCode::BAD_REQUEST, "malformed-request", "Malformed request", why, vec![])
            }
            ApiError::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                format!("The request body is larger than {limit} bytes."),
                vec![],
            ),
            ApiError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "Send the request body as application/json.".to_owned(),
                vec![],
            ),
            ApiError::Conflict(why) => (StatusCode::CONFLICT, "conflict", "Conflict", why, vec![]),
            ApiError::IdempotencyMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused",
                "This Idempotency-Key was already used with a different request.".to_owned(),
                vec![],
            ),
            ApiError::Forbidden(kind, why) => (StatusCode::FORBIDDEN, kind, "Forbidden", why, vec![]),
            ApiError::Internal(e) if crate::store::is_unavailable(&e) => {
                tracing::warn!(error = %e, "database unavailable");
                return unavailable();
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "API request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                    "Try again shortly.".to_owned(),
                    vec![],
                )
            }
        };
        problem(status, kind, title, detail, errors)
    }
}

pub fn problem(status: StatusCode, kind: &str, title: &str, detail: String, errors: Vec<FieldError>) -> Response {
    let body = Problem {
        kind: format!("https://tessera.dev/problems/{kind}"),
        title: title.to_owned(),
        status: status.as_u16(),
        detail,
        errors,
    };
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

/// 503 with `Retry-After`, for when the database cannot be reached.
pub fn unavailable() -> Response {
    let mut response = problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Temporarily unavailable",
        "Tessera cannot reach its database right now; retry shortly.".to_owned(),
        vec![],
    );
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(crate::store::RETRY_AFTER_SECONDS));
    response
}
