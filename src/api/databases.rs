//! Databases (scopes `databases:read`, `databases:write`): serverless Redis-compatible databases.
//! The API records what is wanted; until a data plane provisions it, a database is `pending`
//! with no endpoint — connection details are never invented.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::apps::Scope;
use crate::http::Json;
use crate::oauth::bearer::{Bearer, PresentedBearer};
use crate::store;
use crate::store::databases::DatabaseRow;

use super::extract::{
    authorized_page, finish_page, resource_name, rfc3339, validated, write_created, ApiJson, Idempotency,
};
use super::problem::{ApiError, FieldError, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct Database {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub region: String,
    /// pending, provisioning, active, deleting, failed.
    pub state: String,
    /// Host to connect to, once the data plane has provisioned the database.
    pub endpoint: Option<String>,
    pub port: Option<i64>,
    pub password: String,
    pub tls: bool,
    /// Why the database is in its state, when that needs saying (no data plane, a failure).
    pub state_reason: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDatabase {
    /// 1 to 63 characters of `a-z`, `0-9` and `-`.
    #[schema(pattern = "^[a-z0-9-]{1,63}$")]
    pub name: String,
    /// One of the operator's regions (see `TESSERA_REGIONS`).
    #[schema(example = "us-east-1")]
    pub region: String,
    /// Require TLS connections (default false; the Redis data plane does not offer TLS yet).
    pub tls: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseList {
    pub items: Vec<Database>,
    pub next_cursor: Option<String>,
}

pub const NO_DATA_PLANE: &str = "no data plane is configured on this Tessera: the database stays pending";

/// The API's view of a database; `data_plane` says whether any provisioner is configured.
pub fn to_json(d: &DatabaseRow, data_plane: bool) -> Database {
    let active = d.state == "active";
    let state_reason = match (&d.failure_reason, d.state.as_str(), data_plane) {
        (Some(reason), _, _) => Some(reason.clone()),
        (None, "pending", false) => Some(NO_DATA_PLANE.to_owned()),
        _ => None,
    };
    Database {
        id: d.id.clone(),
        workspace_id: d.workspace_id.clone(),
        name: d.name.clone(),
        region: d.region.clone(),
        state: d.state.clone(),
        endpoint: d.endpoint.clone().filter(|_| active),
        port: d.port.filter(|_| active),
        password: d.password.clone(),
        tls: d.tls == 1,
        state_reason,
        created_at: rfc3339(d.created_at),
    }
}

/// List the workspace's databases.
#[utoipa::path(get, path = "/v1/databases", tag = "databases",
    params(("limit" = Option<i64>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = DatabaseList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = ["databases:read"])))]
pub async fn list(
    State(state): State<AppState>,
    presented: PresentedBearer,
    RawQuery(query): RawQuery,
) -> Result<Json<DatabaseList>, ApiError> {
    let (_, page, rows) =
        authorized_page(&state.store, &presented, Scope::DatabasesRead, query.as_deref(), store::databases::page)
            .await?;
    let (rows, next_cursor) = finish_page(rows, &page, |r| (r.created_at, &r.id));
    Ok(Json(DatabaseList { items: rows.iter().map(|r| to_json(r, has_data_plane(&state))).collect(), next_cursor }))
}

/// Create a database.
#[utoipa::path(post, path = "/v1/databases", tag = "databases", request_body = CreateDatabase,
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key and body return the first response")),
    responses((status = 201, body = Database), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = ["databases:write"])))]
pub async fn create(
    State(state): State<AppState>,
    bearer: Bearer,
    headers: HeaderMap,
    body: ApiJson<CreateDatabase>,
) -> Result<Response, ApiError> {
    bearer.require(Scope::DatabasesWrite)?;
    let idempotency = Idempotency::from_request(&headers, &bearer, "POST /v1/databases", &body.raw)?;
    if let Some(idem) = &idempotency {
        if let Some(replayed) = idem.replay(&state.store).await? {
            return Ok(replayed);
        }
    }
    let input = body.value;
    let mut errors = Vec::new();
    resource_name("name", &input.name, &mut errors);
    let regions = &state.settings.resources.regions;
    if !regions.contains(&input.region) {
        errors.push(FieldError::new("region", format!("must be one of: {}", regions.join(", "))));
    }
    validated(errors)?;
    let now = crate::time::now();
    let row = DatabaseRow::requested(&bearer.workspace_id, input.name, input.region, input.tls.unwrap_or(false), now);
    let body = serde_json::to_value(to_json(&row, has_data_plane(&state))).map_err(|e| ApiError::Internal(e.into()))?;
    let steps = vec![store::databases::insert(&row)];
    write_created(&state.store, steps, idempotency, body, now, || {
        format!("a database named {} already exists", row.name)
    })
    .await
}

/// Get a database, including its connection details once it is active.
#[utoipa::path(get, path = "/v1/databases/{id}", tag = "databases", params(("id" = String, Path, description = "database id")),
    responses((status = 200, body = Database), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["databases:read"])))]
pub async fn get(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> Result<Json<Database>, ApiError> {
    bearer.require(Scope::DatabasesRead)?;
    let row = store::databases::get(state.store.reader(), &bearer.workspace_id, &id)
        .await?
        .ok_or(ApiError::NotFound("database"))?;
    Ok(Json(to_json(&row, has_data_plane(&state))))
}

/// Delete a database.
#[utoipa::path(delete, path = "/v1/databases/{id}", tag = "databases", params(("id" = String, Path, description = "database id")),
    responses((status = 204, description = "deleted"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["databases:write"])))]
pub async fn delete(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    bearer.require(Scope::DatabasesWrite)?;
    if store::databases::request_delete(state.store.writer(), &bearer.workspace_id, &id, crate::time::now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("database"))
    }
}

fn has_data_plane(state: &AppState) -> bool {
    state.settings.data_plane.provisioner != crate::config::Provisioner::None
}
