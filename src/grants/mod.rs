//! Grants, the revocation root: one row per consent, and every code, token and API key hangs
//! off one. Listing what a user or a workspace has authorized, and revoking it.

use std::collections::BTreeMap;

use crate::accounts::workspaces::require_manager;
use crate::accounts::{AccountError, Actor};
use crate::apps::ScopeSet;
use crate::audit::{self, AuditActor, AuditEvent, GrantInfo, RevokedBy};
use crate::store::grants::{AuthorizedRow, RevokeFilter};
use crate::store::{self, Store, StoreError};

/// One app's authorization on one workspace, gathered from one or more consents.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Authorization {
    pub client_id: String,
    pub app_name: String,
    pub logo_url: Option<String>,
    pub homepage_url: Option<String>,
    pub owner: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub authorized_by: Vec<String>,
    pub scopes: Vec<&'static str>,
    pub scope_descriptions: Vec<&'static str>,
    pub first_authorized_at: i64,
    pub last_used_at: Option<i64>,
}

fn gather(rows: Vec<AuthorizedRow>) -> Vec<Authorization> {
    let mut grouped: BTreeMap<(String, String, String), (Authorization, ScopeSet)> = BTreeMap::new();
    for row in rows {
        let key = (row.app_name.clone(), row.client_id.clone(), row.workspace_id.clone());
        let scopes = ScopeSet::from_stored(&row.scopes);
        let entry = grouped.entry(key).or_insert_with(|| {
            (
                Authorization {
                    client_id: row.client_id.clone(),
                    app_name: row.app_name.clone(),
                    logo_url: row.logo_url.clone(),
                    homepage_url: row.homepage_url.clone(),
                    owner: row.owner_user_name.clone().or(row.owner_workspace_name.clone()).unwrap_or_default(),
                    workspace_id: row.workspace_id.clone(),
                    workspace_name: row.workspace_name.clone(),
                    authorized_by: Vec::new(),
                    scopes: Vec::new(),
                    scope_descriptions: Vec::new(),
                    first_authorized_at: row.created_at,
                    last_used_at: None,
                },
                ScopeSet::default(),
            )
        });
        let (auth, union) = entry;
        if !auth.authorized_by.contains(&row.user_email) {
            auth.authorized_by.push(row.user_email.clone());
        }
        auth.first_authorized_at = auth.first_authorized_at.min(row.created_at);
        auth.last_used_at = auth.last_used_at.max(row.last_used_at);
        let names: Vec<&str> = union.names().into_iter().chain(scopes.names()).collect();
        *union = ScopeSet::from_names(names).unwrap_or_default();
    }
    grouped
        .into_values()
        .map(|(mut auth, union)| {
            auth.scopes = union.names();
            auth.scope_descriptions = union.iter().map(|s| s.description()).collect();
            auth
        })
        .collect()
}

/// Settings -> Account -> Integrations: every app this user authorized, per workspace.
pub async fn authorized_by_user(db: &Store, user_id: &str) -> Result<Vec<Authorization>, StoreError> {
    Ok(gather(store::grants::authorized_by_user(db.reader(), user_id).await?))
}

/// Workspace -> Settings -> Integrations: every app any member authorized on it (managers only).
pub async fn authorized_on_workspace(
    db: &Store,
    actor: &Actor,
    workspace_id: &str,
) -> Result<Vec<Authorization>, AccountError> {
    require_manager(db, actor, workspace_id).await?;
    Ok(gather(store::grants::authorized_on_workspace(db.reader(), workspace_id).await?))
}

/// Revokes every grant this user gave this app; everything issued under them dies at once.
/// The user does it in the console, or the operator with `tessera admin revoke-consent`.
pub async fn revoke_user_app(
    db: &Store,
    actor: &Actor,
    user_id: &str,
    client_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let by = match actor {
        Actor::User(_) => RevokedBy::User,
        Actor::Operator => RevokedBy::Operator,
    };
    revoke_and_record(db, actor, RevokeFilter::UserApp { user_id, client_id }, by, now).await
}

/// Revokes every grant the user gave any app.
pub async fn revoke_all_for_user(db: &Store, user_id: &str, now: i64) -> Result<u64, StoreError> {
    let actor = Actor::User(user_id.to_owned());
    revoke_and_record(db, &actor, RevokeFilter::User { user_id }, RevokedBy::User, now).await
}

/// Revokes every grant any member gave this app on this workspace (managers only).
pub async fn revoke_workspace_app(
    db: &Store,
    actor: &Actor,
    workspace_id: &str,
    client_id: &str,
    now: i64,
) -> Result<u64, AccountError> {
    require_manager(db, actor, workspace_id).await?;
    let filter = RevokeFilter::WorkspaceApp { workspace_id, client_id };
    Ok(revoke_and_record(db, actor, filter, RevokedBy::WorkspaceManager, now).await?)
}

/// Revokes the grants and records who did it, in one transaction; returns how many were live.
async fn revoke_and_record(
    db: &Store,
    actor: &Actor,
    filter: RevokeFilter<'_>,
    by: RevokedBy,
    now: i64,
) -> Result<u64, StoreError> {
    let mut tx = db.begin().await?;
    let revoked = store::grants::revoke_where(&mut *tx, filter, now).await?;
    let who = audit::actor_of(&mut tx, actor).await?;
    audit::record_revocations(&mut tx, &who, &revoked, by, now).await?;
    tx.commit().await?;
    Ok(revoked.len() as u64)
}

/// Why Tessera itself revoked a grant: one of its single-use credentials came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replay {
    /// A rotated refresh token was presented again (RFC 9700 §4.14.2).
    RefreshToken,
    /// A used authorization code was presented again (RFC 6749 §4.1.2).
    AuthorizationCode,
}

/// Revokes a grant whose refresh token or code was replayed, and logs it as the system's doing.
/// False if the grant was no longer live (nothing is logged then).
pub async fn revoke_replayed(db: &Store, grant_id: &str, replay: Replay, now: i64) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    let Some(grant) = store::grants::revoke(&mut *tx, grant_id, now).await? else {
        return Ok(false);
    };
    let info = GrantInfo::from(&grant);
    let event = match replay {
        Replay::RefreshToken => AuditEvent::RefreshTokenReused(info),
        Replay::AuthorizationCode => AuditEvent::CodeReplayed(info),
    };
    audit::record(&mut tx, &AuditActor::System, &audit::grant_logs(&grant), &event, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// Revokes a grant because its application revoked its refresh token (RFC 7009).
pub async fn revoke_by_application(db: &Store, grant_id: &str, client_id: &str, now: i64) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    let Some(grant) = store::grants::revoke(&mut *tx, grant_id, now).await? else {
        return Ok(false);
    };
    let actor = AuditActor::Application(client_id.to_owned());
    audit::record_revocations(&mut tx, &actor, std::slice::from_ref(&grant), RevokedBy::Application, now).await?;
    tx.commit().await?;
    Ok(true)
}
