//! What every API handler shares: strict JSON bodies, keyset pagination with opaque cursors,
//! `Idempotency-Key` replay, and the rules for names and timestamps.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::app::AppState;
use crate::apps::Scope;
use crate::credentials::sha256_hex;
use crate::http::form::FormData;
use crate::http::Json;
use crate::oauth::bearer::{Bearer, PresentedBearer};
use crate::store::idempotency::StoredResponse;
use crate::store::query::{Read, Record, Step};
use crate::store::{self, Page, Store, Tx};

use super::problem::{ApiError, FieldError};

/// A JSON body whose unknown fields are refused (each request type says `deny_unknown_fields`);
/// the raw bytes are kept for idempotency.
pub struct ApiJson<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = state.settings.http.max_body_bytes;
        let raw = axum::body::to_bytes(request.into_body(), limit).await.map_err(|e| {
            let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::TooLarge(limit)
            } else {
                ApiError::Malformed("the body could not be read".into())
            }
        })?;
        if nesting_depth(&raw) > MAX_JSON_DEPTH {
            return Err(ApiError::Malformed(format!("the body is nested deeper than {MAX_JSON_DEPTH} levels")));
        }
        let value = serde_json::from_slice(&raw).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::Validation(vec![FieldError::new("body", e.to_string())]),
            _ => ApiError::Malformed(format!("the body is not valid JSON: {e}")),
        })?;
        Ok(ApiJson { value, raw })
    }
}

/// The deepest nesting of arrays and objects a body may have. No request type needs more than a
/// few levels; serde_json's own limit (128) would also refuse deeper ones, but this check is
/// cheaper and does not depend on which type is being read.
pub const MAX_JSON_DEPTH: usize = 32;

/// The deepest nesting of `[` and `{` in a JSON text (strings are skipped), without parsing it.
/// Invalid JSON is left for the parser to refuse.
pub fn nesting_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// `limit` and `cursor` from the query string.
pub fn paging(query: Option<&str>) -> Result<Page, ApiError> {
    let form = FormData::parse(query.unwrap_or("").as_bytes()).map_err(|e| ApiError::Malformed(e.to_string()))?;
    let limit = match form.get("limit") {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => return Err(ApiError::invalid("limit", format!("must be a whole number from 1 to {MAX_LIMIT}"))),
        },
    };
    let (after_time, after_id) = match form.get("cursor").filter(|c| !c.is_empty()) {
        None => (i64::MIN, String::new()),
        Some(cursor) => {
            decode_cursor(cursor).ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this API returned"))?
        }
    };
    Ok(Page { after_time, after_id, limit })
}

fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (time, id) = text.split_once(':')?;
    Some((time.parse().ok()?, id.to_owned()))
}

/// What a list handler shows: the caller, the page asked for, and that page of what the caller's
/// workspace holds (`read`), the caller and the page read together
/// ([`PresentedBearer::authenticate_then_all`]). No row is shown to a caller without `scope`, and
/// a malformed page query is answered only once the caller is known, so a caller without a live
/// credential learns nothing from a 422.
pub async fn authorized_page<T: Record>(
    store: &Store,
    presented: &PresentedBearer,
    scope: Scope,
    query: Option<&str>,
    read: impl FnOnce(&str, &Page) -> Read<T>,
) -> Result<(Bearer, Page, Vec<T>), ApiError> {
    let page = match paging(query) {
        Ok(page) => page,
        Err(e) => {
            presented.authenticate(store).await?.require(scope)?;
            return Err(e);
        }
    };
    let (bearer, rows) = presented.authenticate_then_all(store, |workspace_id| read(workspace_id, &page)).await?;
    bearer.require(scope)?;
    Ok((bearer, page, rows))
}

/// Trims a fetched page (which asks for one extra row) and gives the cursor of the next one.
pub fn finish_page<T>(mut rows: Vec<T>, page: &Page, key: impl Fn(&T) -> (i64, &str)) -> (Vec<T>, Option<String>) {
    if rows.len() as i64 > page.limit {
        rows.truncate(page.limit as usize);
        let next = rows.last().map(|last| {
            let (time, id) = key(last);
            URL_SAFE_NO_PAD.encode(format!("{time}:{id}"))
        });
        (rows, next)
    } else {
        (rows, None)
    }
}

/// A resource name: 1 to 63 characters of `a-z`, `0-9` and `-`.
pub fn resource_name(field: &str, name: &str, errors: &mut Vec<FieldError>) {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        errors.push(FieldError::new(field, "must be 1 to 63 characters of a-z, 0-9 and -"));
    }
}

pub fn rfc3339(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

pub fn validated(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// An `Idempotency-Key` on a POST: the same key with the same body gets the first response back;
/// with another body, 422.
pub struct Idempotency {
    principal: String,
    key: String,
    request_hash: String,
}

impl Idempotency {
    pub fn from_request(
        headers: &HeaderMap,
        bearer: &Bearer,
        route: &str,
        raw: &[u8],
    ) -> Result<Option<Self>, ApiError> {
        let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
        let key =
            value.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 255).ok_or_else(|| {
                ApiError::Malformed("Idempotency-Key must be 1 to 255 visible ASCII characters".into())
            })?;
        let mut material = route.as_bytes().to_vec();
        material.push(0);
        material.extend_from_slice(raw);
        Ok(Some(Idempotency {
            principal: bearer.principal(),
            key: key.to_owned(),
            request_hash: sha256_hex(&material),
        }))
    }

    /// The remembered response for this key, if any.
    pub async fn replay(&self, db: &Store) -> Result<Option<Response>, ApiError> {
        match store::idempotency::get(db.reader(), &self.principal, &self.key).await? {
            None => Ok(None),
            Some(stored) if stored.request_hash != self.request_hash => Err(ApiError::IdempotencyMismatch),
            Some(stored) => {
                let status = StatusCode::from_u16(stored.status as u16).unwrap_or(StatusCode::OK);
                let body: Value = serde_json::from_str(&stored.body).map_err(|e| ApiError::Internal(e.into()))?;
                let mut response = (status, Json(body)).into_response();
                response.headers_mut().insert("idempotent-replayed", header::HeaderValue::from_static("true"));
                Ok(Some(response))
            }
        }
    }

    /// The step that remembers the response in the transaction that made it; its claim fails
    /// when a concurrent request with the same key committed first.
    fn remember(&self, status: StatusCode, body: &Value, now: i64) -> Step {
        let stored = StoredResponse {
            request_hash: self.request_hash.clone(),
            status: i64::from(status.as_u16()),
            body: body.to_string(),
        };
        store::idempotency::remember(&self.principal, &self.key, &stored, now)
    }

    /// Remembers the response inside the transaction that made it. `false` means a concurrent
    /// request with the same key committed first: the caller drops its transaction and replays.
    pub async fn record(&self, tx: &mut Tx, status: StatusCode, body: &Value, now: i64) -> Result<bool, ApiError> {
        Ok(self.remember(status, body, now).run(tx).await? == 1)
    }
}

/// Creates a resource with `steps` in one write (on SQLite it joins the group commit), remembers
/// the response under the idempotency key in the same transaction, and answers 201. A unique
/// violation among the steps is a conflict, answered with `conflict`, unless a concurrent
/// request with the same key made the resource, whose response is then replayed.
pub async fn write_created(
    db: &Store,
    mut steps: Vec<Step>,
    idempotency: Option<Idempotency>,
    body: Value,
    now: i64,
    conflict: impl FnOnce() -> String,
) -> Result<Response, ApiError> {
    if let Some(idem) = &idempotency {
        steps.push(idem.remember(StatusCode::CREATED, &body, now));
    }
    match db.write_all(steps).await {
        Ok(true) => Ok((StatusCode::CREATED, Json(body)).into_response()),
        Ok(false) => {
            conflict_or_replay(db, &idempotency, "a concurrent request used this Idempotency-Key".into()).await
        }
        Err(e) if e.is_unique_violation() => conflict_or_replay(db, &idempotency, conflict()).await,
        Err(e) => Err(e.into()),
    }
}

/// Commits a creation and answers 201, honouring an idempotency key.
pub async fn commit_created(
    db: &Store,
    tx: Tx,
    idempotency: Option<Idempotency>,
    body: Value,
    now: i64,
) -> Result<Response, ApiError> {
    let remembered = body.clone();
    commit_created_remembering(db, tx, idempotency, body, &remembered, now).await
}

/// Like [`commit_created`], but remembers `remembered` for retries instead of the body itself
/// (a response carrying a one-time secret is remembered without it).
pub async fn commit_created_remembering(
    db: &Store,
    mut tx: Tx,
    idempotency: Option<Idempotency>,
    body: Value,
    remembered: &Value,
    now: i64,
) -> Result<Response, ApiError> {
    if let Some(idem) = &idempotency {
        if !idem.record(&mut tx, StatusCode::CREATED, remembered, now).await? {
            drop(tx);
            return idem
                .replay(db)
                .await?
                .ok_or_else(|| ApiError::Conflict("a concurrent request used this Idempotency-Key".into()));
        }
    }
    tx.commit().await.map_err(|e| ApiError::Internal(e.into()))?;
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// A unique-name conflict, unless a concurrent request with the same idempotency key made the
/// resource, in which case its response is replayed.
pub async fn conflict_or_replay(
    db: &Store,
    idempotency: &Option<Idempotency>,
    message: String,
) -> Result<Response, ApiError> {
    if let Some(idem) = idempotency {
        if let Some(replayed) = idem.replay(db).await? {
            return Ok(replayed);
        }
    }
    Err(ApiError::Conflict(message))
}

#[cfg(test)]
mod tests {
    use super::nesting_depth;

    #[test]
    fn nesting_depth_counts_brackets_outside_strings() {
        assert_eq!(nesting_depth(b"1"), 0);
        assert_eq!(nesting_depth(br#"{"a": [1, {"b": []}], "c": {}}"#), 4);
        assert_eq!(nesting_depth(br#"{"a": "[[[{{{\"[[["}"#), 1);
        assert_eq!(nesting_depth("[".repeat(5000).as_bytes()), 5000);
    }
}
