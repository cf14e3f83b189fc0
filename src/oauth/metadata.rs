//! `GET /.well-known/oauth-authorization-server` (RFC 8414).

use axum::extract::State;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::apps::Scope;
use crate::http::Json;

pub async fn metadata(State(state): State<AppState>) -> Json<Value> {
    let issuer = state.settings.issuer();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth2/auth"),
        "token_endpoint": format!("{issuer}/oauth2/token"),
        "revocation_endpoint": format!("{issuer}/oauth2/revoke"),
        "introspection_endpoint": format!("{issuer}/oauth2/introspect"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "authorization_response_iss_parameter_supported": true,
        "service_documentation": format!("{issuer}/"),
    }))
}
