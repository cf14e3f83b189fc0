//! Grants (one per consent) and the authorization requests waiting for one.

use sqlx::{Any, Executor, FromRow};

use super::query::Step;
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

/// A grant as it was revoked, with the names the audit log records beside it.
#[derive(Clone, Debug, FromRow)]
pub struct RevokedGrant {
    pub id: String,
    pub client_id: String,
    pub app_name: String,
    pub user_id: String,
    pub user_email: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub scopes: String,
}

/// What a revoking UPDATE returns: the grant and, by correlated subqueries (both engines allow
/// them in RETURNING), the names of its app, user and workspace.
const RETURNING_REVOKED: &str = "RETURNING id, client_id, user_id, workspace_id, scopes,
    (SELECT a.name FROM oauth_apps a WHERE a.client_id = grants.client_id) AS app_name,
    (SELECT u.email FROM users u WHERE u.id = grants.user_id) AS user_email,
    (SELECT w.name FROM workspaces w WHERE w.id = grants.workspace_id) AS workspace_name";

/// Revokes a grant; every code, token and key under it stops working at its next use, in every
/// process, because each lookup requires `grants.revoked_at IS NULL`. `None` if it was not live.
pub async fn revoke<'c>(
    db: impl Executor<'c, Database = Any>,
    grant_id: &str,
    now: i64,
) -> Result<Option<RevokedGrant>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL {RETURNING_REVOKED}"
    ))
    .bind(now)
    .bind(grant_id)
    .fetch_optional(db)
    .await?)
}

/// How stale `last_used_at` may get before a token issue writes it again. People read it as
/// "last used" to the minute; writing it on every refresh would dirty a page of `grants` that
/// nothing else in the token issue writes.
pub const LAST_USED_RESOLUTION_SECONDS: i64 = 60;

/// Records that the grant issued tokens now, unless it already did within
/// [`LAST_USED_RESOLUTION_SECONDS`] (a grant records its creation as its first use).
pub fn touch(grant_id: &str, now: i64) -> Step {
    Step::new(
        "UPDATE grants SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
        crate::values![now, grant_id, now - LAST_USED_RESOLUTION_SECONDS],
    )
}

/// A live grant with what a person needs to recognise it.
#[derive(Clone, Debug, FromRow)]
pub struct AuthorizedRow {
    pub grant_id: String,
    pub client_id: String,
    pub app_name: String,
    pub logo_url: Option<String>,
    pub homepage_url: Option<String>,
    pub owner_user_name: Option<String>,
    pub owner_workspace_name: Option<String>,
    pub user_id: String,
    pub user_email: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub scopes: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

const AUTHORIZED: &str = "SELECT g.id AS grant_id, g.client_id, a.name AS app_name, a.logo_url, a.homepage_url,
            ou.name AS owner_user_name, ow.name AS owner_workspace_name,
            g.user_id, u.email AS user_email, g.workspace_id, w.name AS workspace_name,
            g.scopes, g.created_at, g.last_used_at
       FROM grants g
       JOIN oauth_apps a ON a.client_id = g.client_id
       JOIN users u ON u.id = g.user_id
       JOIN workspaces w ON w.id = g.workspace_id
       LEFT JOIN users ou ON ou.id = a.owner_user_id
       LEFT JOIN workspaces ow ON ow.id = a.owner_workspace_id
      WHERE g.revoked_at IS NULL";

pub async fn authorized_by_user<'c>(
    db: impl Executor<'c, Database = Any>,
    user_id: &str,
) -> Result<Vec<AuthorizedRow>, StoreError> {
    Ok(sqlx::query_as(&format!("{AUTHORIZED} AND g.user_id = $1 ORDER BY a.name, g.client_id, w.name, g.created_at"))
        .bind(user_id)
        .fetch_all(db)
        .await?)
}

pub async fn authorized_on_workspace<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
) -> Result<Vec<AuthorizedRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "{AUTHORIZED} AND g.workspace_id = $1 ORDER BY a.name, g.client_id, u.email, g.created_at"
    ))
    .bind(workspace_id)
    .fetch_all(db)
    .await?)
}

/// Revokes every live grant matching the filter and returns them.
pub async fn revoke_where<'c>(
    db: impl Executor<'c, Database = Any>,
    filter: RevokeFilter<'_>,
    now: i64,
) -> Result<Vec<RevokedGrant>, StoreError> {
    let (condition, a, b) = match filter {
        RevokeFilter::UserApp { user_id, client_id } => ("user_id = $2 AND client_id = $3", user_id, client_id),
        RevokeFilter::User { user_id } => ("user_id = $2 AND $3 = $3", user_id, ""),
        RevokeFilter::WorkspaceApp { workspace_id, client_id } => {
            ("workspace_id = $2 AND client_id = $3", workspace_id, client_id)
        }
        RevokeFilter::Member { workspace_id, user_id } => ("workspace_id = $2 AND user_id = $3", workspace_id, user_id),
    };
    Ok(sqlx::query_as(&format!(
        "UPDATE grants SET revoked_at = $1 WHERE revoked_at IS NULL AND {condition} {RETURNING_REVOKED}"
    ))
    .bind(now)
    .bind(a)
    .bind(b)
    .fetch_all(db)
    .await?)
}

/// How many live grants were given to this app.
pub async fn live_count_for_app<'c>(db: impl Executor<'c, Database = Any>, client_id: &str) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM grants WHERE client_id = $1 AND revoked_at IS NULL")
        .bind(client_id)
        .fetch_one(db)
        .await?;
    Ok(n)
}

/// How many live grants end when this workspace is deleted: those on it, and those given to the
/// apps it owns (on any workspace).
pub async fn live_count_for_workspace<'c>(
    db: impl Executor<'c, Database = Any>,
    workspace_id: &str,
) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM grants g
          WHERE g.revoked_at IS NULL
            AND (g.workspace_id = $1
                 OR g.client_id IN (SELECT client_id FROM oauth_apps WHERE owner_workspace_id = $1))",
    )
    .bind(workspace_id)
    .fetch_one(db)
    .await?;
    Ok(n)
}

#[derive(Clone, Copy, Debug)]
pub enum RevokeFilter<'a> {
    /// Every grant this user gave this app.
    UserApp { user_id: &'a str, client_id: &'a str },
    /// Every grant this user gave any app.
    User { user_id: &'a str },
    /// Every grant any member gave this app on this workspace.
    WorkspaceApp { workspace_id: &'a str, client_id: &'a str },
    /// Every grant this member gave on this workspace (they are leaving it).
    Member { workspace_id: &'a str, user_id: &'a str },
}
