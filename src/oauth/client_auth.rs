//! Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3):
//! `client_secret_basic`, `client_secret_post`, or a public client naming itself by `client_id`.

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::apps::{self, App};
use crate::http::form::{decode_component, FormData};
use crate::limits::FailureLimiter;
use crate::store::query::{Read, Record};
use crate::store::{self, Store};

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
    let claim = ClientClaim::read(headers, form)?;
    failures.check(&claim.client_id, now)?;
    let app = apps::find(db, &claim.client_id).await?;
    claim.verify(app, failures, now)
}

/// Authenticates the client as [`authenticate`] does, reading `presented` (the code or token the
/// request presents, if it names a well-formed one) in the same database request as the client's
/// app. The client's verdict comes first: the row is returned only to an authenticated client.
pub async fn authenticate_reading<T: Record>(
    db: &Store,
    failures: &FailureLimiter,
    headers: &HeaderMap,
    form: &FormData,
    now: i64,
    presented: Option<Read<T>>,
) -> Result<(App, Option<T>), OAuthError> {
    let claim = ClientClaim::read(headers, form)?;
    failures.check(&claim.client_id, now)?;
    let (app, row) = match (apps::is_client_id(&claim.client_id), presented) {
        (true, Some(presented)) => {
            let (app, row) = db.fetch_optional_pair(&store::apps::lookup(&claim.client_id), &presented).await?;
            (app.map(App::from_row), row)
        }
        (true, None) => (apps::find(db, &claim.client_id).await?, None),
        (false, _) => (None, None),
    };
    Ok((claim.verify(app, failures, now)?, row))
}

/// Who a request says it is, not yet checked.
struct ClientClaim {
    client_id: String,
    secret: Option<String>,
}

impl ClientClaim {
    /// `client_secret_basic`, `client_secret_post`, or a public client's bare `client_id`.
    fn read(headers: &HeaderMap, form: &FormData) -> Result<ClientClaim, OAuthError> {
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
        Ok(ClientClaim { client_id, secret })
    }

    /// Checks the claim against `app`, the registered app of the claimed id if there is one.
    fn verify(self, app: Option<App>, failures: &FailureLimiter, now: i64) -> Result<App, OAuthError> {
        // Only registered clients are counted, so invented ids cannot fill the table.
        let app = app.ok_or(OAuthError::InvalidClient)?;
        // Counted before the check, so that parallel guesses cannot all pass under the limit.
        failures.attempt(&self.client_id, now)?;
        let authenticated = match (app.is_public(), self.secret) {
            (true, None) => true,
            (false, Some(secret)) => app.secret_matches(&secret),
            _ => false,
        };
        if !authenticated {
            return Err(OAuthError::InvalidClient);
        }
        failures.forgive(&self.client_id);
        Ok(app)
    }
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
