//! The token-endpoint error (RFC 6749 §5.2), used by `/oauth2/token`, `/oauth2/revoke` and
//! `/oauth2/introspect`. Each variant knows its code and status; `server_error` logs its cause
//! and never echoes it.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::http::Json;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// Client authentication failed (unknown client, wrong or missing secret).
    #[error("invalid_client")]
    InvalidClient,
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("unsupported_token_type")]
    UnsupportedTokenType,
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// A per-client limit was reached: 429 with `Retry-After` and the error code `slow_down`
    /// (registered for token endpoint responses by RFC 8628 §3.5).
    #[error("slow_down")]
    SlowDown { retry_after: i64 },
    #[error("server_error")]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        OAuthError::Internal(e.into())
    }
}

impl From<crate::limits::Throttled> for OAuthError {
    fn from(t: crate::limits::Throttled) -> Self {
        OAuthError::SlowDown { retry_after: t.retry_after }
    }
}

impl OAuthError {
    pub fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError::InvalidRequest(description.into())
    }

    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::UnsupportedTokenType => "unsupported_token_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::SlowDown { .. } => "slow_down",
            OAuthError::Internal(_) => "server_error",
        }
    }

    fn description(&self) -> String {
        match self {
            OAuthError::InvalidRequest(d) | OAuthError::InvalidScope(d) => d.clone(),
            OAuthError::InvalidClient => "client authentication failed".into(),
            OAuthError::InvalidGrant(d) => (*d).into(),
            OAuthError::UnsupportedGrantType => "grant_type must be authorization_code or refresh_token".into(),
            OAuthError::UnsupportedTokenType => "token_type_hint must be access_token or refresh_token".into(),
            OAuthError::SlowDown { retry_after } => {
                format!("too many requests for this client; retry in {retry_after} seconds")
            }
            OAuthError::Internal(_) => "the server could not complete the request".into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match &self {
            // RFC 6749 §5.2: 401 with WWW-Authenticate for a failed client authentication.
            OAuthError::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthError::SlowDown { .. } => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::Internal(e) if crate::store::is_unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
            OAuthError::Internal(e) => {
                tracing::error!(error = %e, "token endpoint failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::BAD_REQUEST,
        };
        let (code, description) = if status == StatusCode::SERVICE_UNAVAILABLE {
            ("temporarily_unavailable", "the server cannot reach its database; retry shortly".to_owned())
        } else {
            (self.code(), self.description())
        };
        let body = json!({ "error": code, "error_description": description });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let OAuthError::SlowDown { retry_after } = self {
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                headers.insert(header::RETRY_AFTER, value);
            }
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(crate::store::RETRY_AFTER_SECONDS));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"tessera\""));
        }
        response
    }
}
