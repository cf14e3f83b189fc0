//! Workspaces and memberships.

use sqlx::{Any, Executor, FromRow};

use super::StoreError;

#[derive(Clone, Debug, FromRow)]
pub struct WorkspaceRow {
    pub id: String,
    pub name: String,
    pub personal: i64,
    pub created_at: i64,
}

/// A workspace as one of its members sees it.
#[derive(Clone, Debug, FromRow)]
pub struct MyWorkspaceRow {
    pub id: String,
    pub name: String,
    pub personal: i64,
    pub created_at: i64,
    pub role: String,
}

#[derive(Clone, Debug, FromRow)]
pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub created_at: i64,
}

pub async fn insert<'c>(db: impl Executor<'c, Database = Any>, ws: &WorkspaceRow) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO workspaces (id, name, personal, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&ws.id)
        .bind(&ws.name)
        .bind(ws.personal)
        .bind(ws.created_at)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn by_id<'c>(db: impl Executor<'c, Database = Any>, id: &str) -> Result<Option<WorkspaceRow>, StoreError> {
    Ok(sqlx::query_as("SELECT id, name, personal, created_at FROM workspaces WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?)
}

pub async fn rename<'c>(db: impl Executor<'c, Database = Any>, id: &str, name: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE workspaces SET name = $1 WHERE id = $2").bind(name).bind(id).execute(db).await?;
    Ok(())
}

pub async fn add_member<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
    user_id: &str,
    role: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
        .bind(workspace_id)
        .bind(user_id)
        .bind(role)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn remove_member<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
    user_id: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
        .bind(workspace_id)
        .bind(user_id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The user's role in the workspace, if they are a member.
pub async fn role_of<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2")
            .bind(workspace_id)
            .bind(user_id)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|(role,)| role))
}

pub async fn owner_count<'c>(db: impl Executor<'c, Database = Any>, workspace_id: &str) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner'")
        .bind(workspace_id)
        .fetch_one(db)
        .await?;
    Ok(n)
}

pub async fn for_user<'c>(
    db: impl Executor<'c, Database = Any>,
    user_id: &str,
) -> Result<Vec<MyWorkspaceRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT w.id, w.name, w.personal, w.created_at, m.role
           FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
          WHERE m.user_id = $1
          ORDER BY w.personal DESC, w.name, w.id",
    )
    .bind(user_id)
    .fetch_all(db)
    .await?)
}

pub async fn members<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
) -> Result<Vec<MemberRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at
           FROM memberships m JOIN users u ON u.id = m.user_id
          WHERE m.workspace_id = $1
          ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 ELSE 2 END, u.email",
    )
    .bind(workspace_id)
    .fetch_all(db)
    .await?)
}

/// Takes the workspace's row lock for the rest of the transaction, so that checks such as
/// "is this the last owner?" cannot race on either engine. Returns false if it does not exist.
pub async fn lock<'c>(db: impl Executor<'c, Database = Any>, id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE workspaces SET name = name WHERE id = $1").bind(id).execute(db).await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes the workspace. Its memberships, grants (and so every code, token and key under them),
/// its apps and its audit log go with it (ON DELETE CASCADE).
pub async fn delete<'c>(db: impl Executor<'c, Database = Any>, id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM workspaces WHERE id = $1").bind(id).execute(db).await?;
    Ok(done.rows_affected() == 1)
}
