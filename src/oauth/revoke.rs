//! `POST /oauth2/revoke` (RFC 7009).
//!
//! Revoking an access token revokes that token. Revoking a refresh token revokes its whole grant:
//! the refresh chain, every access token issued from it, and any API key minted under it
//! (RFC 7009 §2.1 "SHOULD also invalidate all access tokens based on the same grant").
//! Unknown tokens, and tokens of other clients, answer 200 and change nothing.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::app::AppState;
use crate::credentials::{PresentedSecret, SecretKind};
use crate::store;

use super::token::{no_store, read_form};
use super::{client_auth, OAuthError};

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, OAuthError> {
    let form = read_form(&state, &headers, body).await?;
    let now = crate::time::now();
    let client = client_auth::authenticate(&state.store, &state.limits.client_auth, &headers, &form, now).await?;
    let token =
        form.get("token").filter(|t| !t.is_empty()).ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    match form.get("token_type_hint") {
        None | Some("access_token") | Some("refresh_token") | Some("api_key") => {}
        Some(_) => return Err(OAuthError::UnsupportedTokenType),
    }
    let db = &state.store;
    // The prefix says what the token is, so the hint is only a confirmation.
    if let Some(access) = PresentedSecret::parse(SecretKind::AccessToken, token) {
        let key = access.token_key();
        if let Some(row) = store::tokens::access(db, &key).await? {
            if row.client_id == client.client_id {
                store::tokens::revoke_access(db.writer(), &key, now).await?;
            }
        }
    } else if let Some(refresh) = PresentedSecret::parse(SecretKind::RefreshToken, token) {
        if let Some(row) = store::tokens::refresh(db, &refresh.token_key()).await? {
            if row.client_id == client.client_id {
                crate::grants::revoke_by_application(db, &row.grant_id, &client.client_id, now).await?;
            }
        }
    } else if let Some(key) = PresentedSecret::parse(SecretKind::ApiKey, token) {
        // A developer API key minted through this client's grants.
        store::api_keys::revoke_for_client(db.writer(), key.hash().as_str(), &client.client_id, now).await?;
    }
    Ok(no_store(()))
}
