//! Accounts: users, sign-up and login, browser sessions, workspaces and memberships.
//!
//! Everything here works on a [`Store`](crate::store::Store) and takes the current time as an
//! argument, so the rules can be tested without HTTP and without sleeping.

pub mod login;
pub mod passwords;
pub mod sessions;
pub mod signup;
pub mod validate;
pub mod workspaces;

use crate::store::StoreError;

pub use validate::{Email, Role};

/// Who is acting: a signed-in user, or the operator through `tessera admin`.
#[derive(Clone, Debug)]
pub enum Actor {
    User(String),
    Operator,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("email or password is incorrect")]
    InvalidCredentials,
    #[error("too many failed attempts; try again in {retry_after} seconds")]
    Throttled { retry_after: i64 },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AccountError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AccountError::Invalid { field, message: message.into() }
    }
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        AccountError::Internal(e.into())
    }
}

/// A user as the rest of Tessera sees one: never with the password hash.
#[derive(Clone, Debug, serde::Serialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub created_at: i64,
}

impl From<crate::store::users::UserRow> for User {
    fn from(row: crate::store::users::UserRow) -> Self {
        User { id: row.id, email: row.email, name: row.name, created_at: row.created_at }
    }
}
