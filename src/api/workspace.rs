//! `GET /v1/workspace`: the workspace a credential is bound to and its scopes. Any valid
//! credential may call it, whatever its scopes, so partners can check that a connection works.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::http::Json;
use crate::oauth::bearer::Bearer;
use crate::store;

use super::problem::{ApiError, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    /// The scopes of the credential that asked.
    pub scopes: Vec<String>,
    /// The partner app behind the credential; null for a key made in the console.
    pub client_id: Option<String>,
    /// The user who authorized the credential.
    pub user_id: String,
}

/// The bound workspace and the credential's scopes.
#[utoipa::path(get, path = "/v1/workspace", tag = "workspace",
    responses((status = 200, body = Workspace), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn show(State(state): State<AppState>, bearer: Bearer) -> Result<Json<Workspace>, ApiError> {
    let workspace = store::workspaces::by_id(state.store.reader(), &bearer.workspace_id)
        .await?
        .ok_or(ApiError::Auth(crate::oauth::bearer::BearerError::InvalidToken))?;
    Ok(Json(Workspace {
        id: workspace.id,
        name: workspace.name,
        scopes: bearer.scopes.names().into_iter().map(str::to_owned).collect(),
        client_id: bearer.client_id,
        user_id: bearer.user_id,
    }))
}
