//! Databases: what a workspace asked for, and what the data plane reports.

use sqlx::{Any, Executor, FromRow};

use std::sync::LazyLock;

use super::query::{Read, Step};
use super::{Page, Store, StoreError};

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
    pub agent_id: Option<String>,
    pub attempts: i64,
    pub failure_reason: Option<String>,
}

impl DatabaseRow {
    /// A database as the API or console records it: pending, with a fresh password
    /// (32 base62 characters, about 190 random bits) and no endpoint until a data plane sets one.
    /// The password comes from the thread's CSPRNG (seeded from the OS), as every issued secret
    /// does: drawn from the OS generator itself, each character was a `getrandom` call.
    pub fn requested(workspace_id: &str, name: String, region: String, tls: bool, now: i64) -> DatabaseRow {
        use rand::distributions::{Alphanumeric, DistString};
        DatabaseRow {
            id: crate::credentials::new_id("db"),
            workspace_id: workspace_id.to_owned(),
            name,
            region,
            state: "pending".into(),
            endpoint: None,
            port: None,
            password: Alphanumeric.sample_string(&mut rand::thread_rng(), 32),
            tls: i64::from(tls),
            created_at: now,
            updated_at: now,
            agent_id: None,
            attempts: 0,
            failure_reason: None,
        }
    }
}

crate::record!(DatabaseRow {
    id,
    workspace_id,
    name,
    region,
    state,
    endpoint,
    port,
    password,
    tls,
    created_at,
    updated_at,
    agent_id,
    attempts,
    failure_reason
});

const COLUMNS: &str =
    "id, workspace_id, name, region, state, endpoint, port, password, tls, created_at, updated_at, agent_id, attempts, failure_reason";

/// Inserts a new database row. A second database of the same name in the workspace is a unique
/// violation.
pub fn insert(d: &DatabaseRow) -> Step {
    Step::new(
        format!(
            "INSERT INTO databases ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ),
        crate::values![
            d.id.as_str(),
            d.workspace_id.as_str(),
            d.name.as_str(),
            d.region.as_str(),
            d.state.as_str(),
            d.endpoint.clone(),
            d.port,
            d.password.as_str(),
            d.tls,
            d.created_at,
            d.updated_at,
            d.agent_id.clone(),
            d.attempts,
            d.failure_reason.clone()
        ],
    )
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

/// One page of the workspace's databases, read alone.
pub async fn list(db: &Store, workspace_id: &str, page: &Page) -> Result<Vec<DatabaseRow>, StoreError> {
    let read = self::page(workspace_id, page);
    db.fetch_all(&read.sql, &read.params).await
}

/// One page of the workspace's databases, in the order they were created.
pub fn page(workspace_id: &str, page: &Page) -> Read<DatabaseRow> {
    static PAGE: LazyLock<String> = LazyLock::new(|| Page::of_workspace_sql("databases", COLUMNS));
    Read::new(PAGE.as_str(), page.params(workspace_id))
}

/// Asks for a database to go. One no agent has touched goes at once; otherwise it becomes
/// `deleting` and its agent tears the server down. False if there is no such database.
pub async fn request_delete<'c>(
    db: impl Executor<'c, Database = Any> + Copy,
    workspace_id: &str,
    id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let gone = sqlx::query("DELETE FROM databases WHERE workspace_id = $1 AND id = $2 AND agent_id IS NULL")
        .bind(workspace_id)
        .bind(id)
        .execute(db)
        .await?;
    if gone.rows_affected() == 1 {
        return Ok(true);
    }
    let marked = sqlx::query(
        "UPDATE databases SET state = 'deleting', lease_until = NULL, attempts = 0, updated_at = $1
          WHERE workspace_id = $2 AND id = $3",
    )
    .bind(now)
    .bind(workspace_id)
    .bind(id)
    .execute(db)
    .await?;
    Ok(marked.rows_affected() == 1)
}

/// Databases with work for `agent_id`: new ones, transitions whose lease ran out (their agent
/// died), and deletions of databases it owns (or that no agent owns).
pub async fn work_for<'c>(
    db: impl Executor<'c, Database = Any>,
    agent_id: &str,
    now: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, state FROM databases
          WHERE (lease_until IS NULL OR lease_until < $1)
            AND (state IN ('pending', 'provisioning') OR (state = 'deleting' AND (agent_id IS NULL OR agent_id = $2)))
          ORDER BY updated_at, id LIMIT 20",
    )
    .bind(now)
    .bind(agent_id)
    .fetch_all(db)
    .await?)
}

/// Takes a lease on one database's transition; exactly one agent wins, on either engine,
/// because the condition is checked again by the UPDATE itself.
pub async fn claim<'c>(
    db: impl Executor<'c, Database = Any>,
    id: &str,
    state: &str,
    agent_id: &str,
    now: i64,
    lease_until: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE databases SET agent_id = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3,
                state = CASE WHEN state = 'pending' THEN 'provisioning' ELSE state END
          WHERE id = $4 AND state = $5 AND (lease_until IS NULL OR lease_until < $3)",
    )
    .bind(agent_id)
    .bind(lease_until)
    .bind(now)
    .bind(id)
    .bind(state)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn by_id<'c>(db: impl Executor<'c, Database = Any>, id: &str) -> Result<Option<DatabaseRow>, StoreError> {
    Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM databases WHERE id = $1")).bind(id).fetch_optional(db).await?)
}

/// Records the port chosen for a database, so that no other database of this agent takes it.
pub async fn set_port<'c>(db: impl Executor<'c, Database = Any>, id: &str, port: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE databases SET port = $1 WHERE id = $2").bind(port).bind(id).execute(db).await?;
    Ok(())
}

pub async fn ports_of_agent<'c>(db: impl Executor<'c, Database = Any>, agent_id: &str) -> Result<Vec<i64>, StoreError> {
    let rows: Vec<(i64,)> = sqlx::query_as("SELECT port FROM databases WHERE agent_id = $1 AND port IS NOT NULL")
        .bind(agent_id)
        .fetch_all(db)
        .await?;
    Ok(rows.into_iter().map(|(p,)| p).collect())
}

pub async fn mark_active<'c>(
    db: impl Executor<'c, Database = Any>,
    id: &str,
    agent_id: &str,
    endpoint: &str,
    port: i64,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE databases SET state = 'active', endpoint = $1, port = $2, lease_until = NULL, attempts = 0,
                failure_reason = NULL, updated_at = $3
          WHERE id = $4 AND agent_id = $5 AND state = 'provisioning'",
    )
    .bind(endpoint)
    .bind(port)
    .bind(now)
    .bind(id)
    .bind(agent_id)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn mark_failed<'c>(
    db: impl Executor<'c, Database = Any>,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE databases SET state = 'failed', failure_reason = $1, lease_until = NULL, endpoint = NULL, updated_at = $2
          WHERE id = $3 AND state <> 'deleting'",
    )
    .bind(reason)
    .bind(now)
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// Databases this agent serves, for health checks and adoption after a restart.
pub async fn active_of_agent<'c>(
    db: impl Executor<'c, Database = Any>,
    agent_id: &str,
) -> Result<Vec<DatabaseRow>, StoreError> {
    Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM databases WHERE agent_id = $1 AND state = 'active'"))
        .bind(agent_id)
        .fetch_all(db)
        .await?)
}

/// Removes a database whose server is gone.
pub async fn finish_delete<'c>(db: impl Executor<'c, Database = Any>, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM databases WHERE id = $1 AND state = 'deleting'").bind(id).execute(db).await?;
    Ok(())
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

/// Databases of a workspace that an agent has touched (so a server may be running for them).
pub async fn provisioned_count<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
) -> Result<i64, StoreError> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM databases WHERE workspace_id = $1 AND agent_id IS NOT NULL")
            .bind(workspace_id)
            .fetch_one(db)
            .await?;
    Ok(n)
}
