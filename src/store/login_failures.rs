//! Login-attempt counters (failed attempts, plus those still being checked), kept in the database
//! so every process throttles alike.

use sqlx::{Any, Executor};

use super::StoreError;

/// Failures recorded for `subject` in the window that is still open at `now`.
pub async fn count<'c>(
    db: impl Executor<'c, Database = Any>,
    subject: &str,
    window_start_after: i64,
) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as("SELECT failures, window_start FROM login_failures WHERE subject = $1 AND window_start > $2")
        .bind(subject)
        .bind(window_start_after)
        .fetch_optional(db)
        .await?)
}

/// Adds one failure, opening a new window if the old one has closed.
pub async fn record<'c>(
    db: impl Executor<'c, Database = Any>,
    subject: &str,
    now: i64,
    window: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO login_failures (subject, failures, window_start) VALUES ($1, 1, $2)
         ON CONFLICT (subject) DO UPDATE SET
           failures = CASE WHEN login_failures.window_start <= $3 THEN 1 ELSE login_failures.failures + 1 END,
           window_start = CASE WHEN login_failures.window_start <= $3 THEN $2 ELSE login_failures.window_start END",
    )
    .bind(subject)
    .bind(now)
    .bind(now - window)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn clear<'c>(db: impl Executor<'c, Database = Any>, subject: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM login_failures WHERE subject = $1").bind(subject).execute(db).await?;
    Ok(())
}

/// Takes one counted attempt back (a login that succeeded).
pub async fn forgive<'c>(db: impl Executor<'c, Database = Any>, subject: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE login_failures SET failures = failures - 1 WHERE subject = $1 AND failures > 0")
        .bind(subject)
        .execute(db)
        .await?;
    Ok(())
}
