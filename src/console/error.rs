//! The console's one error type: every failure becomes a readable page with the right status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;

use crate::accounts::AccountError;
use crate::http::form::FormError;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the form expired or was sent from another site")]
    Csrf,
    #[error("{0}")]
    Form(#[from] FormError),
    #[error("too many attempts")]
    Throttled { retry_after: i64 },
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<AccountError> for PageError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NotFound(_) => PageError::NotFound,
            AccountError::Forbidden(why) => PageError::Forbidden(why.to_owned()),
            AccountError::Conflict(why) => PageError::Conflict(why),
            AccountError::Throttled { retry_after } => PageError::Throttled { retry_after },
            AccountError::Invalid { .. } | AccountError::EmailTaken | AccountError::InvalidCredentials => {
                PageError::BadRequest(e.to_string())
            }
            AccountError::Internal(e) => PageError::Internal(e),
        }
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::Internal(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match &self {
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or you do not have access to it.".to_owned(),
            ),
            PageError::BadRequest(why) => (StatusCode::BAD_REQUEST, "That did not work", why.clone()),
            PageError::Forbidden(why) => (StatusCode::FORBIDDEN, "Not allowed", why.clone()),
            PageError::Conflict(why) => (StatusCode::CONFLICT, "That did not work", why.clone()),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "The form expired",
                "This form expired or was sent from another site. Go back, reload the page and try again.".to_owned(),
            ),
            PageError::Form(FormError::TooLarge) => (StatusCode::PAYLOAD_TOO_LARGE, "Too much data", self.to_string()),
            PageError::Form(FormError::ContentType) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "Unsupported form", self.to_string())
            }
            PageError::Form(_) => (StatusCode::BAD_REQUEST, "Unreadable form", self.to_string()),
            PageError::Throttled { retry_after } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                format!("Too many failed attempts. Try again in {} minutes.", (retry_after + 59) / 60),
            ),
            PageError::Internal(e) if crate::store::is_unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Temporarily unavailable",
                    "Tessera cannot reach its database right now. Try again in a few seconds.".to_owned(),
                )
            }
            PageError::Internal(e) => {
                tracing::error!(error = %e, "internal error while rendering a page");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Tessera could not complete this request. Try again shortly.".to_owned(),
                )
            }
        };
        let body = super::templates::render_html("error.html", context! { title, message, status => status.as_u16() });
        let mut response = (status, body).into_response();
        if let PageError::Throttled { retry_after } = self {
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(crate::store::RETRY_AFTER_SECONDS));
        }
        response
    }
}
