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
use axum::Router;

use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as OpenApiDoc, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::http::Json;
use problem::PROBLEM_JSON;

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
    let (router, mut document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
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
        .split_for_parts();
    shared_responses(&mut document);
    (router, document)
}

/// What every route shares but no handler annotation says: problem bodies are
/// `application/problem+json` (RFC 9457); a request whose body or query string cannot be read at
/// all (not JSON, not UTF-8, a malformed `Idempotency-Key`) is a 400 before the handler's own
/// checks; and a body that is not sent as JSON is a 415.
fn shared_responses(document: &mut OpenApiDoc) {
    let problem = || {
        RefOr::T(
            ResponseBuilder::new()
                .description("a problem (RFC 9457)")
                .content(PROBLEM_JSON, Content::new(Some(Ref::from_schema_name("Problem"))))
                .build(),
        )
    };
    for item in document.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            for response in operation.responses.responses.values_mut() {
                let RefOr::T(response) = response else { continue };
                let is_problem = response.content.get("application/json").is_some_and(
                    |c| matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location == "#/components/schemas/Problem"),
                );
                if is_problem {
                    if let Some(content) = response.content.shift_remove("application/json") {
                        response.content.insert(PROBLEM_JSON.to_owned(), content);
                    }
                }
            }
            let has_body = operation.request_body.is_some();
            let has_query = operation.parameters.iter().flatten().any(|p| matches!(p.parameter_in, ParameterIn::Query));
            let responses = &mut operation.responses.responses;
            if has_body || has_query {
                responses.entry("400".to_owned()).or_insert_with(problem);
            }
            if has_body {
                responses.entry("415".to_owned()).or_insert_with(problem);
            }
        }
    }
}

pub fn routes() -> Router<AppState> {
    let (router, document) = router_and_document();
    let document = std::sync::Arc::new(document);
    router.route("/openapi.json", get(move || async move { Json(document.as_ref().clone()) }))
}
