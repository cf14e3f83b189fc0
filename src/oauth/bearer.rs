//! Bearer authentication for the resource API (RFC 6750): one extractor that takes an access
//! token (`tes_at_`) or a developer API key (`tes_ak_`), finds it by its hash and checks expiry,
//! revocation and grant in the same query.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::apps::{Scope, ScopeSet};
use crate::credentials::{PresentedSecret, SecretKind};
use crate::store;

/// Who is calling the API and what they may do.
#[derive(Clone, Debug)]
pub struct Bearer {
    /// The grant behind the credential; `None` for an API key made in the console.
    pub grant_id: Option<String>,
    pub user_id: String,
    pub workspace_id: String,
    /// The partner app acting; `None` for an API key made in the console.
    pub client_id: Option<String>,
    pub scopes: ScopeSet,
    /// Set when the credential is an API key (which cannot mint further keys).
    pub api_key_id: Option<String>,
}

impl Bearer {
    /// Who "the same caller" is for idempotency: the grant, or the console key itself.
    pub fn principal(&self) -> String {
        match (&self.grant_id, &self.api_key_id) {
            (Some(grant), _) => grant.clone(),
            (None, Some(key)) => format!("key:{key}"),
            (None, None) => String::new(),
        }
    }
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
            BearerError::Internal(e) if crate::store::is_unavailable(e) => {
                tracing::warn!(error = %e, "database unavailable");
                return crate::api::problem::unavailable();
            }
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
        let mut response = crate::api::problem::problem(status, kind, title, detail, Vec::new());
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            if !challenge.is_empty() {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
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
        let token = token.trim();
        let db = &state.store;
        if let Some(key) = PresentedSecret::parse(SecretKind::ApiKey, token) {
            let key = store::api_keys::live(db, key.hash().as_str())
                .await
                .map_err(|e| BearerError::Internal(e.into()))?
                .ok_or(BearerError::InvalidToken)?;
            return Ok(Bearer {
                grant_id: key.grant_id,
                user_id: key.created_by_user_id,
                workspace_id: key.workspace_id,
                client_id: key.client_id,
                scopes: ScopeSet::from_stored(&key.scopes),
                api_key_id: Some(key.id),
            });
        }
        let token = PresentedSecret::parse(SecretKind::AccessToken, token).ok_or(BearerError::InvalidToken)?;
        let row = store::tokens::live_access(db, &token.token_key(), crate::time::now())
            .await
            .map_err(|e| BearerError::Internal(e.into()))?
            .ok_or(BearerError::InvalidToken)?;
        Ok(Bearer {
            grant_id: Some(row.grant_id),
            user_id: row.user_id,
            workspace_id: row.workspace_id,
            client_id: Some(row.client_id),
            scopes: ScopeSet::from_stored(&row.scopes),
            api_key_id: None,
        })
    }
}
