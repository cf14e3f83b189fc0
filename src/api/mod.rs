//! The resource API (`/v1/...`), authenticated with bearer credentials.

pub mod workspace;

use axum::routing::get;
use axum::Router;

use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/workspace", get(workspace::show))
}
