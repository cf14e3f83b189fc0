//! Server-side browser sessions. The cookie holds an opaque `tes_se_` secret; the database holds
//! only its hash, so a database dump signs no one in.

use crate::credentials::{sha256_hex, IssuedSecret, PresentedSecret, SecretKind};
use crate::store::{self, Store};

use super::{AccountError, User};

pub const COOKIE: &str = "tessera_session";

/// Starts a new session; login always calls this, so a session id is never reused across logins.
pub async fn start(db: &Store, user_id: &str, ttl: i64, now: i64) -> Result<IssuedSecret, AccountError> {
    let secret = IssuedSecret::generate(SecretKind::Session);
    store::sessions::insert(db.writer(), secret.hash().as_str(), user_id, now, now + ttl).await?;
    Ok(secret)
}

pub async fn current_user(db: &Store, cookie_value: &str, now: i64) -> Result<Option<User>, AccountError> {
    let Some(secret) = PresentedSecret::parse(SecretKind::Session, cookie_value) else {
        return Ok(None);
    };
    Ok(store::sessions::user(db.reader(), secret.hash().as_str(), now).await?.map(User::from))
}

pub async fn end(db: &Store, cookie_value: &str) -> Result<(), AccountError> {
    if let Some(secret) = PresentedSecret::parse(SecretKind::Session, cookie_value) {
        store::sessions::delete(db.writer(), secret.hash().as_str()).await?;
    }
    Ok(())
}

/// The CSRF token for forms shown to the holder of `cookie_value` (a session or, before login,
/// an anonymous cookie). Derived rather than stored: it is worthless without the cookie, and the
/// stored session hash does not reveal it.
pub fn csrf_token(cookie_value: &str) -> String {
    sha256_hex(format!("tessera-csrf:{cookie_value}").as_bytes())
}
