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

    // Every attempt is counted before the slow password check, so that parallel guesses cannot
    // all read a count under the limit; a successful login takes its own attempt back.
    let window_open_after = now - settings.login_window;
    let limits =
        [(&account_key, settings.login_failures_per_account), (&address_key, settings.login_failures_per_address)];
    let mut tx = db.begin().await?;
    let mut throttled = None;
    for (key, limit) in limits {
        store::login_failures::record(&mut *tx, key, now, settings.login_window).await?;
        if let Some((attempts, window_start)) = store::login_failures::count(&mut *tx, key, window_open_after).await? {
            if attempts > limit {
                throttled = Some((window_start + settings.login_window - now).max(1));
            }
        }
    }
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    if let Some(retry_after) = throttled {
        return Err(AccountError::Throttled { retry_after });
    }

    let user = store::users::by_email(db.reader(), &email).await?;
    let verified =
        super::passwords::verify(password.to_owned(), user.as_ref().map(|u| u.password_hash.clone())).await?;
    let Some(user) = user.filter(|_| verified) else {
        return Err(AccountError::InvalidCredentials);
    };
    let mut tx = db.begin().await?;
    store::login_failures::clear(&mut *tx, &account_key).await?;
    store::login_failures::forgive(&mut *tx, &address_key).await?;
    let outcome = Ok(user.into());
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    outcome
}
