//! Middleware every route passes through.

use std::time::Instant;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use crate::credentials::new_id;

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids only need to be unique, not secret: a random prefix drawn once per process
/// keeps processes apart, and a counter keeps this process's requests apart without drawing
/// random bytes for each one.
fn next_request_id() -> String {
    static PROCESS: LazyLock<String> = LazyLock::new(|| new_id("req"));
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    format!("{}-{:x}", *PROCESS, SEQUENCE.fetch_add(1, Ordering::Relaxed))
}

/// The headers every response carries unless its handler set its own.
fn default_security_headers() -> [(HeaderName, HeaderValue); 6] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https: data:; \
                 connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
            ),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin")),
        // Pages show per-user data and one-time secrets: no cache keeps them unless a handler says so.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

/// What every request goes through, outermost: a request id (the client's `X-Request-Id` if it
/// is a sensible one), echoed on the response; the security headers, which a handler may
/// override; and one structured log line. Being outermost, it also covers the answers that the
/// layers inside it make themselves (a timed-out request's 408, a body over the limit).
///
/// Only the path is logged, never the query string or body: authorization requests carry
/// `state` and codes there.
pub async fn every_request(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| {
            let v = v.as_bytes();
            !v.is_empty() && v.len() <= 64 && v.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        })
        .cloned()
        .or_else(|| HeaderValue::try_from(next_request_id()).ok());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if let Some(id) = &request_id {
        request.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
    }
    let mut response = next.run(request).await;
    let id_text = request_id.as_ref().and_then(|id| id.to_str().ok()).unwrap_or_default();
    tracing::info!(
        request_id = %id_text,
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    let headers = response.headers_mut();
    for (name, value) in default_security_headers() {
        headers.entry(name).or_insert(value);
    }
    if let Some(id) = request_id {
        headers.insert(X_REQUEST_ID.clone(), id);
    }
    response
}
