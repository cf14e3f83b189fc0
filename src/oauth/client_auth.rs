//! Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3):
//! `client_secret_basic`, `client_secret_post`, or a public client naming itself by `client_id`.

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::apps::{self, App};
use crate::http::form::{decode_component, FormData};
use crate::limits::FailureLimiter;
use crate::store::Store;

use super::OAuthError;

/// Authenticates the client. Attempts are counted per client id in `failures`: once too many
/// failed, the client id gets `slow_down` (429) before its secret is looked at.
pub async fn authenticate(
    db: &Store,
    failures: &FailureLimiter,
    headers: &HeaderMap,
    form: &FormData,
    now: i64,
) -> Result<App, OAuthError> {
    let basic = basic_credentials(headers)?;
    let (client_id, secret) = match (basic, form.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request("use one client authentication method, not two"));
        }
        (Some((id, secret)), None) => {
            if form.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(OAuthError::invalid_request("client_id does not match the Authorization header"));
            }
            (id, Some(secret))
        }
        (None, secret) => {
            let id = form.get("client_id").ok_or(OAuthError::InvalidClient)?.to_owned();
            (id, secret.map(str::to_owned))
        }
    };
    failures.check(&client_id, now)?;
    // Only registered clients are counted, so invented ids cannot fill the table.
    let app = apps::find(db, &client_id).await?.ok_or(OAuthError::InvalidClient)?;
    // Counted before the check, so that parallel guesses cannot all pass under the limit.
    failures.attempt(&client_id, now)?;
    let authenticated = match (app.is_public(), secret) {
        (true, None) => true,
        (false, Some(secret)) => app.secret_matches(&secret),
        _ => false,
    };
    if !authenticated {
        return Err(OAuthError::InvalidClient);
    }
    failures.forgive(&client_id);
    Ok(app)
}

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`, if present.
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| OAuthError::InvalidClient)?;
    let Some((scheme, encoded)) = value.split_once(' ') else { return Err(OAuthError::InvalidClient) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::InvalidClient);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| OAuthError::InvalidClient)?;
    let decoded = String::from_utf8(decoded).map_err(|_| OAuthError::InvalidClient)?;
    let (id, secret) = decoded.split_once(':').ok_or(OAuthError::InvalidClient)?;
    // RFC 6749 §2.3.1: both are form-encoded before they are joined.
    let unescape = |s: &str| decode_component(s.as_bytes()).ok_or(OAuthError::InvalidClient);
    Ok(Some((unescape(id)?, unescape(secret)?)))
}
