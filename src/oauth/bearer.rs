//! Bearer authentication for the resource API (RFC 6750): one extractor that takes an access
//! token (`tes_at_`) or a developer API key (`tes_ak_`), finds it by its hash and checks expiry,
//! revocation and grant in the same query; and one that leaves the query to the handler, which
//! runs it together with its own.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::apps::{Scope, ScopeSet};
use crate::credentials::{PresentedSecret, SecretKind};
use crate::store::callers::CallerRow;
use crate::store::query::{Read, Record};
use crate::store::{self, Store};

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

/// A bearer credential as presented: well-formed, not yet looked up. [`Bearer`] looks it up
/// alone; a handler that reads its caller's workspace anyway takes this instead and reads both
/// in one go ([`PresentedBearer::authenticate_then_all`]).
pub struct PresentedBearer(Read<CallerRow>);

impl FromRequestParts<AppState> for PresentedBearer {
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or(BearerError::Missing)?;
        let value = value.to_str().map_err(|_| BearerError::InvalidToken)?;
        let (scheme, token) = value.split_once(' ').ok_or(BearerError::InvalidToken)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(BearerError::Missing);
        }
        let token = token.trim();
        if let Some(key) = PresentedSecret::parse(SecretKind::ApiKey, token) {
            return Ok(PresentedBearer(store::callers::by_api_key(key.hash().as_str())));
        }
        let token = PresentedSecret::parse(SecretKind::AccessToken, token).ok_or(BearerError::InvalidToken)?;
        Ok(PresentedBearer(store::callers::by_access_token(&token.token_key(), crate::time::now())))
    }
}

impl PresentedBearer {
    /// The caller, if the credential is live.
    pub async fn authenticate(&self, db: &Store) -> Result<Bearer, BearerError> {
        let row = db
            .fetch_optional::<CallerRow>(&self.0.sql, &self.0.params)
            .await
            .map_err(|e| BearerError::Internal(e.into()))?
            .ok_or(BearerError::InvalidToken)?;
        Ok(Bearer::from(row))
    }

    /// The caller, and every row of the read `then` makes from the caller's workspace id, read
    /// together ([`Store::fetch_optional_then_all`]). The caller's scopes are the handler's to
    /// check before it shows any of the rows.
    pub async fn authenticate_then_all<T: Record>(
        &self,
        db: &Store,
        then: impl FnOnce(&str) -> Read<T>,
    ) -> Result<(Bearer, Vec<T>), BearerError> {
        let (row, all) = db
            .fetch_optional_then_all(&self.0, |caller| then(&caller.workspace_id))
            .await
            .map_err(|e| BearerError::Internal(e.into()))?
            .ok_or(BearerError::InvalidToken)?;
        Ok((Bearer::from(row), all))
    }
}

impl From<CallerRow> for Bearer {
    fn from(row: CallerRow) -> Bearer {
        Bearer {
            grant_id: row.grant_id,
            user_id: row.user_id,
            workspace_id: row.workspace_id,
            client_id: row.client_id,
            scopes: ScopeSet::from_stored(&row.scopes),
            api_key_id: row.api_key_id,
        }
    }
}

impl FromRequestParts<AppState> for Bearer {
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        PresentedBearer::from_request_parts(parts, state).await?.authenticate(&state.store).await
    }
}
