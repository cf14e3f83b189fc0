//! Grants (one per consent) and the authorization requests waiting for one.

use sqlx::{Any, Executor, FromRow};

use super::StoreError;

#[derive(Clone, Debug, FromRow)]
pub struct AuthorizationRequestRow {
    pub challenge_hash: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_given: i64,
    pub scopes: String,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

const REQUEST_COLUMNS: &str =
    "challenge_hash, client_id, redirect_uri, redirect_uri_given, scopes, state, code_challenge, created_at, expires_at";

pub async fn insert_request<'c>(
    db: impl Executor<'c, Database = Any>,
    r: &AuthorizationRequestRow,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO authorization_requests ({REQUEST_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    ))
    .bind(&r.challenge_hash)
    .bind(&r.client_id)
    .bind(&r.redirect_uri)
    .bind(r.redirect_uri_given)
    .bind(&r.scopes)
    .bind(&r.state)
    .bind(&r.code_challenge)
    .bind(r.created_at)
    .bind(r.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// A request that is still open: not expired and not yet decided.
pub async fn open_request<'c>(
    db: impl Executor<'c, Database = Any>,
    challenge_hash: &str,
    now: i64,
) -> Result<Option<AuthorizationRequestRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {REQUEST_COLUMNS} FROM authorization_requests
          WHERE challenge_hash = $1 AND decided_at IS NULL AND expires_at > $2"
    ))
    .bind(challenge_hash)
    .bind(now)
    .fetch_optional(db)
    .await?)
}

/// Moves an open request to decided, exactly once; false if it was not open.
pub async fn decide_request<'c>(
    db: impl Executor<'c, Database = Any>,
    challenge_hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE authorization_requests SET decided_at = $1
          WHERE challenge_hash = $2 AND decided_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(challenge_hash)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Clone, Debug, FromRow)]
pub struct GrantRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub workspace_id: String,
    pub scopes: String,
    pub created_at: i64,
}

pub async fn insert<'c>(db: impl Executor<'c, Database = Any>, g: &GrantRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO grants (id, client_id, user_id, workspace_id, scopes, created_at, last_used_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(&g.id)
    .bind(&g.client_id)
    .bind(&g.user_id)
    .bind(&g.workspace_id)
    .bind(&g.scopes)
    .bind(g.created_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Revokes a grant; every code, token and key under it stops working at its next use, in every
/// process, because each lookup requires `grants.revoked_at IS NULL`.
pub async fn revoke<'c>(db: impl Executor<'c, Database = Any>, grant_id: &str, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(grant_id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn touch<'c>(db: impl Executor<'c, Database = Any>, grant_id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE grants SET last_used_at = $1 WHERE id = $2").bind(now).bind(grant_id).execute(db).await?;
    Ok(())
}
