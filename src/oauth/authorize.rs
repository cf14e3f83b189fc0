//! The authorization endpoint, `GET /oauth2/auth` (RFC 6749 §4.1.1).
//!
//! The decision "render an error here or redirect it to the client" is made in one place: until
//! the client and the exact redirect URI are verified, every error is a local page; after that,
//! errors go back to the client with `error`, `error_description`, `state` and `iss` (RFC 9207).

use url::Url;

use crate::apps::{self, redirect_uri, App, ScopeSet};
use crate::config::OAuthSettings;
use crate::credentials::{random_token, sha256_hex};
use crate::http::form::FormData;
use crate::limits::RateLimiter;
use crate::store::grants::AuthorizationRequestRow;
use crate::store::{self, Store, StoreError};

use super::pkce;

/// How long a user has to log in and decide.
pub const REQUEST_TTL: i64 = 15 * 60;
const MAX_STATE_LEN: usize = 2048;

#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown to the user here; never sent to an unverified redirect URI.
    Page(String),
    /// Sent back to the client's verified redirect URI.
    Redirect(ErrorRedirect),
    /// This client sent too many authorization requests; shown here as a 429 page.
    Throttled(crate::limits::Throttled),
    Internal(anyhow::Error),
}

#[derive(Debug)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub error: &'static str,
    pub description: String,
    pub state: Option<String>,
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        AuthorizeError::Internal(e.into())
    }
}

/// A request whose every parameter checked out.
#[derive(Debug)]
pub struct ValidRequest {
    pub app: App,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub scopes: ScopeSet,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
}

pub async fn validate(
    db: &Store,
    settings: &OAuthSettings,
    rate: &RateLimiter,
    query: &FormData,
    now: i64,
) -> Result<ValidRequest, AuthorizeError> {
    // 1. The client and its redirect URI, before anything else.
    let single = |name: &str| -> Result<Option<&str>, ()> {
        match query.all(name).as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => Err(()),
        }
    };
    let client_id = match single("client_id") {
        Ok(Some(id)) if !id.is_empty() => id,
        Ok(_) => return Err(AuthorizeError::Page("The request names no client (client_id is missing).".into())),
        Err(()) => return Err(AuthorizeError::Page("The request repeats client_id.".into())),
    };
    let app = apps::find(db, client_id).await?.ok_or_else(|| {
        AuthorizeError::Page("The application asking for access is not registered with Tessera.".into())
    })?;
    rate.take(&app.client_id, now).map_err(AuthorizeError::Throttled)?;
    let (redirect_uri, redirect_uri_given) = match single("redirect_uri") {
        Err(()) => return Err(AuthorizeError::Page("The request repeats redirect_uri.".into())),
        Ok(None) | Ok(Some("")) => match app.redirect_uris.as_slice() {
            [only] => (only.clone(), false),
            _ => {
                return Err(AuthorizeError::Page(
                    "The request has no redirect_uri and the application registered several.".into(),
                ))
            }
        },
        Ok(Some(given)) => match redirect_uri::find_match(&app.redirect_uris, given, app.is_public()) {
            Some(_) => (given.to_owned(), true),
            None => {
                return Err(AuthorizeError::Page(
                    "The redirect_uri does not match any URI registered for this application.".into(),
                ))
            }
        },
    };

    // 2. From here on, errors go back to the client.
    let state = query.get("state").filter(|s| !s.is_empty()).map(str::to_owned);
    let back = |error: &'static str, description: &str| {
        AuthorizeError::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            error,
            description: description.to_owned(),
            state: state.as_ref().filter(|s| s.len() <= MAX_STATE_LEN).cloned(),
        })
    };
    if let Some(key) = query.repeated_key() {
        return Err(back("invalid_request", &format!("the parameter {key} is repeated")));
    }
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(back("invalid_request", "state is too long"));
    }
    match query.get("response_type") {
        None | Some("") => return Err(back("invalid_request", "response_type is missing")),
        Some("code") => {}
        Some(_) => return Err(back("unsupported_response_type", "only response_type=code is supported")),
    }
    let scopes = match query.get("scope") {
        // RFC 6749 §3.3: without a scope, the app's registered scopes are the default.
        None | Some("") => app.scopes.clone(),
        Some(text) => {
            let requested = ScopeSet::parse(text).map_err(|e| back("invalid_scope", &e))?;
            if !requested.is_subset_of(&app.scopes) {
                return Err(back("invalid_scope", "the application did not register every requested scope"));
            }
            requested
        }
    };
    if scopes.is_empty() {
        return Err(back("invalid_scope", "no scope requested"));
    }
    let code_challenge = match (query.get("code_challenge"), query.get("code_challenge_method")) {
        (None, Some(_)) => return Err(back("invalid_request", "code_challenge_method without code_challenge")),
        (Some(_), None) | (Some(_), Some("plain")) => {
            return Err(back("invalid_request", "code_challenge_method must be S256 (plain is not supported)"))
        }
        (Some(_), Some(method)) if method != "S256" => {
            return Err(back("invalid_request", "code_challenge_method must be S256"))
        }
        (Some(challenge), Some(_)) if !pkce::is_valid_challenge(challenge) => {
            return Err(back("invalid_request", "code_challenge is not a valid S256 challenge"))
        }
        (Some(challenge), Some(_)) => Some(challenge.to_owned()),
        (None, None) if app.is_public() => {
            return Err(back("invalid_request", "PKCE (code_challenge with S256) is required for public clients"))
        }
        (None, None) if settings.require_pkce => {
            return Err(back("invalid_request", "PKCE (code_challenge with S256) is required"))
        }
        (None, None) => None,
    };
    Ok(ValidRequest { app, redirect_uri, redirect_uri_given, scopes, state, code_challenge })
}

/// Keeps a valid request server-side and returns the opaque consent challenge naming it.
pub async fn remember(db: &Store, request: &ValidRequest, now: i64) -> Result<String, StoreError> {
    let challenge = random_token();
    let row = AuthorizationRequestRow {
        challenge_hash: sha256_hex(challenge.as_bytes()),
        client_id: request.app.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        redirect_uri_given: i64::from(request.redirect_uri_given),
        scopes: request.scopes.to_string(),
        state: request.state.clone(),
        code_challenge: request.code_challenge.clone(),
        created_at: now,
        expires_at: now + REQUEST_TTL,
    };
    store::grants::insert_request(db.writer(), &row).await?;
    Ok(challenge)
}

/// `redirect_uri` with the response parameters appended to its query (RFC 6749 §4.1.2).
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut pairs = url.query_pairs_mut();
                for (k, v) in params {
                    pairs.append_pair(k, v);
                }
            }
            url.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

impl ErrorRedirect {
    pub fn location(&self, issuer: &str) -> String {
        let mut params = vec![("error", self.error), ("error_description", self.description.as_str())];
        if let Some(state) = &self.state {
            params.push(("state", state));
        }
        params.push(("iss", issuer));
        redirect_with(&self.redirect_uri, &params)
    }
}
