//! The audit log: one row per event per log (a user's or a workspace's), newest first by `seq`.

use sqlx::{Any, Executor, FromRow};

use super::StoreError;

/// Which log a row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogRef<'a> {
    User(&'a str),
    Workspace(&'a str),
}

impl<'a> LogRef<'a> {
    /// The column that names the log, and its value. The column is one of two constants.
    fn column(self) -> (&'static str, &'a str) {
        match self {
            LogRef::User(id) => ("user_id", id),
            LogRef::Workspace(id) => ("workspace_id", id),
        }
    }
}

pub struct NewEvent<'a> {
    pub id: &'a str,
    pub log: LogRef<'a>,
    pub actor: &'a str,
    pub action: &'a str,
    pub details: &'a str,
    pub created_at: i64,
}

pub async fn insert<'c>(db: impl Executor<'c, Database = Any>, e: &NewEvent<'_>) -> Result<(), StoreError> {
    let (user_id, workspace_id) = match e.log {
        LogRef::User(id) => (Some(id), None),
        LogRef::Workspace(id) => (None, Some(id)),
    };
    sqlx::query(
        "INSERT INTO audit_events (id, user_id, workspace_id, actor, action, details, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(e.id)
    .bind(user_id)
    .bind(workspace_id)
    .bind(e.actor)
    .bind(e.action)
    .bind(e.details)
    .bind(e.created_at)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub id: String,
    pub actor: String,
    pub action: String,
    pub details: String,
    pub created_at: i64,
}

/// Up to `limit` events of one log older than `before_seq` (all of them if `None`), newest first.
pub async fn page<'c>(
    db: impl Executor<'c, Database = Any>,
    log: LogRef<'_>,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let (column, id) = log.column();
    Ok(sqlx::query_as(&format!(
        "SELECT seq, id, actor, action, details, created_at FROM audit_events
          WHERE {column} = $1 AND seq < $2
          ORDER BY seq DESC LIMIT $3"
    ))
    .bind(id)
    .bind(before_seq.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// The position of an event in this log, for a page cursor; `None` if the id is not in this log.
pub async fn seq_in_log<'c>(
    db: impl Executor<'c, Database = Any>,
    log: LogRef<'_>,
    event_id: &str,
) -> Result<Option<i64>, StoreError> {
    let (column, id) = log.column();
    let row: Option<(i64,)> = sqlx::query_as(&format!("SELECT seq FROM audit_events WHERE {column} = $1 AND id = $2"))
        .bind(id)
        .bind(event_id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|(seq,)| seq))
}
