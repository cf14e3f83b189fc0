//! The resource API (`/v1/...`): JSON over bearer authentication (an access token or an API
//! key), every request bound to the credential's workspace. The routes and the OpenAPI document
//! at `/openapi.json` come from the same annotated handlers, so neither can miss the other.

pub mod api_keys;
pub mod cache_rules;
pub mod caches;
pub mod databases;
pub mod extract;
pub mod problem;
pub mod workspace;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Tessera API", description = "Caches, cache rules, databases and API keys of the workspace a bearer credential is bound to."),
    modifiers(&BearerScheme),
    components(schemas(problem::Problem, problem::FieldError))
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("An OAuth access token (tes_at_...) or a developer API key (tes_ak_...)."))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The `/v1` routes and their OpenAPI description, built together.
pub fn router_and_document() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(workspace::show))
        .routes(routes!(caches::list, caches::create))
        .routes(routes!(caches::get, caches::update, caches::delete))
        .routes(routes!(caches::purge))
        .routes(routes!(cache_rules::list, cache_rules::create))
        .routes(routes!(cache_rules::get, cache_rules::update, cache_rules::delete))
        .routes(routes!(databases::list, databases::create))
        .routes(routes!(databases::get, databases::delete))
        .routes(routes!(api_keys::list, api_keys::create))
        .routes(routes!(api_keys::delete))
        .split_for_parts()
}

pub fn routes() -> Router<AppState> {
    let (router, document) = router_and_document();
    let document = std::sync::Arc::new(document);
    router.route("/openapi.json", get(move || async move { Json(document.as_ref().clone()) }))
}
