//! Cache rules (scopes `cacheRules:read`, `cacheRules:write`): how long a cache keeps the answers
//! to queries touching a table, of one shape (a template with `?` parameters), or one exact query.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::AppState;
use crate::apps::Scope;
use crate::credentials::new_id;
use crate::http::Json;
use crate::oauth::bearer::Bearer;
use crate::store;
use crate::store::caches::RuleRow;

use super::extract::{
    commit_created, conflict_or_replay, finish_page, paging, resource_name, rfc3339, validated, ApiJson, Idempotency,
};
use super::problem::{ApiError, FieldError, Problem};

/// At most a year; 0 means "never cache".
pub const MAX_TTL_SECONDS: i64 = 365 * 24 * 3600;
const MAX_SQL_LEN: usize = 10_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct Rule {
    pub id: String,
    pub cache_id: String,
    pub name: String,
    /// `table`, `template` or `query`.
    #[serde(rename = "type")]
    pub rule_type: String,
    /// The table name, or the SQL text of the template or query.
    #[serde(rename = "match")]
    pub match_text: String,
    /// How long matching results are cached; 0 means never.
    pub ttl_seconds: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRule {
    /// 1 to 63 characters of `a-z`, `0-9` and `-`.
    #[schema(pattern = "^[a-z0-9-]{1,63}$")]
    pub name: String,
    #[serde(rename = "type")]
    pub rule_type: String,
    #[serde(rename = "match")]
    pub match_text: String,
    pub ttl_seconds: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRule {
    /// 1 to 63 characters of `a-z`, `0-9` and `-`.
    #[schema(pattern = "^[a-z0-9-]{1,63}$")]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub rule_type: Option<String>,
    #[serde(rename = "match")]
    pub match_text: Option<String>,
    pub ttl_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleList {
    pub items: Vec<Rule>,
    pub next_cursor: Option<String>,
}

fn to_json(r: &RuleRow) -> Rule {
    Rule {
        id: r.id.clone(),
        cache_id: r.cache_id.clone(),
        name: r.name.clone(),
        rule_type: r.rule_type.clone(),
        match_text: r.match_text.clone(),
        ttl_seconds: r.ttl_seconds,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
    }
}

fn is_identifier(part: &str) -> bool {
    let mut bytes = part.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
}

fn is_select(sql: &str) -> bool {
    let head: String = sql.trim_start().chars().take(6).collect::<String>().to_ascii_lowercase();
    head.starts_with("select") || head.starts_with("with")
}

/// Checks a rule's match against its type.
pub fn check_match(rule_type: &str, text: &str) -> Result<(), FieldError> {
    let bad = |m: &str| Err(FieldError::new("match", m));
    match rule_type {
        "table" => {
            let parts: Vec<&str> = text.split('.').collect();
            if text.len() <= 128 && parts.len() <= 2 && parts.iter().all(|p| is_identifier(p)) {
                Ok(())
            } else {
                bad("a table rule matches a table name such as orders or public.orders")
            }
        }
        "template" | "query" if text.trim().is_empty() || text.len() > MAX_SQL_LEN => {
            bad("must be 1 to 10000 characters of SQL")
        }
        "template" | "query" if !is_select(text) => bad("must be a SELECT (or WITH) statement"),
        "template" if !text.contains('?') => bad("a template writes its parameters as ?"),
        "template" | "query" => Ok(()),
        _ => Err(FieldError::new("type", "must be table, template or query")),
    }
}

pub fn check(r: &RuleRow) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    resource_name("name", &r.name, &mut errors);
    if let Err(e) = check_match(&r.rule_type, &r.match_text) {
        errors.push(e);
    }
    if !(0..=MAX_TTL_SECONDS).contains(&r.ttl_seconds) {
        errors.push(FieldError::new("ttl_seconds", format!("must be from 0 to {MAX_TTL_SECONDS}")));
    }
    validated(errors)
}

async fn cache_of(state: &AppState, bearer: &Bearer, cache_id: &str) -> Result<(), ApiError> {
    match store::caches::get(state.store.reader(), &bearer.workspace_id, cache_id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound("cache")),
    }
}

/// List a cache's rules.
#[utoipa::path(get, path = "/v1/caches/{id}/rules", tag = "cache rules",
    params(("id" = String, Path, description = "cache id"), ("limit" = Option<i64>, Query, description = "1 to 100, default 20"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses((status = 200, body = RuleList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = ["cacheRules:read"])))]
pub async fn list(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<RuleList>, ApiError> {
    bearer.require(Scope::CacheRulesRead)?;
    cache_of(&state, &bearer, &id).await?;
    let page = paging(query.as_deref())?;
    let rows = store::caches::list_rules(state.store.reader(), &id, &page).await?;
    let (rows, next_cursor) = finish_page(rows, &page, |r| (r.created_at, &r.id));
    Ok(Json(RuleList { items: rows.iter().map(to_json).collect(), next_cursor }))
}

/// Add a rule to a cache.
#[utoipa::path(post, path = "/v1/caches/{id}/rules", tag = "cache rules", request_body = CreateRule,
    params(("id" = String, Path, description = "cache id"), ("Idempotency-Key" = Option<String>, Header, description = "retries with the same key and body return the first response")),
    responses((status = 201, body = Rule), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = ["cacheRules:write"])))]
pub async fn create(
    State(state): State<AppState>,
    bearer: Bearer,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: ApiJson<CreateRule>,
) -> Result<Response, ApiError> {
    bearer.require(Scope::CacheRulesWrite)?;
    cache_of(&state, &bearer, &id).await?;
    let idempotency = Idempotency::from_request(&headers, &bearer, &format!("POST /v1/caches/{id}/rules"), &body.raw)?;
    if let Some(idem) = &idempotency {
        if let Some(replayed) = idem.replay(&state.store).await? {
            return Ok(replayed);
        }
    }
    let input = body.value;
    let now = crate::time::now();
    let row = RuleRow {
        id: new_id("rule"),
        cache_id: id,
        name: input.name,
        rule_type: input.rule_type,
        match_text: input.match_text,
        ttl_seconds: input.ttl_seconds,
        created_at: now,
        updated_at: now,
    };
    check(&row)?;
    let mut tx = state.store.begin().await?;
    if let Err(e) = store::caches::insert_rule(&mut *tx, &row).await {
        drop(tx);
        return match e.is_unique_violation() {
            true => {
                conflict_or_replay(&state.store, &idempotency, format!("a rule named {} already exists", row.name))
                    .await
            }
            false => Err(e.into()),
        };
    }
    let body = serde_json::to_value(to_json(&row)).map_err(|e| ApiError::Internal(e.into()))?;
    commit_created(&state.store, tx, idempotency, body, now).await
}

async fn find(state: &AppState, bearer: &Bearer, cache_id: &str, rule_id: &str) -> Result<RuleRow, ApiError> {
    cache_of(state, bearer, cache_id).await?;
    store::caches::get_rule(state.store.reader(), cache_id, rule_id).await?.ok_or(ApiError::NotFound("cache rule"))
}

/// Get a rule.
#[utoipa::path(get, path = "/v1/caches/{id}/rules/{rule_id}", tag = "cache rules",
    params(("id" = String, Path, description = "cache id"), ("rule_id" = String, Path, description = "rule id")),
    responses((status = 200, body = Rule), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["cacheRules:read"])))]
pub async fn get(
    State(state): State<AppState>,
    bearer: Bearer,
    Path((id, rule_id)): Path<(String, String)>,
) -> Result<Json<Rule>, ApiError> {
    bearer.require(Scope::CacheRulesRead)?;
    Ok(Json(to_json(&find(&state, &bearer, &id, &rule_id).await?)))
}

/// Change a rule.
#[utoipa::path(patch, path = "/v1/caches/{id}/rules/{rule_id}", tag = "cache rules", request_body = UpdateRule,
    params(("id" = String, Path, description = "cache id"), ("rule_id" = String, Path, description = "rule id")),
    responses((status = 200, body = Rule), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = ["cacheRules:write"])))]
pub async fn update(
    State(state): State<AppState>,
    bearer: Bearer,
    Path((id, rule_id)): Path<(String, String)>,
    body: ApiJson<UpdateRule>,
) -> Result<Json<Rule>, ApiError> {
    bearer.require(Scope::CacheRulesWrite)?;
    let mut row = find(&state, &bearer, &id, &rule_id).await?;
    let patch = body.value;
    row.name = patch.name.unwrap_or(row.name);
    row.rule_type = patch.rule_type.unwrap_or(row.rule_type);
    row.match_text = patch.match_text.unwrap_or(row.match_text);
    row.ttl_seconds = patch.ttl_seconds.unwrap_or(row.ttl_seconds);
    row.updated_at = crate::time::now();
    check(&row)?;
    match store::caches::update_rule(state.store.writer(), &row).await {
        Ok(()) => Ok(Json(to_json(&row))),
        Err(e) if e.is_unique_violation() => {
            Err(ApiError::Conflict(format!("a rule named {} already exists", row.name)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Delete a rule.
#[utoipa::path(delete, path = "/v1/caches/{id}/rules/{rule_id}", tag = "cache rules",
    params(("id" = String, Path, description = "cache id"), ("rule_id" = String, Path, description = "rule id")),
    responses((status = 204, description = "deleted"), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = ["cacheRules:write"])))]
pub async fn delete(
    State(state): State<AppState>,
    bearer: Bearer,
    Path((id, rule_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    bearer.require(Scope::CacheRulesWrite)?;
    cache_of(&state, &bearer, &id).await?;
    if store::caches::delete_rule(state.store.writer(), &id, &rule_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("cache rule"))
    }
}

#[cfg(test)]
mod tests {
    use super::check_match;

    #[test]
    fn matches_are_validated_per_type() {
        assert!(check_match("table", "orders").is_ok());
        assert!(check_match("table", "public.orders").is_ok());
        assert!(check_match("table", "orders; drop table x").is_err());
        assert!(check_match("table", "a.b.c").is_err());
        assert!(check_match("template", "SELECT * FROM orders WHERE id = ?").is_ok());
        assert!(check_match("template", "SELECT * FROM orders WHERE id = 1").is_err());
        assert!(check_match("query", "select 1").is_ok());
        assert!(check_match("query", "DELETE FROM orders").is_err());
        assert!(check_match("query", "").is_err());
        assert!(check_match("regex", "x").is_err());
    }
}
