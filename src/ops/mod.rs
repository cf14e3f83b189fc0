//! Operations: health and readiness probes, the janitor, and the serving process's log writer.

pub mod janitor;
pub mod log;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use serde_json::json;

use crate::app::AppState;
use crate::http::Json;

pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// The process is up.
async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// The database answers and accepts writes; load balancers send traffic only while this is 200.
/// A database that answers reads but refuses writes (disk full, read-only) is not ready: most
/// requests write (tokens, sessions, audit), and they would answer 503.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if !state.store.ping().await {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "database unreachable"})))
    } else if !state.store.accepts_writes(crate::time::now()).await {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "database not writable"})))
    } else {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    }
}
