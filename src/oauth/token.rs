//! `POST /oauth2/token`: client authentication, then one flow per grant type.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::app::AppState;
use crate::apps::App;
use crate::config::OAuthSettings;
use crate::credentials::{IssuedSecret, SecretKind};
use crate::http::form::FormData;
use crate::http::Json;
use crate::store;
use crate::store::query::{Read, Record, Step};

use super::flows::{authorization_code, refresh_token};
use super::{client_auth, OAuthError};

#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
    pub scope: String,
}

/// The grant types Tessera speaks, parsed once at the edge.
enum GrantType {
    AuthorizationCode,
    RefreshToken,
}

fn grant_type(form: &FormData) -> Result<GrantType, OAuthError> {
    match form.get("grant_type") {
        None | Some("") => Err(OAuthError::invalid_request("grant_type is missing")),
        Some("authorization_code") => Ok(GrantType::AuthorizationCode),
        Some("refresh_token") => Ok(GrantType::RefreshToken),
        Some(_) => Err(OAuthError::UnsupportedGrantType),
    }
}

/// Reads an OAuth form body; a wrong content type, an unreadable body or a repeated
/// parameter (RFC 6749 §3.2) is `invalid_request`.
pub async fn read_form(state: &AppState, headers: &HeaderMap, body: axum::body::Body) -> Result<FormData, OAuthError> {
    let form = FormData::read(headers, body, state.settings.http.max_body_bytes)
        .await
        .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    if let Some(key) = form.repeated_key() {
        return Err(OAuthError::invalid_request(format!("the parameter {key} is repeated")));
    }
    Ok(form)
}

pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, OAuthError> {
    let form = read_form(&state, &headers, body).await?;
    let grant = grant_type(&form)?;
    let now = crate::time::now();
    let db = &state.store;
    let settings = &state.settings.oauth;
    let response = match grant {
        GrantType::AuthorizationCode => {
            let key = authorization_code::code_key(&form);
            let (client, row) = admit(&state, &headers, &form, now, &key, store::tokens::code_lookup).await?;
            let code = authorization_code::PresentedCode { key: key?, row };
            authorization_code::exchange(db, settings, &client, &form, code, now).await?
        }
        GrantType::RefreshToken => {
            let key = refresh_token::token_key(&form);
            let (client, row) = admit(&state, &headers, &form, now, &key, store::tokens::refresh_lookup).await?;
            let token = refresh_token::PresentedRefreshToken { key: key?, row };
            refresh_token::refresh(db, settings, &client, &form, token, now).await?
        }
    };
    Ok(no_store(Json(response)))
}

/// The authenticated client, within its token rate, and the row of the code or token under `key`
/// (when the request presents a well-formed one), read in one database request. The client's
/// verdict and its rate limit come before anything about the code or token, whose own errors
/// (`key`'s) the caller reports after this.
async fn admit<T: Record>(
    state: &AppState,
    headers: &HeaderMap,
    form: &FormData,
    now: i64,
    key: &Result<String, OAuthError>,
    lookup: fn(&str) -> Read<T>,
) -> Result<(App, Option<T>), OAuthError> {
    let read = key.as_deref().ok().map(lookup);
    let (client, row) =
        client_auth::authenticate_reading(&state.store, &state.limits.client_auth, headers, form, now, read).await?;
    state.limits.token.take(&client.client_id, now)?;
    Ok((client, row))
}

/// Token responses must never be cached (RFC 6749 §5.1).
pub fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A new access token and refresh token under `grant_id`: the response to send once the
/// returned rows are committed, in the same transaction as whatever the grant type claims.
pub fn issue(
    settings: &OAuthSettings,
    grant_id: &str,
    access_scopes: &str,
    refresh_scopes: &str,
    now: i64,
) -> (Vec<Step>, TokenResponse) {
    let access = IssuedSecret::generate(SecretKind::AccessToken);
    let refresh = IssuedSecret::generate(SecretKind::RefreshToken);
    let refresh_key = refresh.token_key();
    let steps = vec![
        store::tokens::insert_refresh(&refresh_key, grant_id, refresh_scopes, now, now + settings.refresh_token_ttl),
        store::tokens::insert_access(
            &access.token_key(),
            grant_id,
            &refresh_key,
            access_scopes,
            now,
            now + settings.access_token_ttl,
        ),
        store::grants::touch(grant_id, now),
    ];
    let response = TokenResponse {
        access_token: access.into_exposed(),
        token_type: "Bearer",
        expires_in: settings.access_token_ttl,
        refresh_token: refresh.into_exposed(),
        scope: access_scopes.to_owned(),
    };
    (steps, response)
}
