//! OAuth applications (clients): user-level and workspace-level, confidential or public.
//!
//! A user-level app is managed by its user alone; a workspace-level app by the workspace's owners
//! and admins. Outsiders are told an app does not exist; members are told they may not manage it.

pub mod redirect_uri;
pub mod scopes;

use std::collections::BTreeMap;

use crate::accounts::workspaces::require_manager;
use crate::accounts::{AccountError, Actor};
use crate::audit::{self, AuditEvent, Log};
use crate::credentials::{new_id, IssuedSecret, PresentedSecret, SecretHash, SecretKind};
use crate::store::apps::AppRow;
use crate::store::{self, Store, StoreError};

pub use redirect_uri::MAX_REDIRECT_URIS;
pub use scopes::{Scope, ScopeSet};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppOwner {
    User(String),
    Workspace(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientType {
    Confidential,
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        }
    }
}

#[derive(Clone, Debug)]
pub struct App {
    pub client_id: String,
    pub owner: AppOwner,
    pub name: String,
    pub scopes: ScopeSet,
    pub redirect_uris: Vec<String>,
    pub logo_url: Option<String>,
    pub homepage_url: Option<String>,
    pub client_type: ClientType,
    pub created_at: i64,
    pub updated_at: i64,
    secret_hash: Option<SecretHash>,
}

impl App {
    pub(crate) fn from_row(row: AppRow) -> App {
        let owner = match (row.owner_user_id, row.owner_workspace_id) {
            (Some(user), _) => AppOwner::User(user),
            (None, Some(ws)) => AppOwner::Workspace(ws),
            // The schema's CHECK makes this unreachable; treat it as owned by no one reachable.
            (None, None) => AppOwner::Workspace(String::new()),
        };
        App {
            client_id: row.client_id,
            owner,
            name: row.name,
            scopes: ScopeSet::from_stored(&row.scopes),
            redirect_uris: row.redirect_uris.lines().map(str::to_owned).collect(),
            logo_url: row.logo_url,
            homepage_url: row.homepage_url,
            client_type: if row.client_type == "public" { ClientType::Public } else { ClientType::Confidential },
            created_at: row.created_at,
            updated_at: row.updated_at,
            secret_hash: row.secret_hash.map(SecretHash::from_stored),
        }
    }

    pub fn is_public(&self) -> bool {
        self.client_type == ClientType::Public
    }

    /// Checks a presented client secret: well-formed, and its hash equal (in constant time) to ours.
    pub fn secret_matches(&self, presented: &str) -> bool {
        match (&self.secret_hash, PresentedSecret::parse(SecretKind::ClientSecret, presented)) {
            (Some(stored), Some(secret)) => stored.matches(&secret.hash()),
            _ => false,
        }
    }
}

/// Field name -> what is wrong with it, for inline form errors and CLI messages.
pub type FieldErrors = BTreeMap<&'static str, String>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{}", describe(.0))]
    Invalid(FieldErrors),
    #[error("app not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn describe(errors: &FieldErrors) -> String {
    errors.iter().map(|(field, message)| format!("{field}: {message}")).collect::<Vec<_>>().join("; ")
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Internal(e.into())
    }
}

impl From<AccountError> for AppError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NotFound(_) => AppError::NotFound,
            AccountError::Forbidden(why) => AppError::Forbidden(why),
            AccountError::Internal(e) => AppError::Internal(e),
            other => AppError::Internal(anyhow::anyhow!(other.to_string())),
        }
    }
}

/// What a person typed into the app form (or the CLI's flags).
#[derive(Clone, Debug, Default)]
pub struct AppInput {
    pub name: String,
    pub scopes: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub logo_url: String,
    pub homepage_url: String,
}

struct ValidInput {
    name: String,
    scopes: ScopeSet,
    redirect_uris: Vec<String>,
    logo_url: Option<String>,
    homepage_url: Option<String>,
}

fn validate(input: &AppInput) -> Result<ValidInput, AppError> {
    let mut errors = FieldErrors::new();
    let name = input.name.trim().to_owned();
    let name_chars = name.chars().count();
    if name_chars == 0 || name_chars > 80 || name.chars().any(char::is_control) {
        errors.insert("name", "must be 1 to 80 characters".into());
    }
    let scopes = match ScopeSet::from_names(input.scopes.iter().map(String::as_str)) {
        Ok(set) if set.is_empty() => {
            errors.insert("scopes", "choose at least one scope".into());
            set
        }
        Ok(set) => set,
        Err(e) => {
            errors.insert("scopes", e);
            ScopeSet::default()
        }
    };
    let uris: Vec<&str> = input.redirect_uris.iter().map(|u| u.trim()).filter(|u| !u.is_empty()).collect();
    let mut redirect_uris = Vec::new();
    if uris.is_empty() {
        errors.insert("redirect_uris", "add at least one redirect URI".into());
    } else if uris.len() > MAX_REDIRECT_URIS {
        errors.insert("redirect_uris", format!("at most {MAX_REDIRECT_URIS} redirect URIs"));
    } else {
        for uri in uris {
            match redirect_uri::validate(uri) {
                Ok(valid) if !redirect_uris.contains(&valid) => redirect_uris.push(valid),
                Ok(_) => {}
                Err(e) => {
                    errors.insert("redirect_uris", e);
                    break;
                }
            }
        }
    }
    let logo_url = redirect_uri::validate_https_url(&input.logo_url).unwrap_or_else(|e| {
        errors.insert("logo_url", e);
        None
    });
    let homepage_url = redirect_uri::validate_https_url(&input.homepage_url).unwrap_or_else(|e| {
        errors.insert("homepage_url", e);
        None
    });
    if errors.is_empty() {
        Ok(ValidInput { name, scopes, redirect_uris, logo_url, homepage_url })
    } else {
        Err(AppError::Invalid(errors))
    }
}

/// Fails unless `actor` may manage apps owned by `owner`.
async fn require_owner_rights(db: &Store, actor: &Actor, owner: &AppOwner) -> Result<(), AppError> {
    match (owner, actor) {
        (AppOwner::Workspace(ws), actor) => {
            // Also checks that the workspace exists, for the operator too.
            require_manager(db, actor, ws).await?;
            Ok(())
        }
        (AppOwner::User(_), Actor::Operator) => Ok(()),
        (AppOwner::User(owner_id), Actor::User(user_id)) if owner_id == user_id => Ok(()),
        (AppOwner::User(_), Actor::User(_)) => Err(AppError::NotFound),
    }
}

/// Creates an app. A confidential app's secret is returned here and never again.
pub async fn create(
    db: &Store,
    actor: &Actor,
    owner: AppOwner,
    input: &AppInput,
    client_type: ClientType,
    now: i64,
) -> Result<(App, Option<IssuedSecret>), AppError> {
    require_owner_rights(db, actor, &owner).await?;
    let valid = validate(input)?;
    let secret = (client_type == ClientType::Confidential).then(|| IssuedSecret::generate(SecretKind::ClientSecret));
    let (owner_user_id, owner_workspace_id) = match &owner {
        AppOwner::User(id) => (Some(id.clone()), None),
        AppOwner::Workspace(id) => (None, Some(id.clone())),
    };
    let row = AppRow {
        client_id: new_id("app"),
        owner_user_id,
        owner_workspace_id,
        name: valid.name,
        scopes: valid.scopes.to_string(),
        redirect_uris: valid.redirect_uris.join("\n"),
        logo_url: valid.logo_url,
        homepage_url: valid.homepage_url,
        client_type: client_type.as_str().to_owned(),
        secret_hash: secret.as_ref().map(|s| s.hash().as_str().to_owned()),
        created_at: now,
        updated_at: now,
    };
    let mut tx = db.begin().await?;
    store::apps::insert(&mut *tx, &row).await?;
    let who = audit::actor_of(&mut tx, actor).await?;
    let event = AuditEvent::AppCreated {
        client_id: row.client_id.clone(),
        name: row.name.clone(),
        client_type: row.client_type.clone(),
        scopes: row.scopes.clone(),
    };
    audit::record(&mut tx, &who, &[owner_log(&owner)], &event, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok((App::from_row(row), secret))
}

/// Looks an app up for the authorization server: no permission check, the client id is public.
pub async fn find(db: &Store, client_id: &str) -> Result<Option<App>, StoreError> {
    if !is_client_id(client_id) {
        return Ok(None);
    }
    Ok(store::apps::find(db, client_id).await?.map(App::from_row))
}

/// Whether `client_id` could name an app at all (anything else is not looked up).
pub fn is_client_id(client_id: &str) -> bool {
    !client_id.is_empty() && client_id.len() <= 100
}

/// An app that `actor` may manage.
pub async fn get_managed(db: &Store, actor: &Actor, client_id: &str) -> Result<App, AppError> {
    let app = find(db, client_id).await?.ok_or(AppError::NotFound)?;
    require_owner_rights(db, actor, &app.owner).await?;
    Ok(app)
}

pub async fn update(db: &Store, actor: &Actor, client_id: &str, input: &AppInput, now: i64) -> Result<App, AppError> {
    let app = get_managed(db, actor, client_id).await?;
    let valid = validate(input)?;
    let row = AppRow {
        client_id: app.client_id.clone(),
        owner_user_id: None,
        owner_workspace_id: None,
        name: valid.name,
        scopes: valid.scopes.to_string(),
        redirect_uris: valid.redirect_uris.join("\n"),
        logo_url: valid.logo_url,
        homepage_url: valid.homepage_url,
        client_type: app.client_type.as_str().to_owned(),
        secret_hash: None,
        created_at: app.created_at,
        updated_at: now,
    };
    let changed: Vec<&'static str> = [
        ("name", app.name != row.name),
        ("scopes", app.scopes.to_string() != row.scopes),
        ("redirect URIs", app.redirect_uris.join("\n") != row.redirect_uris),
        ("logo URL", app.logo_url != row.logo_url),
        ("homepage URL", app.homepage_url != row.homepage_url),
    ]
    .into_iter()
    .filter_map(|(field, differs)| differs.then_some(field))
    .collect();
    let mut tx = db.begin().await?;
    store::apps::update_details(&mut *tx, &row).await?;
    let who = audit::actor_of(&mut tx, actor).await?;
    let event = AuditEvent::AppEdited { client_id: app.client_id.clone(), name: row.name.clone(), changed };
    audit::record(&mut tx, &who, &[owner_log(&app.owner)], &event, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    get_managed(db, actor, client_id).await
}

/// Issues a new client secret; the old one stops working at once. Tokens already issued stay valid.
pub async fn rotate_secret(db: &Store, actor: &Actor, client_id: &str, now: i64) -> Result<IssuedSecret, AppError> {
    let app = get_managed(db, actor, client_id).await?;
    if app.is_public() {
        return Err(AppError::Invalid(FieldErrors::from([("client_type", "a public app has no secret".to_owned())])));
    }
    let secret = IssuedSecret::generate(SecretKind::ClientSecret);
    let mut tx = db.begin().await?;
    store::apps::set_secret_hash(&mut *tx, client_id, secret.hash().as_str(), now).await?;
    let who = audit::actor_of(&mut tx, actor).await?;
    let event = AuditEvent::AppSecretRotated { client_id: app.client_id.clone(), name: app.name.clone() };
    audit::record(&mut tx, &who, &[owner_log(&app.owner)], &event, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(secret)
}

/// Deletes the app and, with it, every grant, code and token issued to it.
pub async fn delete(db: &Store, actor: &Actor, client_id: &str, now: i64) -> Result<(), AppError> {
    let app = get_managed(db, actor, client_id).await?;
    let mut tx = db.begin().await?;
    let authorizations_ended = store::grants::live_count_for_app(&mut *tx, client_id).await?;
    if !store::apps::delete(&mut *tx, client_id).await? {
        return Err(AppError::NotFound);
    }
    let who = audit::actor_of(&mut tx, actor).await?;
    let event =
        AuditEvent::AppDeleted { client_id: app.client_id.clone(), name: app.name.clone(), authorizations_ended };
    audit::record(&mut tx, &who, &[owner_log(&app.owner)], &event, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

/// The log an app's own events go to: its owning user's, or its workspace's.
fn owner_log(owner: &AppOwner) -> Log<'_> {
    match owner {
        AppOwner::User(id) => Log::User(id),
        AppOwner::Workspace(id) => Log::Workspace(id),
    }
}

pub async fn owned_by_user(db: &Store, user_id: &str) -> Result<Vec<App>, AppError> {
    Ok(store::apps::owned_by_user(db.reader(), user_id).await?.into_iter().map(App::from_row).collect())
}

pub async fn owned_by_workspace(db: &Store, actor: &Actor, workspace_id: &str) -> Result<Vec<App>, AppError> {
    require_manager(db, actor, workspace_id).await?;
    Ok(store::apps::owned_by_workspace(db.reader(), workspace_id).await?.into_iter().map(App::from_row).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> AppInput {
        AppInput {
            name: "Partner".into(),
            scopes: vec!["caches:read".into()],
            redirect_uris: vec!["https://partner.example/cb".into()],
            ..AppInput::default()
        }
    }

    #[test]
    fn every_rule_has_its_own_field_error() {
        let cases: Vec<(AppInput, &str)> = vec![
            (AppInput { name: "".into(), ..input() }, "name"),
            (AppInput { name: "x".repeat(81), ..input() }, "name"),
            (AppInput { scopes: vec![], ..input() }, "scopes"),
            (AppInput { scopes: vec!["admin".into()], ..input() }, "scopes"),
            (AppInput { redirect_uris: vec![], ..input() }, "redirect_uris"),
            (
                AppInput { redirect_uris: (0..11).map(|i| format!("https://p{i}.example/")).collect(), ..input() },
                "redirect_uris",
            ),
            (AppInput { redirect_uris: vec!["http://partner.example/cb".into()], ..input() }, "redirect_uris"),
            (AppInput { logo_url: "javascript:alert(1)".into(), ..input() }, "logo_url"),
            (AppInput { homepage_url: "http://partner.example".into(), ..input() }, "homepage_url"),
        ];
        for (case, field) in cases {
            match validate(&case) {
                Err(AppError::Invalid(errors)) => assert!(errors.contains_key(field), "{field}: {errors:?}"),
                _ => panic!("{field} should be refused"),
            }
        }
        assert!(validate(&input()).is_ok());
    }
}
