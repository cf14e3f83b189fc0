//! Who a bearer credential speaks for. An access token and a developer API key give the same row,
//! so that the resource API finds either with one read, and can read it in one go with what the
//! request asks for ([`Store::fetch_optional_then_all`](super::Store::fetch_optional_then_all)).

use super::query::Read;
use crate::{record, values};

#[derive(Clone, Debug)]
pub struct CallerRow {
    /// `None` for an API key made in the console.
    pub grant_id: Option<String>,
    pub client_id: Option<String>,
    pub user_id: String,
    pub workspace_id: String,
    pub scopes: String,
    /// Set when the credential is an API key.
    pub api_key_id: Option<String>,
}

record!(CallerRow { grant_id, client_id, user_id, workspace_id, scopes, api_key_id });

const BY_ACCESS_TOKEN: &str =
    "SELECT a.grant_id, g.client_id, g.user_id, g.workspace_id, a.scopes, CAST(NULL AS TEXT) AS api_key_id
       FROM access_tokens a JOIN grants g ON g.id = a.grant_id
      WHERE a.token_hash = $1 AND a.expires_at > $2 AND a.revoked_at IS NULL AND g.revoked_at IS NULL";

const BY_API_KEY: &str =
    "SELECT k.grant_id, g.client_id, k.created_by_user_id AS user_id, k.workspace_id, k.scopes, k.id AS api_key_id
       FROM api_keys k LEFT JOIN grants g ON g.id = k.grant_id
      WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND (k.grant_id IS NULL OR g.revoked_at IS NULL)";

/// The caller behind an access token that has not expired by `now` and whose token and grant
/// are not revoked.
pub fn by_access_token(token_key: &str, now: i64) -> Read<CallerRow> {
    Read::new(BY_ACCESS_TOKEN, values![token_key, now])
}

/// The caller behind an API key that is not revoked, nor is the grant it was minted under.
pub fn by_api_key(key_hash: &str) -> Read<CallerRow> {
    Read::new(BY_API_KEY, values![key_hash])
}
