//! Bearer authentication for the resource API (RFC 6750): one extractor that finds the access
//! token by its hash and checks expiry, revocation and grant in the same query.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::app::AppState;
use crate::apps::{Scope, ScopeSet};
use crate::credentials::{PresentedSecret, SecretKind};
use crate::store;

/// Who is calling the API and what they may do.
#[derive(Clone, Debug)]
pub struct Bearer {
    pub grant_id: String,
    pub user_id: String,
    pub workspace_id: String,
    pub client_id: String,
    pub scopes: ScopeSet,
}

impl Bearer {
    /// The first line of a handler that needs `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), BearerError> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(BearerError::InsufficientScope(scope))
        }
    }
}

#[derive(Debug)]
pub enum BearerError {
    Missing,
    InvalidToken,
    InsufficientScope(Scope),
    Internal(anyhow::Error),
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, challenge, title, detail) = match &self {
            BearerError::Missing => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"tessera\"".to_owned(),
                "Authentication required",
                "Send an access token or API key as Authorization: Bearer <token>.".to_owned(),
            ),
            BearerError::InvalidToken => (
                StatusCode::UNAUTHORIZED,
                "Bearer realm=\"tessera\", error=\"invalid_token\", error_description=\"the access token is invalid, expired or revoked\"".to_owned(),
                "Invalid token",
                "The access token is invalid, expired or revoked.".to_owned(),
            ),
            BearerError::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                format!("Bearer realm=\"tessera\", error=\"insufficient_scope\", scope=\"{scope}\""),
                "Insufficient scope",
                format!("This request needs the {scope} scope."),
            ),
            BearerError::Internal(e) => {
                tracing::error!(error = %e, "bearer authentication failed");
                (StatusCode::INTERNAL_SERVER_ERROR, String::new(), "Internal error", "Try again shortly.".to_owned())
            }
        };
        let kind = match &self {
            BearerError::Missing | BearerError::InvalidToken => "invalid-token",
            BearerError::InsufficientScope(_) => "insufficient-scope",
            BearerError::Internal(_) => "internal",
        };
        let body = json!({ "type": format!("https://tessera.dev/problems/{kind}"), "title": title, "status": status.as_u16(), "detail": detail });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            if !challenge.is_empty() {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

impl FromRequestParts<AppState> for Bearer {
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or(BearerError::Missing)?;
        let value = value.to_str().map_err(|_| BearerError::InvalidToken)?;
        let (scheme, token) = value.split_once(' ').ok_or(BearerError::InvalidToken)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(BearerError::Missing);
        }
        let token = PresentedSecret::parse(SecretKind::AccessToken, token.trim()).ok_or(BearerError::InvalidToken)?;
        let row = store::tokens::live_access(state.store.reader(), token.hash().as_str(), crate::time::now())
            .await
            .map_err(|e| BearerError::Internal(e.into()))?
            .ok_or(BearerError::InvalidToken)?;
        Ok(Bearer {
            grant_id: row.grant_id,
            user_id: row.user_id,
            workspace_id: row.workspace_id,
            client_id: row.client_id,
            scopes: ScopeSet::from_stored(&row.scopes),
        })
    }
}
