//! Browser sessions, keyed by the hash of the cookie value.

use sqlx::{Any, Executor};

use super::query::Step;
use super::users::UserRow;
use super::StoreError;

pub async fn insert<'c>(
    db: impl Executor<'c, Database = Any>,
    token_hash: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(db)
        .await?;
    Ok(())
}

/// The user behind a live session.
pub async fn user<'c>(
    db: impl Executor<'c, Database = Any>,
    token_hash: &str,
    now: i64,
) -> Result<Option<UserRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT u.id, u.email, u.name, u.password_hash, u.created_at
           FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.token_hash = $1 AND s.expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db)
    .await?)
}

pub async fn delete<'c>(db: impl Executor<'c, Database = Any>, token_hash: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(db).await?;
    Ok(())
}

/// Removes up to `batch` expired sessions; returns how many went.
/// Removes up to `batch` expired sessions.
pub fn delete_expired(now: i64, batch: i64) -> Step {
    Step::new(
        "DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions WHERE expires_at <= $1 LIMIT $2)",
        crate::values![now, batch],
    )
}
