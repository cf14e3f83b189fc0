//! `POST /oauth2/introspect` (RFC 7662). A client learns only about its own tokens; anything
//! expired, revoked, rotated, unknown or another client's is `{"active": false}`.

use crate::http::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;

use crate::app::AppState;
use crate::credentials::{PresentedSecret, SecretKind};
use crate::store::{self, tokens::IssuedRow};

use super::token::{no_store, read_form};
use super::{client_auth, OAuthError};

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, OAuthError> {
    let form = read_form(&state, &headers, body).await?;
    let now = crate::time::now();
    let client = client_auth::authenticate(&state.store, &state.limits.client_auth, &headers, &form, now).await?;
    let token =
        form.get("token").filter(|t| !t.is_empty()).ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    let db = &state.store;
    let (row, token_type) = if let Some(t) = PresentedSecret::parse(SecretKind::AccessToken, token) {
        (store::tokens::access(db, &t.token_key()).await?, "Bearer")
    } else if let Some(t) = PresentedSecret::parse(SecretKind::RefreshToken, token) {
        (store::tokens::refresh(db, &t.token_key()).await?, "refresh_token")
    } else {
        (None, "")
    };
    let active = |r: &IssuedRow| {
        r.client_id == client.client_id
            && r.expires_at > now
            && r.revoked_at.is_none()
            && r.spent_at.is_none()
            && r.grant_revoked_at.is_none()
    };
    let issuer = state.settings.issuer();
    let body = match &row {
        Some(r) if active(r) => Introspection::Active {
            active: true,
            scope: &r.scopes,
            client_id: &r.client_id,
            sub: &r.user_id,
            workspace_id: &r.workspace_id,
            exp: r.expires_at,
            iat: r.created_at,
            token_type,
            iss: &issuer,
        },
        _ => Introspection::Inactive { active: false },
    };
    Ok(no_store(Json(body)))
}

/// The introspection response: the members of RFC 7662 §2.2 for an active token, and only
/// `active` for any other.
#[derive(Serialize)]
#[serde(untagged)]
enum Introspection<'a> {
    Active {
        active: bool,
        scope: &'a str,
        client_id: &'a str,
        sub: &'a str,
        workspace_id: &'a str,
        exp: i64,
        iat: i64,
        token_type: &'a str,
        iss: &'a str,
    },
    Inactive {
        active: bool,
    },
}
