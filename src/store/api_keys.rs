//! Developer API keys, keyed by the SHA-256 of the key.

use sqlx::{Any, Executor, FromRow};

use super::{Page, StoreError};

#[derive(Clone, Debug, FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub key_hash: String,
    pub workspace_id: String,
    pub grant_id: Option<String>,
    pub created_by_user_id: String,
    pub name: String,
    pub scopes: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

const COLUMNS: &str =
    "k.id, k.key_hash, k.workspace_id, k.grant_id, k.created_by_user_id, k.name, k.scopes, k.created_at, k.last_used_at, k.revoked_at";

pub async fn insert<'c>(db: impl Executor<'c, Database = Any>, k: &ApiKeyRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (id, key_hash, workspace_id, grant_id, created_by_user_id, name, scopes, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&k.id)
    .bind(&k.key_hash)
    .bind(&k.workspace_id)
    .bind(&k.grant_id)
    .bind(&k.created_by_user_id)
    .bind(&k.name)
    .bind(&k.scopes)
    .bind(k.created_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Keys visible to a caller: those minted by the same client on this workspace, or, for a caller
/// without a client (a console key), the console's keys.
pub async fn list<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
    client_id: Option<&str>,
    page: &Page,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys k LEFT JOIN grants g ON g.id = k.grant_id
          WHERE k.workspace_id = $1 AND k.revoked_at IS NULL AND (k.grant_id IS NULL OR g.revoked_at IS NULL)
            AND COALESCE(g.client_id, '') = $2
            AND (k.created_at > $3 OR (k.created_at = $3 AND k.id > $4))
          ORDER BY k.created_at, k.id LIMIT $5"
    ))
    .bind(workspace_id)
    .bind(client_id.unwrap_or(""))
    .bind(page.after_time)
    .bind(&page.after_id)
    .bind(page.limit + 1)
    .fetch_all(db)
    .await?)
}

/// Every live key of a workspace, for the console.
pub async fn for_workspace<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys k LEFT JOIN grants g ON g.id = k.grant_id
          WHERE k.workspace_id = $1 AND k.revoked_at IS NULL AND (k.grant_id IS NULL OR g.revoked_at IS NULL)
          ORDER BY k.created_at, k.id"
    ))
    .bind(workspace_id)
    .fetch_all(db)
    .await?)
}

/// A live key visible to a caller of `client_id` (None: console keys), as in [`list`].
pub async fn get_visible<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
    id: &str,
    client_id: Option<&str>,
) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys k LEFT JOIN grants g ON g.id = k.grant_id
          WHERE k.workspace_id = $1 AND k.id = $2 AND k.revoked_at IS NULL AND (k.grant_id IS NULL OR g.revoked_at IS NULL)
            AND COALESCE(g.client_id, '') = $3"
    ))
    .bind(workspace_id)
    .bind(id)
    .bind(client_id.unwrap_or(""))
    .fetch_optional(db)
    .await?)
}

pub async fn revoke<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
    id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE workspace_id = $2 AND id = $3 AND revoked_at IS NULL")
            .bind(now)
            .bind(workspace_id)
            .bind(id)
            .execute(db)
            .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
    id: &str,
) -> Result<Option<ApiKeyRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys k WHERE k.workspace_id = $1 AND k.id = $2 AND k.revoked_at IS NULL"
    ))
    .bind(workspace_id)
    .bind(id)
    .fetch_optional(db)
    .await?)
}

/// Revokes the console keys a member made on a workspace (they are leaving it); returns how many.
pub async fn revoke_console_keys_of<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
    user_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1
          WHERE workspace_id = $2 AND created_by_user_id = $3 AND grant_id IS NULL AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(workspace_id)
    .bind(user_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes a live key minted through `client_id`'s grants (RFC 7009 at /oauth2/revoke).
pub async fn revoke_for_client<'c>(
    db: impl Executor<'c, Database = Any>,
    key_hash: &str,
    client_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1
          WHERE key_hash = $2 AND revoked_at IS NULL
            AND grant_id IN (SELECT id FROM grants WHERE client_id = $3)",
    )
    .bind(now)
    .bind(key_hash)
    .bind(client_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
