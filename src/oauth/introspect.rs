//! `POST /oauth2/introspect` (RFC 7662). A client learns only about its own tokens; anything
//! expired, revoked, rotated, unknown or another client's is `{"active": false}`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;

use crate::app::AppState;
use crate::credentials::{PresentedSecret, SecretKind};
use crate::http::Json;
use crate::store::query::Read;
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
    let db = &state.store;
    let token = form.get("token").filter(|t| !t.is_empty());
    let (read, token_type) = presented_token(token);
    // The token is read in the same database request as the client's app; the client's verdict
    // still comes first.
    let (client, row) =
        client_auth::authenticate_reading(db, &state.limits.client_auth, &headers, &form, now, read).await?;
    if token.is_none() {
        return Err(OAuthError::invalid_request("token is missing"));
    }
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

/// The read of the presented token and the type to report for it: nothing to read for a value
/// that is neither an access nor a refresh token (it is simply inactive).
fn presented_token(token: Option<&str>) -> (Option<Read<IssuedRow>>, &'static str) {
    let Some(token) = token else { return (None, "") };
    if let Some(access) = PresentedSecret::parse(SecretKind::AccessToken, token) {
        (Some(store::tokens::access_lookup(&access.token_key())), "Bearer")
    } else if let Some(refresh) = PresentedSecret::parse(SecretKind::RefreshToken, token) {
        (Some(store::tokens::refresh_lookup(&refresh.token_key())), "refresh_token")
    } else {
        (None, "")
    }
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
