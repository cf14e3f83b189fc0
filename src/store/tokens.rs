//! Authorization codes, access tokens and refresh tokens, hanging off a grant. Each is stored
//! under its token key (issue time, then the SHA-256 of its value; see `credentials`), so new rows
//! append to their table. None has a foreign key to its grant: every lookup joins the grant, so
//! one that was revoked or deleted kills them all at once.

use deadpool_postgres::tokio_postgres;
use sqlx::{Any, Executor, FromRow};

use super::query::{Read, Record, Step};
use super::{Store, StoreError};
use crate::{record, values};

/// What every credential lookup returns: the credential's own fields and its grant's.
#[derive(Clone, Debug, FromRow)]
pub struct IssuedRow {
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub workspace_id: String,
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set when the credential was used (code), rotated (refresh token) or revoked.
    pub spent_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub grant_revoked_at: Option<i64>,
}

#[derive(Clone, Debug, FromRow)]
pub struct CodeRow {
    #[sqlx(flatten)]
    pub issued: IssuedRow,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
}

record!(IssuedRow {
    grant_id,
    client_id,
    user_id,
    workspace_id,
    scopes,
    created_at,
    expires_at,
    spent_at,
    revoked_at,
    grant_revoked_at
});

impl Record for CodeRow {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        // The code's own columns follow the ten of the issued row (see `CODE`).
        debug_assert_eq!(row.as_ref().column_name(10).ok(), Some("redirect_uri"));
        Ok(CodeRow { issued: IssuedRow::from_sqlite(row)?, redirect_uri: row.get(10)?, code_challenge: row.get(11)? })
    }

    fn from_postgres(row: &tokio_postgres::Row, first: usize) -> Result<Self, tokio_postgres::Error> {
        debug_assert_eq!(row.columns().get(first + 10).map(|c| c.name()), Some("redirect_uri"));
        Ok(CodeRow {
            issued: IssuedRow::from_postgres(row, first)?,
            redirect_uri: row.try_get(first + 10)?,
            code_challenge: row.try_get(first + 11)?,
        })
    }
}

pub struct NewCode<'a> {
    pub code_key: &'a str,
    pub grant_id: &'a str,
    pub redirect_uri: &'a str,
    pub code_challenge: Option<&'a str>,
    pub scopes: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert_code<'c>(db: impl Executor<'c, Database = Any>, code: &NewCode<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO authorization_codes (code_hash, grant_id, redirect_uri, code_challenge, scopes, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(code.code_key)
    .bind(code.grant_id)
    .bind(code.redirect_uri)
    .bind(code.code_challenge)
    .bind(code.scopes)
    .bind(code.created_at)
    .bind(code.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

const CODE: &str = "SELECT c.grant_id, g.client_id, g.user_id, g.workspace_id, c.scopes, c.created_at, c.expires_at,
        c.used_at AS spent_at, CAST(NULL AS BIGINT) AS revoked_at, g.revoked_at AS grant_revoked_at,
        c.redirect_uri, c.code_challenge
   FROM authorization_codes c JOIN grants g ON g.id = c.grant_id
  WHERE c.code_hash = $1";

const REFRESH: &str = "SELECT r.grant_id, g.client_id, g.user_id, g.workspace_id, r.scopes, r.created_at, r.expires_at,
        r.rotated_at AS spent_at, r.revoked_at, g.revoked_at AS grant_revoked_at
   FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id
  WHERE r.token_hash = $1";

const ACCESS: &str = "SELECT a.grant_id, g.client_id, g.user_id, g.workspace_id, a.scopes, a.created_at, a.expires_at,
        CAST(NULL AS BIGINT) AS spent_at, a.revoked_at, g.revoked_at AS grant_revoked_at
   FROM access_tokens a JOIN grants g ON g.id = a.grant_id
  WHERE a.token_hash = $1";

pub fn code_lookup(code_key: &str) -> Read<CodeRow> {
    Read::new(CODE, values![code_key])
}

pub fn refresh_lookup(token_key: &str) -> Read<IssuedRow> {
    Read::new(REFRESH, values![token_key])
}

pub fn access_lookup(token_key: &str) -> Read<IssuedRow> {
    Read::new(ACCESS, values![token_key])
}

pub async fn refresh(db: &Store, token_key: &str) -> Result<Option<IssuedRow>, StoreError> {
    db.fetch_optional(REFRESH, &values![token_key]).await
}

pub async fn access(db: &Store, token_key: &str) -> Result<Option<IssuedRow>, StoreError> {
    db.fetch_optional(ACCESS, &values![token_key]).await
}

/// Marks a code used, exactly once: the transaction is undone if it already was.
pub fn claim_code(code_key: &str, now: i64) -> Step {
    Step::claim(
        "UPDATE authorization_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
        values![now, code_key],
    )
}

/// Marks a refresh token rotated, exactly once: the transaction is undone if another request
/// rotated it first or it was revoked meanwhile.
pub fn rotate_refresh(token_key: &str, now: i64) -> Step {
    Step::claim(
        "UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2 AND rotated_at IS NULL AND revoked_at IS NULL",
        values![now, token_key],
    )
}

pub fn insert_refresh(token_key: &str, grant_id: &str, scopes: &str, now: i64, expires_at: i64) -> Step {
    Step::new(
        "INSERT INTO refresh_tokens (token_hash, grant_id, scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        values![token_key, grant_id, scopes, now, expires_at],
    )
}

pub fn insert_access(
    token_key: &str,
    grant_id: &str,
    refresh_token_key: &str,
    scopes: &str,
    now: i64,
    expires_at: i64,
) -> Step {
    Step::new(
        "INSERT INTO access_tokens (token_hash, grant_id, refresh_token_hash, scopes, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        values![token_key, grant_id, refresh_token_key, scopes, now, expires_at],
    )
}

pub async fn revoke_access<'c>(
    db: impl Executor<'c, Database = Any>,
    token_key: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(token_key)
        .execute(db)
        .await?;
    Ok(())
}

/// Removes up to `batch` expired codes, tokens and authorization requests from each table.
pub fn delete_expired(now: i64, batch: i64) -> Vec<Step> {
    [
        ("authorization_codes", "code_hash"),
        ("access_tokens", "token_hash"),
        ("refresh_tokens", "token_hash"),
        ("authorization_requests", "challenge_hash"),
    ]
    .into_iter()
    .map(|(table, key)| {
        Step::new(
            format!("DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE expires_at <= $1 LIMIT $2)"),
            values![now, batch],
        )
    })
    .collect()
}
