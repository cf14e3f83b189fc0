//! `GET /v1/workspace`: the workspace a credential is bound to and its scopes. Any valid
//! credential may call it, whatever its scopes, so partners can check that a connection works.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::app::AppState;
use crate::oauth::bearer::{Bearer, BearerError};
use crate::store;

pub async fn show(State(state): State<AppState>, bearer: Bearer) -> Result<Json<Value>, BearerError> {
    let workspace = store::workspaces::by_id(state.store.reader(), &bearer.workspace_id)
        .await
        .map_err(|e| BearerError::Internal(e.into()))?
        .ok_or(BearerError::InvalidToken)?;
    Ok(Json(json!({
        "id": workspace.id,
        "name": workspace.name,
        "scopes": bearer.scopes.names(),
        "client_id": bearer.client_id,
        "user_id": bearer.user_id,
    })))
}
