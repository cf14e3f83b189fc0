//! Responses remembered for `Idempotency-Key` retries.

use sqlx::{Any, Executor, FromRow};

use super::query::Step;
use super::StoreError;

#[derive(Clone, Debug, FromRow)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status: i64,
    pub body: String,
}

pub async fn get<'c>(
    db: impl Executor<'c, Database = Any>,
    principal: &str,
    key: &str,
) -> Result<Option<StoredResponse>, StoreError> {
    Ok(sqlx::query_as("SELECT request_hash, status, body FROM idempotency_keys WHERE principal = $1 AND key = $2")
        .bind(principal)
        .bind(key)
        .fetch_optional(db)
        .await?)
}

/// Remembers a response under its key, in the transaction that made it: a claim that fails (and
/// undoes that transaction) when a concurrent request with the same key committed first.
pub fn remember(principal: &str, key: &str, response: &StoredResponse, now: i64) -> Step {
    Step::claim(
        "INSERT INTO idempotency_keys (principal, key, request_hash, status, body, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (principal, key) DO NOTHING",
        crate::values![principal, key, response.request_hash.as_str(), response.status, response.body.as_str(), now],
    )
}

/// Forgets up to `batch` remembered responses made before `cutoff`.
pub fn delete_older_than(cutoff: i64, batch: i64) -> Step {
    Step::new(
        "DELETE FROM idempotency_keys WHERE (principal, key) IN
           (SELECT principal, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
        crate::values![cutoff, batch],
    )
}
