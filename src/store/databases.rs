//! Databases: what a workspace asked for, and what the data plane reports.

use sqlx::{Any, Executor, FromRow};

use super::{Page, StoreError};

#[derive(Clone, Debug, FromRow)]
pub struct DatabaseRow {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub region: String,
    pub state: String,
    pub endpoint: Option<String>,
    pub port: Option<i64>,
    pub password: String,
    pub tls: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, workspace_id, name, region, state, endpoint, port, password, tls, created_at, updated_at";

pub async fn insert<'c>(db: impl Executor<'c, Database = Any>, d: &DatabaseRow) -> Result<(), StoreError> {
    sqlx::query(&format!("INSERT INTO databases ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"))
        .bind(&d.id)
        .bind(&d.workspace_id)
        .bind(&d.name)
        .bind(&d.region)
        .bind(&d.state)
        .bind(&d.endpoint)
        .bind(d.port)
        .bind(&d.password)
        .bind(d.tls)
        .bind(d.created_at)
        .bind(d.updated_at)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn get<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
    id: &str,
) -> Result<Option<DatabaseRow>, StoreError> {
    Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM databases WHERE workspace_id = $1 AND id = $2"))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(db)
        .await?)
}

pub async fn list<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
    page: &Page,
) -> Result<Vec<DatabaseRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM databases WHERE workspace_id = $1 AND (created_at > $2 OR (created_at = $2 AND id > $3))
          ORDER BY created_at, id LIMIT $4"
    ))
    .bind(workspace_id)
    .bind(page.after_time)
    .bind(&page.after_id)
    .bind(page.limit + 1)
    .fetch_all(db)
    .await?)
}

pub async fn delete<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
    id: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM databases WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}
