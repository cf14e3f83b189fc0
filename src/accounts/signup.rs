//! Creating accounts: every new user gets a personal workspace and owns it.

use crate::credentials::new_id;
use crate::store::users::UserRow;
use crate::store::workspaces::WorkspaceRow;
use crate::store::{self, Store};

use super::validate::{display_name, new_password, Email};
use super::{AccountError, User};

pub struct NewUser<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub password: &'a str,
}

pub async fn create_user(db: &Store, input: NewUser<'_>, now: i64) -> Result<User, AccountError> {
    let email = Email::parse(input.email)?;
    let name = if input.name.trim().is_empty() {
        // A name is optional for the operator CLI; the part before the @ stands in.
        email.as_str().split('@').next().unwrap_or_default().to_owned()
    } else {
        display_name("name", input.name)?
    };
    let password = new_password(input.password)?;
    let password_hash = super::passwords::hash(password).await?;

    let user = UserRow { id: new_id("usr"), email: email.as_str().to_owned(), name, password_hash, created_at: now };
    let workspace = WorkspaceRow {
        id: new_id("ws"),
        name: format!("{}'s workspace", user.name.chars().take(60).collect::<String>()),
        personal: 1,
        created_at: now,
    };

    let mut tx = db.begin().await?;
    if let Err(e) = store::users::insert(&mut *tx, &user).await {
        return Err(if e.is_unique_violation() { AccountError::EmailTaken } else { e.into() });
    }
    store::workspaces::insert(&mut *tx, &workspace).await?;
    store::workspaces::add_member(&mut *tx, &workspace.id, &user.id, "owner", now).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    Ok(user.into())
}
