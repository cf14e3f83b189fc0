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

/// Security headers on every response; a handler may set its own, which then win.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let defaults: [(HeaderName, &'static str); 6] = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https: data:; \
             connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
        // Pages show per-user data and one-time secrets: no cache keeps them unless a handler says so.
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// One structured log line per request, under a request id that is echoed to the client.
///
/// Only the path is logged, never the query string or body: authorization requests carry
/// `state` and codes there.
pub async fn request_log(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(next_request_id);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        request.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    let mut response = next.run(request).await;
    let status = response.status().as_u16();
    tracing::info!(
        request_id = %request_id,
        method = %method,
        path = %path,
        status,
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    response
}
