//! The consent step: a signed-in user reviews the app and its scopes, picks a workspace they own
//! or administer, and allows or denies. The pending request moves to "decided" exactly once.

use crate::accounts::Role;
use crate::apps::{self, App, AppOwner, ScopeSet};
use crate::audit::{self, AuditActor, AuditEvent, GrantInfo, Log};
use crate::config::OAuthSettings;
use crate::credentials::{new_id, sha256_hex, IssuedSecret, SecretKind};
use crate::store::grants::{AuthorizationRequestRow, GrantRow};
use crate::store::{self, Store, StoreError};

use super::authorize::redirect_with;

#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error(
        "This authorization request has expired or was already answered. Go back to the application and start again."
    )]
    NotOpen,
    #[error("Choose a workspace where you are an owner or admin.")]
    WorkspaceNotAllowed,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for ConsentError {
    fn from(e: StoreError) -> Self {
        ConsentError::Internal(e.into())
    }
}

pub struct WorkspaceChoice {
    pub id: String,
    pub name: String,
    pub role: String,
    pub selectable: bool,
}

pub struct ConsentView {
    pub request: AuthorizationRequestRow,
    pub app: App,
    pub owner_label: String,
    pub scopes: ScopeSet,
    pub workspaces: Vec<WorkspaceChoice>,
}

pub async fn load(db: &Store, challenge: &str, user_id: &str, now: i64) -> Result<ConsentView, ConsentError> {
    let request = store::grants::open_request(db.reader(), &sha256_hex(challenge.as_bytes()), now)
        .await?
        .ok_or(ConsentError::NotOpen)?;
    let app = apps::find(db, &request.client_id).await?.ok_or(ConsentError::NotOpen)?;
    let owner_label = match &app.owner {
        AppOwner::User(id) => store::users::by_id(db.reader(), id).await?.map(|u| u.name).unwrap_or_default(),
        AppOwner::Workspace(id) => store::workspaces::by_id(db.reader(), id).await?.map(|w| w.name).unwrap_or_default(),
    };
    let workspaces = store::workspaces::for_user(db.reader(), user_id)
        .await?
        .into_iter()
        .map(|w| WorkspaceChoice {
            selectable: Role::parse(&w.role).is_ok_and(Role::can_manage),
            id: w.id,
            name: w.name,
            role: w.role,
        })
        .collect();
    let scopes = ScopeSet::from_stored(&request.scopes);
    Ok(ConsentView { request, app, owner_label, scopes, workspaces })
}

pub enum Decision<'a> {
    Allow { workspace_id: &'a str },
    Deny,
}

/// Records the user's decision and returns where to send the browser.
pub async fn decide(
    db: &Store,
    settings: &OAuthSettings,
    issuer: &str,
    challenge: &str,
    user_id: &str,
    decision: Decision<'_>,
    now: i64,
) -> Result<String, ConsentError> {
    let challenge_hash = sha256_hex(challenge.as_bytes());
    let request = store::grants::open_request(db.reader(), &challenge_hash, now).await?.ok_or(ConsentError::NotOpen)?;
    let mut params: Vec<(&str, String)> = Vec::new();
    let mut tx = db.begin().await?;
    match decision {
        Decision::Deny => {
            if !store::grants::decide_request(&mut *tx, &challenge_hash, now).await? {
                return Err(ConsentError::NotOpen);
            }
            params.push(("error", "access_denied".into()));
            params.push(("error_description", "the user denied access".into()));
        }
        Decision::Allow { workspace_id } => {
            // Under the workspace's lock, so a concurrent member removal cannot slip between the
            // role check and the new grant.
            store::workspaces::lock(&mut *tx, workspace_id).await?;
            let role = store::workspaces::role_of(&mut *tx, workspace_id, user_id).await?;
            if !role.as_deref().and_then(|r| Role::parse(r).ok()).is_some_and(Role::can_manage) {
                return Err(ConsentError::WorkspaceNotAllowed);
            }
            if !store::grants::decide_request(&mut *tx, &challenge_hash, now).await? {
                return Err(ConsentError::NotOpen);
            }
            let grant = GrantRow {
                id: new_id("grant"),
                client_id: request.client_id.clone(),
                user_id: user_id.to_owned(),
                workspace_id: workspace_id.to_owned(),
                scopes: request.scopes.clone(),
                created_at: now,
            };
            store::grants::insert(&mut *tx, &grant).await?;
            let granted = GrantInfo {
                client_id: grant.client_id.clone(),
                app_name: store::apps::by_client_id(&mut *tx, &grant.client_id)
                    .await?
                    .map(|a| a.name)
                    .unwrap_or_default(),
                user_email: store::users::by_id(&mut *tx, user_id).await?.map(|u| u.email).unwrap_or_default(),
                workspace_name: store::workspaces::by_id(&mut *tx, workspace_id)
                    .await?
                    .map(|w| w.name)
                    .unwrap_or_default(),
                scopes: grant.scopes.clone(),
            };
            let actor = AuditActor::User(granted.user_email.clone());
            let logs = [Log::User(user_id), Log::Workspace(workspace_id)];
            audit::record(&mut tx, &actor, &logs, &AuditEvent::AuthorizationGranted(granted), now).await?;
            let code = IssuedSecret::generate(SecretKind::AuthorizationCode);
            let bound_redirect = if request.redirect_uri_given == 1 { request.redirect_uri.as_str() } else { "" };
            let code_key = code.token_key();
            let new_code = store::tokens::NewCode {
                code_key: &code_key,
                grant_id: &grant.id,
                redirect_uri: bound_redirect,
                code_challenge: request.code_challenge.as_deref(),
                scopes: &request.scopes,
                created_at: now,
                expires_at: now + settings.code_ttl,
            };
            store::tokens::insert_code(&mut *tx, &new_code).await?;
            params.push(("code", code.into_exposed()));
        }
    }
    tx.commit().await.map_err(StoreError::from)?;
    if let Some(state) = &request.state {
        params.push(("state", state.clone()));
    }
    params.push(("iss", issuer.to_owned()));
    let borrowed: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(redirect_with(&request.redirect_uri, &borrowed))
}
