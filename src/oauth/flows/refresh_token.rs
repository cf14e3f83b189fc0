//! `grant_type=refresh_token` with rotation and reuse detection (RFC 6749 §6, RFC 9700 §4.14).

use crate::apps::{App, ScopeSet};
use crate::config::OAuthSettings;
use crate::credentials::{PresentedSecret, SecretKind};
use crate::http::form::FormData;
use crate::store::{self, Store};

use super::super::token::{issue, TokenResponse};
use super::super::OAuthError;

/// The refresh token a token request presents, and its row if there is one, read in the same
/// database request as the client's app (whose verdict is checked first).
pub struct PresentedRefreshToken {
    pub key: String,
    pub row: Option<store::tokens::IssuedRow>,
}

/// The key of the refresh token the request presents, before anything is read.
pub fn token_key(form: &FormData) -> Result<String, OAuthError> {
    let presented = form
        .get("refresh_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    let token = PresentedSecret::parse(SecretKind::RefreshToken, presented)
        .ok_or(OAuthError::InvalidGrant("the refresh token is invalid"))?;
    Ok(token.token_key())
}

pub async fn refresh(
    db: &Store,
    settings: &OAuthSettings,
    client: &App,
    form: &FormData,
    token: PresentedRefreshToken,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let PresentedRefreshToken { key: token_key, row } = token;
    let row = row.ok_or(OAuthError::InvalidGrant("the refresh token is invalid"))?;
    if row.client_id != client.client_id {
        return Err(OAuthError::InvalidGrant("the refresh token was issued to another client"));
    }
    if row.grant_revoked_at.is_some() || row.revoked_at.is_some() {
        return Err(OAuthError::InvalidGrant("the authorization was revoked"));
    }
    if row.spent_at.is_some() {
        // A rotated token presented again: it may have leaked, so the whole grant goes.
        crate::grants::revoke_replayed(db, &row.grant_id, crate::grants::Replay::RefreshToken, now).await?;
        return Err(OAuthError::InvalidGrant("the refresh token was already used; the authorization is revoked"));
    }
    if row.expires_at <= now {
        return Err(OAuthError::InvalidGrant("the refresh token has expired"));
    }
    let granted = ScopeSet::from_stored(&row.scopes);
    let access_scopes = match form.get("scope").filter(|s| !s.is_empty()) {
        None => granted.clone(),
        Some(text) => {
            let asked = ScopeSet::parse(text).map_err(OAuthError::InvalidScope)?;
            if !asked.is_subset_of(&granted) || asked.is_empty() {
                return Err(OAuthError::InvalidScope("a refresh may narrow the scope, never widen it".into()));
            }
            asked
        }
    };

    // RFC 6749 §6: the new refresh token keeps the original scope; the access token may be narrower.
    let mut steps = vec![store::tokens::rotate_refresh(&token_key, now)];
    let (issued, response) = issue(settings, &row.grant_id, &access_scopes.to_string(), &row.scopes, now);
    steps.extend(issued);
    if !db.write_all(steps).await? {
        // A concurrent refresh with the same token won the race; exactly one of them succeeds.
        return Err(OAuthError::InvalidGrant("the refresh token was already used"));
    }
    Ok(response)
}
