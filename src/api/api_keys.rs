//! Developer API keys (`tes_ak_`): minted with a bearer access token, carrying the workspace and
//! scopes of the grant behind it, outliving the token and dying with the grant.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::apps::ScopeSet;
use crate::audit::{self, ApiKeyInfo, AuditActor};
use crate::credentials::{new_id, IssuedSecret, SecretKind};
use crate::http::Json;
use crate::oauth::bearer::Bearer;
use crate::store;
use crate::store::api_keys::ApiKeyRow;

use super::extract::{commit_created_remembering, finish_page, paging, rfc3339, validated, ApiJson, Idempotency};
use super::problem::{ApiError, FieldError, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
    pub workspace_id: String,
    pub created_at: String,
}

/// A new key: the only time `api_key` is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    pub id: String,
    pub name: String,
    /// The key; null when this response is an `Idempotency-Key` replay (the key is shown once).
    pub api_key: Option<String>,
    pub scopes: Vec<String>,
    pub workspace_id: String,
    pub created_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// 1 to 80 characters, to recognise the key later.
    #[schema(min_length = 1, max_length = 80)]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKey>,
    pub next_cursor: Option<String>,
}

fn to_json(k: &ApiKeyRow) -> ApiKey {
    ApiKey {
        id: k.id.clone(),
        name: k.name.clone(),
        scopes: ScopeSet::from_stored(&k.scopes).names().into_iter().map(str::to_owned).collect(),
        workspace_id: k.workspace_id.clone(),
        created_at: rfc3339(k.created_at),
    }
}

pub fn check_name(name: &str) -> Result<(), ApiError> {
    let chars = name.trim().chars().count();
    if chars == 0 || chars > 80 || name.chars().any(char::is_control) {
        return validated(vec![FieldError::new("name", "must be 1 to 80 characters")]);
    }
    Ok(())
}

/// Mint a developer API key with an access token.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api keys", request_body = CreateApiKey,
    params(("Idempotency-Key" = Option<String>, Header, description = "retries with the same key and body return the first response")),
    responses((status = 201, body = CreatedApiKey), (status = 401, body = Problem), (status = 403, body = Problem, description = "an API key cannot mint API keys"), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    bearer: Bearer,
    headers: HeaderMap,
    body: ApiJson<CreateApiKey>,
) -> Result<Response, ApiError> {
    let grant_id = match (&bearer.api_key_id, &bearer.grant_id) {
        (None, Some(grant)) => grant.clone(),
        _ => {
            return Err(ApiError::Forbidden(
                "access-token-required",
                "API keys are minted with an OAuth access token, not with another API key.".into(),
            ))
        }
    };
    let idempotency = Idempotency::from_request(&headers, &bearer, "POST /v1/api-keys", &body.raw)?;
    if let Some(idem) = &idempotency {
        if let Some(replayed) = idem.replay(&state.store).await? {
            return Ok(replayed);
        }
    }
    check_name(&body.value.name)?;
    // The token's scopes, not the grant's: a token narrowed at refresh must not mint a wider key.
    let scopes = bearer.scopes.to_string();
    let now = crate::time::now();
    let secret = IssuedSecret::generate(SecretKind::ApiKey);
    let row = ApiKeyRow {
        id: new_id("key"),
        key_hash: secret.hash().as_str().to_owned(),
        workspace_id: bearer.workspace_id.clone(),
        grant_id: Some(grant_id),
        created_by_user_id: bearer.user_id.clone(),
        name: body.value.name.trim().to_owned(),
        scopes,
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    let mut tx = state.store.begin().await?;
    store::api_keys::insert(&mut *tx, &row).await?;
    let info = ApiKeyInfo { key_id: row.id.clone(), key_name: row.name.clone(), client_id: bearer.client_id.clone() };
    audit::api_key_minted(&mut tx, &actor(&bearer), &bearer.workspace_id, Some(&bearer.user_id), info, now).await?;
    let shown = to_json(&row);
    let created = CreatedApiKey {
        id: shown.id,
        name: shown.name,
        api_key: Some(secret.into_exposed()),
        scopes: shown.scopes,
        workspace_id: shown.workspace_id,
        created_at: shown.created_at,
    };
    let body = serde_json::to_value(created).map_err(|e| ApiError::Internal(e.into()))?;
    // A retry gets the first response back without the key: Tessera keeps only its hash.
    let mut remembered = body.clone();
    remembered["api_key"] = serde_json::Value::Null;
    commit_created_remembering(&state.store, tx, idempotency, body, &remembered, now).await
}

/// List the API keys this partner minted on the workspace (never the keys themselves).
#[utoipa::path(get, path = "/v1/api-keys", tag = "api keys",
    params(("limit" = Option<i64>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = ApiKeyList), (status = 401, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    bearer: Bearer,
    RawQuery(query): RawQuery,
) -> Result<Json<ApiKeyList>, ApiError> {
    let page = paging(query.as_deref())?;
    let rows =
        store::api_keys::list(state.store.reader(), &bearer.workspace_id, bearer.client_id.as_deref(), &page).await?;
    let (rows, next_cursor) = finish_page(rows, &page, |r| (r.created_at, &r.id));
    Ok(Json(ApiKeyList { items: rows.iter().map(to_json).collect(), next_cursor }))
}

/// Revoke an API key.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api keys", params(("id" = String, Path, description = "API key id")),
    responses((status = 204, description = "revoked"), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let db = &state.store;
    let key = store::api_keys::get_visible(db.reader(), &bearer.workspace_id, &id, bearer.client_id.as_deref())
        .await?
        .ok_or(ApiError::NotFound("API key"))?;
    let now = crate::time::now();
    let mut tx = db.begin().await?;
    if store::api_keys::revoke(&mut *tx, &bearer.workspace_id, &id, now).await? {
        let info = ApiKeyInfo { key_id: key.id, key_name: key.name, client_id: bearer.client_id.clone() };
        audit::api_key_revoked(
            &mut tx,
            &actor(&bearer),
            &bearer.workspace_id,
            key.grant_id.as_ref().map(|_| key.created_by_user_id.as_str()),
            info,
            now,
        )
        .await?;
    }
    tx.commit().await.map_err(|e| ApiError::Internal(e.into()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who acts through a bearer credential: the partner app, or (a console key) the system.
fn actor(bearer: &Bearer) -> AuditActor {
    match &bearer.client_id {
        Some(client_id) => AuditActor::Application(client_id.clone()),
        None => AuditActor::System,
    }
}
