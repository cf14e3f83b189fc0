//! The console: server-rendered pages for people (sign-up, login, workspaces, and later apps,
//! consent and integrations). Handlers here stay thin: they extract, call the part that owns the
//! rule, and render.

mod apps;
mod audit;
mod auth;
mod error;
mod resources;
mod session;
mod templates;
mod workspaces;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{middleware, Router};

use crate::app::AppState;

pub use error::PageError;
pub use session::{CsrfForm, SignedIn, Visitor};
pub use templates::render;

pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(workspaces::home))
        .route("/signup", get(auth::signup_page).post(auth::signup))
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/workspaces", post(workspaces::create))
        .route("/workspaces/{id}", get(workspaces::settings))
        .route("/workspaces/{id}/rename", post(workspaces::rename))
        .route("/workspaces/{id}/delete", get(workspaces::confirm_delete).post(workspaces::delete))
        .route("/workspaces/{id}/audit", get(audit::workspace_log))
        .route("/workspaces/{id}/members", post(workspaces::add_member))
        .route("/workspaces/{id}/members/{user_id}/remove", post(workspaces::remove_member))
        .route("/settings/account/integrations", get(apps::account_integrations))
        .route("/settings/account/audit", get(audit::account_log))
        .route("/settings/account/integrations/apps/new", get(apps::new_account_app))
        .route("/settings/account/integrations/apps", post(apps::create_account_app))
        .route("/workspaces/{id}/integrations", get(apps::workspace_integrations))
        .route("/workspaces/{id}/integrations/apps/new", get(apps::new_workspace_app))
        .route("/workspaces/{id}/integrations/apps", post(apps::create_workspace_app))
        .route("/apps/{client_id}", get(apps::show).post(apps::update))
        .route("/apps/{client_id}/rotate-secret", post(apps::rotate_secret))
        .route("/apps/{client_id}/delete", get(apps::confirm_delete).post(apps::delete))
        .route(
            "/settings/account/integrations/authorized/{client_id}/revoke",
            get(apps::confirm_revoke_user_app).post(apps::revoke_user_app),
        )
        .route(
            "/settings/account/integrations/authorized/revoke-all",
            get(apps::confirm_revoke_all).post(apps::revoke_all),
        )
        .route(
            "/workspaces/{id}/integrations/authorized/{client_id}/revoke",
            get(apps::confirm_revoke_workspace_app).post(apps::revoke_workspace_app),
        )
        .route("/workspaces/{id}/resources", get(resources::page))
        .route("/workspaces/{id}/resources/caches", post(resources::create_cache))
        .route("/workspaces/{id}/resources/caches/{cache_id}/delete", post(resources::delete_cache))
        .route("/workspaces/{id}/resources/caches/{cache_id}/rules", post(resources::create_rule))
        .route("/workspaces/{id}/resources/caches/{cache_id}/rules/{rule_id}/delete", post(resources::delete_rule))
        .route("/workspaces/{id}/resources/databases", post(resources::create_database))
        .route("/workspaces/{id}/resources/databases/{db_id}/delete", post(resources::delete_database))
        .route("/workspaces/{id}/resources/api-keys", post(resources::create_key))
        .route("/workspaces/{id}/resources/api-keys/{key_id}/revoke", post(resources::revoke_key))
        .merge(crate::oauth::browser_routes())
        .layer(middleware::from_fn_with_state(state.clone(), session::ensure_browser_cookie))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .fallback(not_found)
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/app.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/app.js"),
    )
}

async fn not_found() -> PageError {
    PageError::NotFound
}
