//! OAuth applications.

use sqlx::{Any, Executor, FromRow};

use super::query::Read;
use super::{Store, StoreError};

#[derive(Clone, Debug, FromRow)]
pub struct AppRow {
    pub client_id: String,
    pub owner_user_id: Option<String>,
    pub owner_workspace_id: Option<String>,
    pub name: String,
    pub scopes: String,
    pub redirect_uris: String,
    pub logo_url: Option<String>,
    pub homepage_url: Option<String>,
    pub client_type: String,
    pub secret_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "client_id, owner_user_id, owner_workspace_id, name, scopes, redirect_uris, logo_url, \
                       homepage_url, client_type, secret_hash, created_at, updated_at";

pub async fn insert<'c>(db: impl Executor<'c, Database = Any>, app: &AppRow) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO oauth_apps ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&app.client_id)
    .bind(&app.owner_user_id)
    .bind(&app.owner_workspace_id)
    .bind(&app.name)
    .bind(&app.scopes)
    .bind(&app.redirect_uris)
    .bind(&app.logo_url)
    .bind(&app.homepage_url)
    .bind(&app.client_type)
    .bind(&app.secret_hash)
    .bind(app.created_at)
    .bind(app.updated_at)
    .execute(db)
    .await?;
    Ok(())
}

crate::record!(AppRow {
    client_id,
    owner_user_id,
    owner_workspace_id,
    name,
    scopes,
    redirect_uris,
    logo_url,
    homepage_url,
    client_type,
    secret_hash,
    created_at,
    updated_at
});

/// The app a client authenticates as, on the fast path (every token request reads it).
pub fn lookup(client_id: &str) -> Read<AppRow> {
    Read::new(format!("SELECT {COLUMNS} FROM oauth_apps WHERE client_id = $1"), crate::values![client_id])
}

pub async fn find(db: &Store, client_id: &str) -> Result<Option<AppRow>, StoreError> {
    let read = lookup(client_id);
    db.fetch_optional(&read.sql, &read.params).await
}

pub async fn by_client_id<'c>(
    db: impl Executor<'c, Database = Any>,
    client_id: &str,
) -> Result<Option<AppRow>, StoreError> {
    Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM oauth_apps WHERE client_id = $1"))
        .bind(client_id)
        .fetch_optional(db)
        .await?)
}

pub async fn owned_by_user<'c>(
    db: impl Executor<'c, Database = Any>,
    user_id: &str,
) -> Result<Vec<AppRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM oauth_apps WHERE owner_user_id = $1 ORDER BY created_at, client_id"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await?)
}

pub async fn owned_by_workspace<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
) -> Result<Vec<AppRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM oauth_apps WHERE owner_workspace_id = $1 ORDER BY created_at, client_id"
    ))
    .bind(workspace_id)
    .fetch_all(db)
    .await?)
}

pub async fn update_details<'c>(db: impl Executor<'c, Database = Any>, app: &AppRow) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE oauth_apps SET name = $1, scopes = $2, redirect_uris = $3, logo_url = $4, homepage_url = $5,
                updated_at = $6
          WHERE client_id = $7",
    )
    .bind(&app.name)
    .bind(&app.scopes)
    .bind(&app.redirect_uris)
    .bind(&app.logo_url)
    .bind(&app.homepage_url)
    .bind(app.updated_at)
    .bind(&app.client_id)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn set_secret_hash<'c>(
    db: impl Executor<'c, Database = Any>,
    client_id: &str,
    secret_hash: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE oauth_apps SET secret_hash = $1, updated_at = $2 WHERE client_id = $3")
        .bind(secret_hash)
        .bind(now)
        .bind(client_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes the app; its grants, codes and tokens go with it (ON DELETE CASCADE).
pub async fn delete<'c>(db: impl Executor<'c, Database = Any>, client_id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM oauth_apps WHERE client_id = $1").bind(client_id).execute(db).await?;
    Ok(done.rows_affected() == 1)
}
