//! Workspaces and their members.
//!
//! Outsiders learn nothing about a workspace (it is "not found"); members who may not do
//! something are told so. Owners and admins manage members; a workspace always keeps an owner.

use crate::audit::{self, AuditEvent, Log, RevokedBy};
use crate::credentials::new_id;
use crate::store::workspaces::{MemberRow, MyWorkspaceRow, WorkspaceRow};
use crate::store::{self, Conn, Store, StoreError};

use super::validate::{display_name, Email, Role};
use super::{AccountError, Actor};

pub struct WorkspaceView {
    pub workspace: WorkspaceRow,
    /// The viewer's role; `None` for the operator.
    pub role: Option<Role>,
    pub members: Vec<MemberRow>,
}

pub async fn create(
    db: &Store,
    owner_email_or_id: Owner<'_>,
    name: &str,
    now: i64,
) -> Result<WorkspaceRow, AccountError> {
    let name = display_name("name", name)?;
    let owner_id = match owner_email_or_id {
        Owner::UserId(id) => id.to_owned(),
        Owner::Email(email) => {
            let email = Email::parse(email)?;
            store::users::by_email(db.reader(), email.as_str()).await?.ok_or(AccountError::NotFound("user"))?.id
        }
    };
    let workspace = WorkspaceRow { id: new_id("ws"), name, personal: 0, created_at: now };
    let mut tx = db.begin().await?;
    store::workspaces::insert(&mut *tx, &workspace).await?;
    store::workspaces::add_member(&mut *tx, &workspace.id, &owner_id, Role::Owner.as_str(), now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(workspace)
}

pub enum Owner<'a> {
    UserId(&'a str),
    Email(&'a str),
}

pub async fn list_mine(db: &Store, user_id: &str) -> Result<Vec<MyWorkspaceRow>, AccountError> {
    Ok(store::workspaces::for_user(db.reader(), user_id).await?)
}

/// The role `actor` holds in the workspace; outsiders get `NotFound`.
pub async fn role_in(db: &Store, actor: &Actor, workspace_id: &str) -> Result<Option<Role>, AccountError> {
    let workspace = store::workspaces::by_id(db.reader(), workspace_id).await?;
    if workspace.is_none() {
        return Err(AccountError::NotFound("workspace"));
    }
    match actor {
        Actor::Operator => Ok(None),
        Actor::User(user_id) => match store::workspaces::role_of(db.reader(), workspace_id, user_id).await? {
            Some(role) => Ok(Some(Role::parse(&role)?)),
            None => Err(AccountError::NotFound("workspace")),
        },
    }
}

/// Fails unless `actor` may manage the workspace (owner, admin, or the operator).
pub async fn require_manager(db: &Store, actor: &Actor, workspace_id: &str) -> Result<Option<Role>, AccountError> {
    let role = role_in(db, actor, workspace_id).await?;
    match role {
        None => Ok(None),
        Some(r) if r.can_manage() => Ok(role),
        Some(_) => Err(AccountError::Forbidden("only owners and admins can do this")),
    }
}

pub async fn view(db: &Store, actor: &Actor, workspace_id: &str) -> Result<WorkspaceView, AccountError> {
    let role = role_in(db, actor, workspace_id).await?;
    let workspace =
        store::workspaces::by_id(db.reader(), workspace_id).await?.ok_or(AccountError::NotFound("workspace"))?;
    let members = store::workspaces::members(db.reader(), workspace_id).await?;
    Ok(WorkspaceView { workspace, role, members })
}

pub async fn rename(db: &Store, actor: &Actor, workspace_id: &str, name: &str) -> Result<(), AccountError> {
    require_manager(db, actor, workspace_id).await?;
    let name = display_name("name", name)?;
    store::workspaces::rename(db.writer(), workspace_id, &name).await?;
    Ok(())
}

/// Adds a member by email. Admins may add admins and members; only owners add owners.
pub async fn add_member(
    db: &Store,
    actor: &Actor,
    workspace_id: &str,
    email: &str,
    role: Role,
    now: i64,
) -> Result<MemberRow, AccountError> {
    let actor_role = require_manager(db, actor, workspace_id).await?;
    if role == Role::Owner && actor_role == Some(Role::Admin) {
        return Err(AccountError::Forbidden("only owners can add owners"));
    }
    let email = Email::parse(email)?;
    let user = store::users::by_email(db.reader(), email.as_str()).await?.ok_or_else(|| {
        AccountError::invalid("email", "no Tessera account has this email; ask them to sign up first")
    })?;
    let mut tx = db.begin().await?;
    match store::workspaces::add_member(&mut *tx, workspace_id, &user.id, role.as_str(), now).await {
        Ok(()) => {}
        Err(e) if e.is_unique_violation() => {
            return Err(AccountError::Conflict(format!("{} is already a member", email.as_str())))
        }
        Err(e) => return Err(e.into()),
    }
    let who = audit::actor_of(&mut tx, actor).await?;
    let event = AuditEvent::MemberAdded {
        email: user.email.clone(),
        role: role.as_str().to_owned(),
        workspace_name: workspace_name(&mut tx, workspace_id).await?,
    };
    audit::record(&mut tx, &who, &[Log::Workspace(workspace_id), Log::User(&user.id)], &event, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(MemberRow {
        user_id: user.id,
        email: user.email,
        name: user.name,
        role: role.as_str().to_owned(),
        created_at: now,
    })
}

/// Removes a member (or, when `user_id` is the actor's own, leaves). The last owner stays.
pub async fn remove_member(
    db: &Store,
    actor: &Actor,
    workspace_id: &str,
    user_id: &str,
    now: i64,
) -> Result<(), AccountError> {
    let leaving = matches!(actor, Actor::User(id) if id == user_id);
    let actor_role = if leaving {
        role_in(db, actor, workspace_id).await?
    } else {
        require_manager(db, actor, workspace_id).await?
    };

    let mut tx = db.begin().await?;
    if !store::workspaces::lock(&mut *tx, workspace_id).await? {
        return Err(AccountError::NotFound("workspace"));
    }
    let target_role =
        store::workspaces::role_of(&mut *tx, workspace_id, user_id).await?.ok_or(AccountError::NotFound("member"))?;
    let target_role = Role::parse(&target_role)?;
    if target_role == Role::Owner && actor_role == Some(Role::Admin) && !leaving {
        return Err(AccountError::Forbidden("only owners can remove owners"));
    }
    if target_role == Role::Owner && store::workspaces::owner_count(&mut *tx, workspace_id).await? <= 1 {
        return Err(AccountError::Conflict(
            "a workspace needs at least one owner: make someone else an owner first".to_owned(),
        ));
    }
    store::workspaces::remove_member(&mut *tx, workspace_id, user_id).await?;
    // Whoever leaves a workspace takes their authorizations on it with them.
    let filter = store::grants::RevokeFilter::Member { workspace_id, user_id };
    let revoked = store::grants::revoke_where(&mut *tx, filter, now).await?;
    // And the API keys they made for it in the console.
    store::api_keys::revoke_console_keys_of(&mut *tx, workspace_id, user_id, now).await?;
    let who = audit::actor_of(&mut tx, actor).await?;
    let event = AuditEvent::MemberRemoved {
        email: store::users::by_id(&mut *tx, user_id).await?.map(|u| u.email).unwrap_or_else(|| user_id.to_owned()),
        workspace_name: workspace_name(&mut tx, workspace_id).await?,
        left: leaving,
        authorizations_revoked: revoked.len(),
    };
    audit::record(&mut tx, &who, &[Log::Workspace(workspace_id), Log::User(user_id)], &event, now).await?;
    audit::record_revocations(&mut tx, &who, &revoked, RevokedBy::MemberRemoval, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

async fn workspace_name(conn: &mut Conn, workspace_id: &str) -> Result<String, StoreError> {
    Ok(store::workspaces::by_id(&mut *conn, workspace_id).await?.map(|w| w.name).unwrap_or_default())
}

/// What deleting a workspace would take with it, for the confirmation page.
pub struct DeletionPreview {
    pub workspace: WorkspaceRow,
    pub members: usize,
    pub apps: usize,
    pub authorizations: i64,
}

/// Only an owner may delete a workspace, and never a personal one. Outsiders get `NotFound`.
fn may_delete(workspace: &WorkspaceRow, role: Option<&str>) -> Result<(), AccountError> {
    match role.map(Role::parse).transpose()? {
        None => Err(AccountError::NotFound("workspace")),
        Some(Role::Owner) if workspace.personal == 1 => {
            Err(AccountError::Forbidden("a personal workspace cannot be deleted"))
        }
        Some(Role::Owner) => Ok(()),
        Some(_) => Err(AccountError::Forbidden("only owners can delete a workspace")),
    }
}

pub async fn deletion_preview(db: &Store, user_id: &str, workspace_id: &str) -> Result<DeletionPreview, AccountError> {
    let workspace =
        store::workspaces::by_id(db.reader(), workspace_id).await?.ok_or(AccountError::NotFound("workspace"))?;
    let role = store::workspaces::role_of(db.reader(), workspace_id, user_id).await?;
    may_delete(&workspace, role.as_deref())?;
    Ok(DeletionPreview {
        members: store::workspaces::members(db.reader(), workspace_id).await?.len(),
        apps: store::apps::owned_by_workspace(db.reader(), workspace_id).await?.len(),
        authorizations: store::grants::live_count_for_workspace(db.reader(), workspace_id).await?,
        workspace,
    })
}

/// Deletes a workspace (owners only, never a personal one). Its memberships, apps, grants and,
/// through them, every code, token and API key issued on it go at once (ON DELETE CASCADE); so
/// does its own audit log. The deletion is recorded in the log of every user who was a member.
pub async fn delete(db: &Store, user_id: &str, workspace_id: &str, now: i64) -> Result<WorkspaceRow, AccountError> {
    let mut tx = db.begin().await?;
    if !store::workspaces::lock(&mut *tx, workspace_id).await? {
        return Err(AccountError::NotFound("workspace"));
    }
    let workspace =
        store::workspaces::by_id(&mut *tx, workspace_id).await?.ok_or(AccountError::NotFound("workspace"))?;
    let role = store::workspaces::role_of(&mut *tx, workspace_id, user_id).await?;
    may_delete(&workspace, role.as_deref())?;
    // Deleting the rows would orphan running servers: their agents only act on rows they can see.
    let running = store::databases::provisioned_count(&mut *tx, workspace_id).await?;
    if running > 0 {
        return Err(AccountError::Conflict(format!(
            "this workspace still has {running} provisioned database(s): delete them under Resources first"
        )));
    }
    let members = store::workspaces::members(&mut *tx, workspace_id).await?;
    let authorizations_ended = store::grants::live_count_for_workspace(&mut *tx, workspace_id).await?;
    store::workspaces::delete(&mut *tx, workspace_id).await?;
    let who = audit::user_actor(&mut tx, user_id).await?;
    let event = AuditEvent::WorkspaceDeleted {
        workspace_id: workspace.id.clone(),
        name: workspace.name.clone(),
        members: members.len(),
        authorizations_ended,
    };
    // The deleting owner first, then everyone else who just lost the workspace.
    let mut logs = vec![Log::User(user_id)];
    logs.extend(members.iter().filter(|m| m.user_id != user_id).map(|m| Log::User(&m.user_id)));
    audit::record(&mut tx, &who, &logs, &event, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(workspace)
}
