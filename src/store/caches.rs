//! Caches and their rules.

use sqlx::{Any, Executor, FromRow};

use std::sync::LazyLock;

use super::query::Read;
use super::{Page, Store, StoreError};

#[derive(Clone, Debug, FromRow)]
pub struct CacheRow {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub description: String,
    pub database_type: String,
    pub origin_host: String,
    pub origin_port: i64,
    pub caching_enabled: i64,
    pub default_behaviour: String,
    pub purged_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

crate::record!(CacheRow {
    id,
    workspace_id,
    name,
    description,
    database_type,
    origin_host,
    origin_port,
    caching_enabled,
    default_behaviour,
    purged_at,
    created_at,
    updated_at
});

const CACHE_COLUMNS: &str = "id, workspace_id, name, description, database_type, origin_host, origin_port, \
                             caching_enabled, default_behaviour, purged_at, created_at, updated_at";

pub async fn insert<'c>(db: impl Executor<'c, Database = Any>, c: &CacheRow) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO caches ({CACHE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&c.id)
    .bind(&c.workspace_id)
    .bind(&c.name)
    .bind(&c.description)
    .bind(&c.database_type)
    .bind(&c.origin_host)
    .bind(c.origin_port)
    .bind(c.caching_enabled)
    .bind(&c.default_behaviour)
    .bind(c.purged_at)
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn update<'c>(db: impl Executor<'c, Database = Any>, c: &CacheRow) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE caches SET name = $1, description = $2, database_type = $3, origin_host = $4, origin_port = $5,
                caching_enabled = $6, default_behaviour = $7, purged_at = $8, updated_at = $9
          WHERE id = $10 AND workspace_id = $11",
    )
    .bind(&c.name)
    .bind(&c.description)
    .bind(&c.database_type)
    .bind(&c.origin_host)
    .bind(c.origin_port)
    .bind(c.caching_enabled)
    .bind(&c.default_behaviour)
    .bind(c.purged_at)
    .bind(c.updated_at)
    .bind(&c.id)
    .bind(&c.workspace_id)
    .execute(db)
    .await?;
    Ok(())
}

/// A cache of this workspace; another workspace's id finds nothing.
pub async fn get<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
    id: &str,
) -> Result<Option<CacheRow>, StoreError> {
    Ok(sqlx::query_as(&format!("SELECT {CACHE_COLUMNS} FROM caches WHERE workspace_id = $1 AND id = $2"))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(db)
        .await?)
}

/// One page of the workspace's caches, read alone.
pub async fn list(db: &Store, workspace_id: &str, page: &Page) -> Result<Vec<CacheRow>, StoreError> {
    let read = self::page(workspace_id, page);
    db.fetch_all(&read.sql, &read.params).await
}

/// One page of the workspace's caches, in the order they were created.
pub fn page(workspace_id: &str, page: &Page) -> Read<CacheRow> {
    static PAGE: LazyLock<String> = LazyLock::new(|| Page::of_workspace_sql("caches", CACHE_COLUMNS));
    Read::new(PAGE.as_str(), page.params(workspace_id))
}

pub async fn delete<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
    id: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM caches WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Clone, Debug, FromRow)]
pub struct RuleRow {
    pub id: String,
    pub cache_id: String,
    pub name: String,
    pub rule_type: String,
    pub match_text: String,
    pub ttl_seconds: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const RULE_COLUMNS: &str = "id, cache_id, name, rule_type, match_text, ttl_seconds, created_at, updated_at";

pub async fn insert_rule<'c>(db: impl Executor<'c, Database = Any>, r: &RuleRow) -> Result<(), StoreError> {
    sqlx::query(&format!("INSERT INTO cache_rules ({RULE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
        .bind(&r.id)
        .bind(&r.cache_id)
        .bind(&r.name)
        .bind(&r.rule_type)
        .bind(&r.match_text)
        .bind(r.ttl_seconds)
        .bind(r.created_at)
        .bind(r.updated_at)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn update_rule<'c>(db: impl Executor<'c, Database = Any>, r: &RuleRow) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE cache_rules SET name = $1, rule_type = $2, match_text = $3, ttl_seconds = $4, updated_at = $5
          WHERE id = $6 AND cache_id = $7",
    )
    .bind(&r.name)
    .bind(&r.rule_type)
    .bind(&r.match_text)
    .bind(r.ttl_seconds)
    .bind(r.updated_at)
    .bind(&r.id)
    .bind(&r.cache_id)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_rule<'c>(
    db: impl Executor<'c, Database = Any>,
    cache_id: &str,
    id: &str,
) -> Result<Option<RuleRow>, StoreError> {
    Ok(sqlx::query_as(&format!("SELECT {RULE_COLUMNS} FROM cache_rules WHERE cache_id = $1 AND id = $2"))
        .bind(cache_id)
        .bind(id)
        .fetch_optional(db)
        .await?)
}

pub async fn list_rules<'c>(
    db: impl Executor<'c, Database = Any>,
    cache_id: &str,
    page: &Page,
) -> Result<Vec<RuleRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {RULE_COLUMNS} FROM cache_rules WHERE cache_id = $1 AND (created_at > $2 OR (created_at = $2 AND id > $3))
          ORDER BY created_at, id LIMIT $4"
    ))
    .bind(cache_id)
    .bind(page.after_time)
    .bind(&page.after_id)
    .bind(page.limit + 1)
    .fetch_all(db)
    .await?)
}

pub async fn delete_rule<'c>(
    db: impl Executor<'c, Database = Any>,
    cache_id: &str,
    id: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM cache_rules WHERE cache_id = $1 AND id = $2")
        .bind(cache_id)
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}
