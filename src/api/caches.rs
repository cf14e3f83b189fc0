//! Caches: a query cache in front of an origin database (scopes `caches:read`, `caches:write`).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::apps::Scope;
use crate::credentials::new_id;
use crate::http::Json;
use crate::oauth::bearer::{Bearer, PresentedBearer};
use crate::store::caches::CacheRow;
use crate::store::{self, StoreError};

use super::extract::{
    authorized_page, commit_created, conflict_or_replay, finish_page, resource_name, rfc3339, validated, ApiJson,
    Idempotency,
};
use super::problem::{ApiError, FieldError, Problem};

pub const DATABASE_TYPES: [&str; 4] = ["postgres", "mysql", "mariadb", "mssql"];

#[derive(Debug, Serialize, ToSchema)]
pub struct Cache {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub description: String,
    pub origin: Origin,
    pub caching_enabled: bool,
    /// `auto_cached` or `uncached`.
    pub default_behaviour: String,
    /// How clients connect through the cache; fill in user, password and database.
    pub connection_uri_template: String,
    pub purged_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// postgres, mysql, mariadb or mssql.
    pub database_type: String,
    pub host: String,
    pub port: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCache {
    /// 1 to 63 characters of `a-z`, `0-9` and `-`.
    #[schema(pattern = "^[a-z0-9-]{1,63}$")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub origin: Origin,
    pub caching_enabled: Option<bool>,
    pub default_behaviour: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCache {
    /// 1 to 63 characters of `a-z`, `0-9` and `-`.
    #[schema(pattern = "^[a-z0-9-]{1,63}$")]
    pub name: Option<String>,
    pub description: Option<String>,
    pub origin: Option<OriginPatch>,
    pub caching_enabled: Option<bool>,
    pub default_behaviour: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginPatch {
    pub database_type: Option<String>,
    pub host: Option<String>,
    pub port: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CacheList {
    pub items: Vec<Cache>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

fn default_port(database_type: &str) -> i64 {
    match database_type {
        "postgres" => 5432,
        "mssql" => 1433,
        _ => 3306,
    }
}

pub fn to_json(row: CacheRow, cache_host: &str) -> Cache {
    let port = default_port(&row.database_type);
    let scheme = match row.database_type.as_str() {
        "postgres" => "postgresql",
        "mssql" => "sqlserver",
        other => other,
    };
    Cache {
        connection_uri_template: format!(
            "{scheme}://{{USER}}:{{PASSWORD}}@{}.{cache_host}:{port}/{{DATABASE}}",
            row.id
        ),
        id: row.id,
        workspace_id: row.workspace_id,
        name: row.name,
        description: row.description,
        origin: Origin { database_type: row.database_type, host: row.origin_host, port: row.origin_port },
        caching_enabled: row.caching_enabled == 1,
        default_behaviour: row.default_behaviour,
        purged_at: row.purged_at.map(rfc3339),
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    }
}

pub fn check(row: &CacheRow) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    resource_name("name", &row.name, &mut errors);
    if row.description.chars().count() > 500 {
        errors.push(FieldError::new("description", "must be at most 500 characters"));
    }
    if !DATABASE_TYPES.contains(&row.database_type.as_str()) {
        errors.push(FieldError::new("origin.database_type", "must be one of postgres, mysql, mariadb, mssql"));
    }
    let host_ok = !row.origin_host.is_empty()
        && row.origin_host.len() <= 253
        && row.origin_host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !host_ok {
        errors.push(FieldError::new("origin.host", "must be a host name or IP address"));
    }
    if !(1..=65535).contains(&row.origin_port) {
        errors.push(FieldError::new("origin.port", "must be from 1 to 65535"));
    }
    if !matches!(row.default_behaviour.as_str(), "auto_cached" | "uncached") {
        errors.push(FieldError::new("default_behaviour", "must be auto_cached or uncached"));
    }
    validated(errors)
}

fn name_taken(e: &StoreError) -> bool {
    e.is_unique_violation()
}

/// List the workspace's caches.
#[utoipa::path(get, path = "/v1/caches", tag = "caches",
    params(("limit" = Option<i64>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = CacheList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = ["caches:read"])))]
pub async fn list(
    State(state): State<AppState>,
    presented: PresentedBearer,
    RawQuery(query): RawQuery,
) -> Result<Json<CacheList>, ApiError> {
    let (_, page, rows) =
        authorized_page(&state.store, &presented, Scope::CachesRead, query.as_deref(), store::caches::page).await?;
    let (rows, next_cursor) = finish_page(rows, &page, |r| (r.created_at, &r.id));
    let host = &state.settings.resources.cache_host;
    Ok(Json(CacheList { items: rows.into_iter().map(|r| to_json(r, host)).collect(), next_cursor }))
}

/// Create a cache.
#[utoipa::path(post, path = "/v1/caches", tag = "caches", request_body = CreateCache,
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key and body return the first response")),
    responses((status = 201, body = Cache), (status = 401, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = ["caches:write"])))]
pub async fn create(
    State(state): State<AppState>,
    bearer: Bearer,
    headers: HeaderMap,
    body: ApiJson<CreateCache>,
) -> Result<Response, ApiError> {
    bearer.require(Scope::CachesWrite)?;
    let idempotency = Idempotency::from_request(&headers, &bearer, "POST /v1/caches", &body.raw)?;
    if let Some(idem) = &idempotency {
        if let Some(replayed) = idem.replay(&state.store).await? {
            return Ok(replayed);
        }
    }
    let input = body.value;
    let now = crate::time::now();
    let row = CacheRow {
        id: new_id("cache").to_lowercase(),
        workspace_id: bearer.workspace_id.clone(),
        name: input.name,
        description: input.description,
        database_type: input.origin.database_type,
        origin_host: input.origin.host,
        origin_port: input.origin.port,
        caching_enabled: i64::from(input.caching_enabled.unwrap_or(true)),
        default_behaviour: input.default_behaviour.unwrap_or_else(|| "auto_cached".into()),
        purged_at: None,
        created_at: now,
        updated_at: now,
    };
    check(&row)?;
    let mut tx = state.store.begin().await?;
    if let Err(e) = store::caches::insert(&mut *tx, &row).await {
        drop(tx);
        return match name_taken(&e) {
            true => {
                conflict_or_replay(&state.store, &idempotency, format!("a cache named {} already exists", row.name))
                    .await
            }
            false => Err(e.into()),
        };
    }
    let body = serde_json::to_value(to_json(row, &state.settings.resources.cache_host))
        .map_err(|e| ApiError::Internal(e.into()))?;
    commit_created(&state.store, tx, idempotency, body, now).await
}

async fn find(state: &AppState, bearer: &Bearer, id: &str) -> Result<CacheRow, ApiError> {
    store::caches::get(state.store.reader(), &bearer.workspace_id, id).await?.ok_or(ApiError::NotFound("cache"))
}

/// Get a cache.
#[utoipa::path(get, path = "/v1/caches/{id}", tag = "caches", params(("id" = String, Path, description = "cache id")),
    responses((status = 200, body = Cache), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["caches:read"])))]
pub async fn get(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> Result<Json<Cache>, ApiError> {
    bearer.require(Scope::CachesRead)?;
    let row = find(&state, &bearer, &id).await?;
    Ok(Json(to_json(row, &state.settings.resources.cache_host)))
}

/// Change a cache's fields.
#[utoipa::path(patch, path = "/v1/caches/{id}", tag = "caches", params(("id" = String, Path, description = "cache id")), request_body = UpdateCache,
    responses((status = 200, body = Cache), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = ["caches:write"])))]
pub async fn update(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
    body: ApiJson<UpdateCache>,
) -> Result<Json<Cache>, ApiError> {
    bearer.require(Scope::CachesWrite)?;
    let mut row = find(&state, &bearer, &id).await?;
    let patch = body.value;
    if let Some(name) = patch.name {
        row.name = name;
    }
    if let Some(description) = patch.description {
        row.description = description;
    }
    if let Some(origin) = patch.origin {
        row.database_type = origin.database_type.unwrap_or(row.database_type);
        row.origin_host = origin.host.unwrap_or(row.origin_host);
        row.origin_port = origin.port.unwrap_or(row.origin_port);
    }
    if let Some(enabled) = patch.caching_enabled {
        row.caching_enabled = i64::from(enabled);
    }
    if let Some(behaviour) = patch.default_behaviour {
        row.default_behaviour = behaviour;
    }
    row.updated_at = crate::time::now();
    check(&row)?;
    match store::caches::update(state.store.writer(), &row).await {
        Ok(()) => Ok(Json(to_json(row, &state.settings.resources.cache_host))),
        Err(e) if name_taken(&e) => Err(ApiError::Conflict(format!("a cache named {} already exists", row.name))),
        Err(e) => Err(e.into()),
    }
}

/// Delete a cache and its rules.
#[utoipa::path(delete, path = "/v1/caches/{id}", tag = "caches", params(("id" = String, Path, description = "cache id")),
    responses((status = 204, description = "deleted"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["caches:write"])))]
pub async fn delete(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    bearer.require(Scope::CachesWrite)?;
    if store::caches::delete(state.store.writer(), &bearer.workspace_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("cache"))
    }
}

/// Purge everything the cache holds.
#[utoipa::path(post, path = "/v1/caches/{id}/purge", tag = "caches", params(("id" = String, Path, description = "cache id")),
    responses((status = 200, body = Cache), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["caches:write"])))]
pub async fn purge(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    bearer.require(Scope::CachesWrite)?;
    let mut row = find(&state, &bearer, &id).await?;
    let now = crate::time::now();
    row.purged_at = Some(now);
    row.updated_at = now;
    store::caches::update(state.store.writer(), &row).await?;
    Ok(Json(to_json(row, &state.settings.resources.cache_host)).into_response())
}
