//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.6).

use crate::apps::App;
use crate::config::OAuthSettings;
use crate::credentials::{PresentedSecret, SecretKind};
use crate::grants::{revoke_replayed, Replay};
use crate::http::form::FormData;
use crate::store::{self, Store};

use super::super::token::{issue, TokenResponse};
use super::super::{pkce, OAuthError};

/// The code a token request presents, and its row if there is one, read in the same database
/// request as the client's app (whose verdict is checked first).
pub struct PresentedCode {
    pub key: String,
    pub row: Option<store::tokens::CodeRow>,
}

/// The key of the code the request presents, before anything is read.
pub fn code_key(form: &FormData) -> Result<String, OAuthError> {
    let code =
        form.get("code").filter(|c| !c.is_empty()).ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    let code = PresentedSecret::parse(SecretKind::AuthorizationCode, code)
        .ok_or(OAuthError::InvalidGrant("the code is invalid"))?;
    Ok(code.token_key())
}

pub async fn exchange(
    db: &Store,
    settings: &OAuthSettings,
    client: &App,
    form: &FormData,
    code: PresentedCode,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let PresentedCode { key: code_key, row } = code;
    let row = row.ok_or(OAuthError::InvalidGrant("the code is invalid"))?;

    // A code is bound to its client; another client's attempt neither works nor burns it.
    if row.issued.client_id != client.client_id {
        return Err(OAuthError::InvalidGrant("the code was issued to another client"));
    }
    if row.issued.spent_at.is_some() {
        // RFC 6749 §4.1.2: a second use revokes everything issued from the first.
        revoke_replayed(db, &row.issued.grant_id, Replay::AuthorizationCode, now).await?;
        return Err(OAuthError::InvalidGrant("the code was already used; its tokens are revoked"));
    }
    if row.issued.grant_revoked_at.is_some() {
        return Err(OAuthError::InvalidGrant("the authorization was revoked"));
    }
    if row.issued.expires_at <= now {
        return Err(OAuthError::InvalidGrant("the code has expired"));
    }
    // RFC 6749 §4.1.3: redirect_uri must equal the authorization request's, if it named one.
    let presented_redirect = form.get("redirect_uri").unwrap_or("");
    if !row.redirect_uri.is_empty() && presented_redirect != row.redirect_uri {
        return Err(OAuthError::InvalidGrant("redirect_uri does not match the authorization request"));
    }
    if row.redirect_uri.is_empty()
        && !presented_redirect.is_empty()
        && !client.redirect_uris.iter().any(|u| u == presented_redirect)
    {
        return Err(OAuthError::InvalidGrant("redirect_uri does not match the authorization request"));
    }
    match (&row.code_challenge, form.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if pkce::verify(verifier, challenge) => {}
        (Some(_), None) => return Err(OAuthError::InvalidGrant("code_verifier is missing")),
        (Some(_), Some(_)) => return Err(OAuthError::InvalidGrant("code_verifier does not match the code_challenge")),
        // RFC 9700 §2.1.1: a verifier without a challenge is refused (PKCE downgrade).
        (None, Some(_)) => return Err(OAuthError::InvalidGrant("no code_challenge was sent for this code")),
        (None, None) => {}
    }

    let mut steps = vec![store::tokens::claim_code(&code_key, now)];
    let (issued, response) = issue(settings, &row.issued.grant_id, &row.issued.scopes, &row.issued.scopes, now);
    steps.extend(issued);
    if !db.write_all(steps).await? {
        // Another request used the code between our read and now: that is a second use too.
        revoke_replayed(db, &row.issued.grant_id, Replay::AuthorizationCode, now).await?;
        return Err(OAuthError::InvalidGrant("the code was already used; its tokens are revoked"));
    }
    Ok(response)
}
