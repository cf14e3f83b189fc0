//! Login with throttling per account and per client address.
//!
//! The answer for an unknown email and for a wrong password is the same error, reached after the
//! same argon2id work, so a login form cannot be used to learn which emails have accounts.

use std::net::IpAddr;

use crate::config::AccountSettings;
use crate::store::{self, Store};

use super::validate::Email;
use super::{AccountError, User};

pub async fn authenticate(
    db: &Store,
    settings: &AccountSettings,
    email: &str,
    password: &str,
    address: IpAddr,
    now: i64,
) -> Result<User, AccountError> {
    // A malformed email cannot belong to anyone; it gets the same answer as a wrong password.
    let email = Email::parse(email).map(|e| e.as_str().to_owned()).unwrap_or_else(|_| email.trim().to_lowercase());
    let account_key = format!("account:{email}");
    let address_key = format!("address:{address}");

    let window_open_after = now - settings.login_window;
    for (key, limit) in
        [(&account_key, settings.login_failures_per_account), (&address_key, settings.login_failures_per_address)]
    {
        if let Some((failures, window_start)) =
            store::login_failures::count(db.reader(), key, window_open_after).await?
        {
            if failures >= limit {
                let retry_after = (window_start + settings.login_window - now).max(1);
                return Err(AccountError::Throttled { retry_after });
            }
        }
    }

    let user = store::users::by_email(db.reader(), &email).await?;
    let verified =
        super::passwords::verify(password.to_owned(), user.as_ref().map(|u| u.password_hash.clone())).await?;

    let mut tx = db.begin().await?;
    let outcome = match user {
        Some(user) if verified => {
            store::login_failures::clear(&mut *tx, &account_key).await?;
            Ok(user.into())
        }
        _ => {
            store::login_failures::record(&mut *tx, &account_key, now, settings.login_window).await?;
            store::login_failures::record(&mut *tx, &address_key, now, settings.login_window).await?;
            Err(AccountError::InvalidCredentials)
        }
    };
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    outcome
}
