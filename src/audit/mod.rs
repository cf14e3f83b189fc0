//! The audit log: who did what to OAuth apps, authorizations, API keys, memberships and
//! workspaces, and when.
//!
//! Each user and each workspace has a log. An event is written with [`record`] inside the
//! transaction of the change it describes, so the log and the data never disagree: if the change
//! rolls back, so does its entry. An event that concerns a user and a workspace (a user authorized
//! an app on a workspace) is written to both logs. Events carry names, ids and scopes, never a
//! secret; [`record`] also redacts anything shaped like a `tes_` secret as a last line of defence.

use std::collections::BTreeSet;

use crate::accounts::workspaces::require_manager;
use crate::accounts::{AccountError, Actor};
use crate::apps::ScopeSet;
use crate::credentials::new_id;
use crate::store::audit::NewEvent;
use crate::store::grants::RevokedGrant;
use crate::store::{self, Conn, Store, StoreError};

pub use crate::store::audit::LogRef as Log;

/// Entries per page of a log in the console.
pub const PAGE_SIZE: usize = 50;

/// Who did it, as the log names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditActor {
    /// A signed-in user, by their email at the time.
    User(String),
    /// The operator, through `tessera admin`.
    Operator,
    /// Tessera itself, e.g. when it detects a replayed code or a reused refresh token.
    System,
    /// An OAuth application acting on its own credentials (RFC 7009 revocation), by client id.
    Application(String),
}

impl AuditActor {
    pub fn label(&self) -> String {
        match self {
            AuditActor::User(email) => email.clone(),
            AuditActor::Operator => "operator".into(),
            AuditActor::System => "system".into(),
            AuditActor::Application(client_id) => format!("application {client_id}"),
        }
    }
}

/// How the log names `actor`, looked up inside the caller's transaction.
pub async fn actor_of(conn: &mut Conn, actor: &Actor) -> Result<AuditActor, StoreError> {
    match actor {
        Actor::Operator => Ok(AuditActor::Operator),
        Actor::User(user_id) => user_actor(conn, user_id).await,
    }
}

/// The user with this id, by email.
pub async fn user_actor(conn: &mut Conn, user_id: &str) -> Result<AuditActor, StoreError> {
    let email = store::users::by_id(&mut *conn, user_id).await?.map(|u| u.email);
    Ok(AuditActor::User(email.unwrap_or_else(|| user_id.to_owned())))
}

/// One authorization (a user's consent for an app on a workspace), as events describe it.
#[derive(Clone, Debug)]
pub struct GrantInfo {
    pub client_id: String,
    pub app_name: String,
    pub user_email: String,
    pub workspace_name: String,
    /// Space-separated scope names.
    pub scopes: String,
}

impl From<&RevokedGrant> for GrantInfo {
    fn from(g: &RevokedGrant) -> Self {
        GrantInfo {
            client_id: g.client_id.clone(),
            app_name: g.app_name.clone(),
            user_email: g.user_email.clone(),
            workspace_name: g.workspace_name.clone(),
            scopes: g.scopes.clone(),
        }
    }
}

/// Why an authorization was revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokedBy {
    /// The user who gave it, in Settings -> Account -> Integrations.
    User,
    /// An owner or admin of the workspace, in Workspace -> Settings -> Integrations.
    WorkspaceManager,
    /// The operator, with `tessera admin revoke-consent`.
    Operator,
    /// The user who gave it left, or was removed from, the workspace.
    MemberRemoval,
    /// The application itself, revoking its refresh token at `/oauth2/revoke`.
    Application,
}

impl RevokedBy {
    fn words(self) -> &'static str {
        match self {
            RevokedBy::User => "by the user who gave it",
            RevokedBy::WorkspaceManager => "by a manager of the workspace",
            RevokedBy::Operator => "by the operator",
            RevokedBy::MemberRemoval => "because the user is no longer a member of the workspace",
            RevokedBy::Application => "by the application, which revoked its refresh token",
        }
    }
}

/// An API key as its events describe it: its id and name, never the key itself.
#[derive(Clone, Debug)]
pub struct ApiKeyInfo {
    pub key_id: String,
    pub key_name: String,
    /// The app whose access token minted it, if it was minted through the API.
    pub client_id: Option<String>,
}

#[derive(Clone, Debug)]
pub enum AuditEvent {
    AppCreated {
        client_id: String,
        name: String,
        client_type: String,
        scopes: String,
    },
    AppEdited {
        client_id: String,
        name: String,
        changed: Vec<&'static str>,
    },
    AppSecretRotated {
        client_id: String,
        name: String,
    },
    AppDeleted {
        client_id: String,
        name: String,
        authorizations_ended: i64,
    },
    AuthorizationGranted(GrantInfo),
    AuthorizationRevoked {
        grant: GrantInfo,
        by: RevokedBy,
    },
    /// A rotated refresh token was presented again; the grant was revoked.
    RefreshTokenReused(GrantInfo),
    /// A used authorization code was presented again; the grant was revoked.
    CodeReplayed(GrantInfo),
    MemberAdded {
        email: String,
        role: String,
        workspace_name: String,
    },
    MemberRemoved {
        email: String,
        workspace_name: String,
        left: bool,
        authorizations_revoked: usize,
    },
    WorkspaceDeleted {
        workspace_id: String,
        name: String,
        members: usize,
        authorizations_ended: i64,
    },
    ApiKeyMinted {
        key: ApiKeyInfo,
        workspace_name: String,
    },
    ApiKeyRevoked {
        key: ApiKeyInfo,
        workspace_name: String,
    },
}

/// Every action name with its title, for the console.
const ACTIONS: &[(&str, &str)] = &[
    ("app.created", "App created"),
    ("app.edited", "App edited"),
    ("app.secret_rotated", "Client secret rotated"),
    ("app.deleted", "App deleted"),
    ("authorization.granted", "Authorization granted"),
    ("authorization.revoked", "Authorization revoked"),
    ("authorization.refresh_token_reused", "Refresh token reused"),
    ("authorization.code_replayed", "Authorization code replayed"),
    ("membership.added", "Member added"),
    ("membership.removed", "Member removed"),
    ("workspace.deleted", "Workspace deleted"),
    ("api_key.minted", "API key minted"),
    ("api_key.revoked", "API key revoked"),
];

/// The console title of a stored action name (the name itself if unknown).
pub fn title_of(action: &str) -> &str {
    ACTIONS.iter().find(|(name, _)| *name == action).map(|(_, title)| *title).unwrap_or(action)
}

fn plural(n: impl Into<i64>, one: &str, many: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

fn app_label(name: &str, client_id: &str) -> String {
    format!("“{name}” ({client_id})")
}

impl AuditEvent {
    /// The stable name stored with the event.
    pub fn action(&self) -> &'static str {
        match self {
            AuditEvent::AppCreated { .. } => "app.created",
            AuditEvent::AppEdited { .. } => "app.edited",
            AuditEvent::AppSecretRotated { .. } => "app.secret_rotated",
            AuditEvent::AppDeleted { .. } => "app.deleted",
            AuditEvent::AuthorizationGranted(_) => "authorization.granted",
            AuditEvent::AuthorizationRevoked { .. } => "authorization.revoked",
            AuditEvent::RefreshTokenReused(_) => "authorization.refresh_token_reused",
            AuditEvent::CodeReplayed(_) => "authorization.code_replayed",
            AuditEvent::MemberAdded { .. } => "membership.added",
            AuditEvent::MemberRemoved { .. } => "membership.removed",
            AuditEvent::WorkspaceDeleted { .. } => "workspace.deleted",
            AuditEvent::ApiKeyMinted { .. } => "api_key.minted",
            AuditEvent::ApiKeyRevoked { .. } => "api_key.revoked",
        }
    }

    /// What happened, in words.
    pub fn details(&self) -> String {
        match self {
            AuditEvent::AppCreated { client_id, name, client_type, scopes } => {
                format!("Created the {client_type} app {} with scopes {scopes}", app_label(name, client_id))
            }
            AuditEvent::AppEdited { client_id, name, changed } => {
                let what = if changed.is_empty() { "nothing changed".to_owned() } else { changed.join(", ") };
                format!("Edited the app {}: {what}", app_label(name, client_id))
            }
            AuditEvent::AppSecretRotated { client_id, name } => format!(
                "Issued a new client secret for {}; the previous secret stopped working",
                app_label(name, client_id)
            ),
            AuditEvent::AppDeleted { client_id, name, authorizations_ended } => format!(
                "Deleted the app {}; {} ended",
                app_label(name, client_id),
                plural(*authorizations_ended, "authorization", "authorizations")
            ),
            AuditEvent::AuthorizationGranted(g) => format!(
                "{} authorized {} on the workspace “{}” with scopes {}",
                g.user_email,
                app_label(&g.app_name, &g.client_id),
                g.workspace_name,
                g.scopes
            ),
            AuditEvent::AuthorizationRevoked { grant: g, by } => format!(
                "Revoked the authorization {} gave {} on the workspace “{}”, {}; its tokens stopped working",
                g.user_email,
                app_label(&g.app_name, &g.client_id),
                g.workspace_name,
                by.words()
            ),
            AuditEvent::RefreshTokenReused(g) => format!(
                "A refresh token of {} was used a second time, so the authorization {} gave it on the workspace “{}” was revoked",
                app_label(&g.app_name, &g.client_id),
                g.user_email,
                g.workspace_name
            ),
            AuditEvent::CodeReplayed(g) => format!(
                "An authorization code of {} was used a second time, so the authorization {} gave it on the workspace “{}” was revoked",
                app_label(&g.app_name, &g.client_id),
                g.user_email,
                g.workspace_name
            ),
            AuditEvent::MemberAdded { email, role, workspace_name } => {
                format!("Added {email} to the workspace “{workspace_name}” as {role}")
            }
            AuditEvent::MemberRemoved { email, workspace_name, left, authorizations_revoked } => {
                let what = if *left {
                    format!("{email} left the workspace “{workspace_name}”")
                } else {
                    format!("Removed {email} from the workspace “{workspace_name}”")
                };
                format!(
                    "{what}; {} they gave on it revoked",
                    plural(*authorizations_revoked as i64, "authorization", "authorizations")
                )
            }
            AuditEvent::WorkspaceDeleted { workspace_id, name, members, authorizations_ended } => format!(
                "Deleted the workspace “{name}” ({workspace_id}); {} lost access and {} ended",
                plural(*members as i64, "member", "members"),
                plural(*authorizations_ended, "authorization", "authorizations")
            ),
            AuditEvent::ApiKeyMinted { key, workspace_name } => format!(
                "Minted the API key “{}” ({}) for the workspace “{workspace_name}”{}",
                key.key_name,
                key.key_id,
                key.client_id.as_deref().map(|c| format!(" through the application {c}")).unwrap_or_default()
            ),
            AuditEvent::ApiKeyRevoked { key, workspace_name } => {
                format!("Revoked the API key “{}” ({}) of the workspace “{workspace_name}”", key.key_name, key.key_id)
            }
        }
    }
}

/// Writes `event` to each of `logs`, inside the caller's transaction.
pub async fn record(
    conn: &mut Conn,
    actor: &AuditActor,
    logs: &[Log<'_>],
    event: &AuditEvent,
    now: i64,
) -> Result<(), StoreError> {
    let actor = redact(&actor.label());
    let details = redact(&event.details());
    for log in logs {
        let id = new_id("evt");
        let row =
            NewEvent { id: &id, log: *log, actor: &actor, action: event.action(), details: &details, created_at: now };
        store::audit::insert(&mut *conn, &row).await?;
    }
    Ok(())
}

/// The logs an event about a grant belongs in: its user's and its workspace's.
pub fn grant_logs(grant: &RevokedGrant) -> [Log<'_>; 2] {
    [Log::User(&grant.user_id), Log::Workspace(&grant.workspace_id)]
}

/// Records the revocation of `revoked`, one event per user, app and workspace (a user who
/// consented twice has two grants but one authorization), in the user's and the workspace's log.
pub async fn record_revocations(
    conn: &mut Conn,
    actor: &AuditActor,
    revoked: &[RevokedGrant],
    by: RevokedBy,
    now: i64,
) -> Result<(), StoreError> {
    let mut seen = BTreeSet::new();
    for grant in revoked {
        if !seen.insert((&grant.user_id, &grant.workspace_id, &grant.client_id)) {
            continue;
        }
        let same = revoked.iter().filter(|g| {
            g.user_id == grant.user_id && g.workspace_id == grant.workspace_id && g.client_id == grant.client_id
        });
        let names: Vec<&str> = same.flat_map(|g| g.scopes.split(' ')).collect();
        let scopes = ScopeSet::from_names(names).map(|s| s.to_string()).unwrap_or_else(|_| grant.scopes.clone());
        let info = GrantInfo { scopes, ..GrantInfo::from(grant) };
        record(conn, actor, &grant_logs(grant), &AuditEvent::AuthorizationRevoked { grant: info, by }, now).await?;
    }
    Ok(())
}

/// For the resource API: records that an API key was minted, in the workspace's log and, when
/// the key belongs to a user's grant or was made by a user in the console, in that user's log.
/// Call it inside the transaction that stores the key; pass the key's id and name, never the key.
pub async fn api_key_minted(
    conn: &mut Conn,
    actor: &AuditActor,
    workspace_id: &str,
    user_id: Option<&str>,
    key: ApiKeyInfo,
    now: i64,
) -> Result<(), StoreError> {
    let workspace_name = workspace_name(conn, workspace_id).await?;
    let logs = api_key_logs(workspace_id, user_id);
    record(conn, actor, &logs, &AuditEvent::ApiKeyMinted { key, workspace_name }, now).await
}

/// For the resource API: records that an API key was revoked; see [`api_key_minted`].
pub async fn api_key_revoked(
    conn: &mut Conn,
    actor: &AuditActor,
    workspace_id: &str,
    user_id: Option<&str>,
    key: ApiKeyInfo,
    now: i64,
) -> Result<(), StoreError> {
    let workspace_name = workspace_name(conn, workspace_id).await?;
    let logs = api_key_logs(workspace_id, user_id);
    record(conn, actor, &logs, &AuditEvent::ApiKeyRevoked { key, workspace_name }, now).await
}

async fn workspace_name(conn: &mut Conn, workspace_id: &str) -> Result<String, StoreError> {
    Ok(store::workspaces::by_id(&mut *conn, workspace_id).await?.map(|w| w.name).unwrap_or_default())
}

fn api_key_logs<'a>(workspace_id: &'a str, user_id: Option<&'a str>) -> Vec<Log<'a>> {
    let mut logs = vec![Log::Workspace(workspace_id)];
    logs.extend(user_id.map(Log::User));
    logs
}

/// One entry of a log, as the console shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Entry {
    pub id: String,
    pub actor: String,
    pub action: String,
    pub title: String,
    pub details: String,
    pub created_at: i64,
}

/// A page of a log, newest first, and the cursor of the next (older) page if there is one.
#[derive(Clone, Debug)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub older: Option<String>,
}

/// A user's own log. `before` is a cursor from a previous page.
pub async fn user_log(db: &Store, user_id: &str, before: Option<&str>) -> Result<Page, AccountError> {
    page(db, Log::User(user_id), before).await
}

/// A workspace's log: owners and admins only (members are refused; outsiders see nothing).
pub async fn workspace_log(
    db: &Store,
    actor: &Actor,
    workspace_id: &str,
    before: Option<&str>,
) -> Result<Page, AccountError> {
    require_manager(db, actor, workspace_id).await?;
    page(db, Log::Workspace(workspace_id), before).await
}

async fn page(db: &Store, log: Log<'_>, before: Option<&str>) -> Result<Page, AccountError> {
    let before_seq = match before.filter(|b| !b.is_empty()) {
        None => None,
        // A cursor is an event id of this log; any other value (or another log's id) is refused.
        Some(cursor) => Some(
            store::audit::seq_in_log(db.reader(), log, cursor)
                .await?
                .ok_or_else(|| AccountError::invalid("before", "this page of the log does not exist"))?,
        ),
    };
    let mut rows = store::audit::page(db.reader(), log, before_seq, PAGE_SIZE as i64 + 1).await?;
    let older = if rows.len() > PAGE_SIZE {
        rows.truncate(PAGE_SIZE);
        rows.last().map(|r| r.id.clone())
    } else {
        None
    };
    let entries = rows
        .into_iter()
        .map(|r| Entry {
            title: title_of(&r.action).to_owned(),
            id: r.id,
            actor: r.actor,
            action: r.action,
            details: r.details,
            created_at: r.created_at,
        })
        .collect();
    Ok(Page { entries, older })
}

/// Replaces anything shaped like a Tessera secret (`tes_xx_` and a long alphanumeric body) with
/// `[redacted]`. Events are never built from secrets, but names are typed by people.
fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("tes_") {
        out.push_str(&rest[..at]);
        let candidate = &rest[at..];
        match secret_len(candidate) {
            Some(len) => {
                out.push_str("[redacted]");
                rest = &candidate[len..];
            }
            None => {
                out.push_str("tes_");
                rest = &candidate["tes_".len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The length of the secret-shaped text at the start of `s`: `tes_`, two lower-case letters, `_`,
/// then at least 16 ASCII letters and digits.
fn secret_len(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let kind = bytes.get(4..7)?;
    if !(kind[0].is_ascii_lowercase() && kind[1].is_ascii_lowercase() && kind[2] == b'_') {
        return None;
    }
    let body = bytes[7..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
    (body >= 16).then_some(7 + body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::{IssuedSecret, SecretKind};

    #[test]
    fn secrets_are_redacted_and_other_text_is_kept() {
        let secret = IssuedSecret::generate(SecretKind::ClientSecret);
        let text = format!("app “{}” and tes_ and tes_sk_short", secret.expose());
        let redacted = redact(&text);
        assert_eq!(redacted, "app “[redacted]” and tes_ and tes_sk_short");
        for kind in
            [SecretKind::AccessToken, SecretKind::RefreshToken, SecretKind::ApiKey, SecretKind::AuthorizationCode]
        {
            let s = IssuedSecret::generate(kind);
            assert!(!redact(&format!("x{}y", s.expose())).contains("tes_"), "{kind:?}");
        }
        assert_eq!(redact("tes_"), "tes_");
        assert_eq!(redact("ümlaut tes_ü"), "ümlaut tes_ü");
    }

    #[test]
    fn every_action_has_a_title() {
        let info = GrantInfo {
            client_id: "app_1".into(),
            app_name: "Partner".into(),
            user_email: "a@example.com".into(),
            workspace_name: "W".into(),
            scopes: "caches:read".into(),
        };
        let key = ApiKeyInfo { key_id: "key_1".into(), key_name: "ci".into(), client_id: None };
        let events = [
            AuditEvent::AppCreated {
                client_id: "app_1".into(),
                name: "P".into(),
                client_type: "public".into(),
                scopes: "caches:read".into(),
            },
            AuditEvent::AppEdited { client_id: "app_1".into(), name: "P".into(), changed: vec!["name"] },
            AuditEvent::AppSecretRotated { client_id: "app_1".into(), name: "P".into() },
            AuditEvent::AppDeleted { client_id: "app_1".into(), name: "P".into(), authorizations_ended: 2 },
            AuditEvent::AuthorizationGranted(info.clone()),
            AuditEvent::AuthorizationRevoked { grant: info.clone(), by: RevokedBy::Operator },
            AuditEvent::RefreshTokenReused(info.clone()),
            AuditEvent::CodeReplayed(info),
            AuditEvent::MemberAdded { email: "b@example.com".into(), role: "admin".into(), workspace_name: "W".into() },
            AuditEvent::MemberRemoved {
                email: "b@example.com".into(),
                workspace_name: "W".into(),
                left: true,
                authorizations_revoked: 1,
            },
            AuditEvent::WorkspaceDeleted {
                workspace_id: "ws_1".into(),
                name: "W".into(),
                members: 3,
                authorizations_ended: 0,
            },
            AuditEvent::ApiKeyMinted { key: key.clone(), workspace_name: "W".into() },
            AuditEvent::ApiKeyRevoked { key, workspace_name: "W".into() },
        ];
        assert_eq!(events.len(), ACTIONS.len());
        for event in &events {
            assert_ne!(title_of(event.action()), event.action(), "{event:?}");
            assert!(!event.details().is_empty());
        }
        assert_eq!(title_of("something.new"), "something.new");
    }
}
