//! The authorization server: `/oauth2/auth` with login and consent, `/oauth2/token`,
//! `/oauth2/revoke`, `/oauth2/introspect` and the RFC 8414 metadata document.
//!
//! ```text
//! GET /oauth2/auth ──(client + redirect_uri verified? no)──> error page, never a redirect
//!        │ yes, other errors ──> redirect_uri?error=…&state=…&iss=…
//!        ▼
//! request kept server-side ──> GET /oauth2/consent?consent_challenge=…  (login first if needed)
//!        ▼
//! POST /oauth2/consent: pending ─once─> decided ──> redirect_uri?code=…&state=…&iss=…  (or access_denied)
//! ```

pub mod authorize;
pub mod bearer;
pub mod client_auth;
pub mod consent;
pub mod error;
pub mod flows;
pub mod introspect;
pub mod metadata;
pub mod pkce;
pub mod revoke;
pub mod token;

use axum::extract::{Query, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::context;
use serde::Deserialize;

use crate::app::AppState;
use crate::console::{render, CsrfForm, PageError, SignedIn};
use crate::http::form::FormData;

pub use error::OAuthError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/oauth2/token", post(token::token))
        .route("/oauth2/revoke", post(revoke::revoke))
        .route("/oauth2/introspect", post(introspect::introspect))
        .route("/.well-known/oauth-authorization-server", get(metadata::metadata))
}

/// The browser-facing routes, which need the console's cookies.
pub fn browser_routes() -> Router<AppState> {
    Router::new()
        .route("/oauth2/auth", get(authorize_endpoint))
        .route("/oauth2/consent", get(consent_page).post(consent_decision))
}

fn error_page(status: StatusCode, message: String) -> Response {
    match render("oauth_error.html", context! { message }) {
        Ok(page) => (status, page).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn authorize_endpoint(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let query = match FormData::parse(query.unwrap_or_default().as_bytes()) {
        Ok(q) => q,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, format!("The authorization request is malformed: {e}.")),
    };
    let now = crate::time::now();
    match authorize::validate(&state.store, &state.settings.oauth, &state.limits.authorize, &query, now).await {
        Ok(request) => match authorize::remember(&state.store, &request, now).await {
            Ok(challenge) => Redirect::to(&format!("/oauth2/consent?consent_challenge={challenge}")).into_response(),
            Err(e) => PageError::from(e).into_response(),
        },
        Err(authorize::AuthorizeError::Page(message)) => error_page(StatusCode::BAD_REQUEST, message),
        Err(authorize::AuthorizeError::Redirect(r)) => {
            Redirect::to(&r.location(&state.settings.issuer())).into_response()
        }
        Err(authorize::AuthorizeError::Throttled(t)) => {
            let message = format!(
                "This application has sent too many authorization requests. Try again in {} seconds.",
                t.retry_after
            );
            let mut page = error_page(StatusCode::TOO_MANY_REQUESTS, message);
            if let Ok(value) = HeaderValue::from_str(&t.retry_after.to_string()) {
                page.headers_mut().insert(header::RETRY_AFTER, value);
            }
            page
        }
        Err(authorize::AuthorizeError::Internal(e)) => PageError::Internal(e).into_response(),
    }
}

#[derive(Deserialize)]
struct ChallengeQuery {
    #[serde(default)]
    consent_challenge: String,
}

impl From<consent::ConsentError> for PageError {
    fn from(e: consent::ConsentError) -> Self {
        match e {
            consent::ConsentError::NotOpen => PageError::BadRequest(e.to_string()),
            consent::ConsentError::WorkspaceNotAllowed => PageError::Forbidden(e.to_string()),
            consent::ConsentError::Internal(e) => PageError::Internal(e),
        }
    }
}

async fn consent_page(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Query(q): Query<ChallengeQuery>,
) -> Result<Response, PageError> {
    let view = consent::load(&state.store, &q.consent_challenge, &user.id, crate::time::now()).await?;
    let scopes: Vec<_> =
        view.scopes.iter().map(|s| context! { name => s.as_str(), description => s.description() }).collect();
    let workspaces: Vec<_> = view
        .workspaces
        .iter()
        .map(|w| context! { id => w.id, name => w.name, role => w.role, selectable => w.selectable })
        .collect();
    let any_selectable = view.workspaces.iter().any(|w| w.selectable);
    let page = render(
        "consent.html",
        context! {
            user, csrf, challenge => q.consent_challenge, scopes, workspaces, any_selectable,
            app => context! {
                name => view.app.name, logo_url => view.app.logo_url, homepage_url => view.app.homepage_url,
                owner => view.owner_label, client_id => view.app.client_id,
            },
            redirect_host => url::Url::parse(&view.request.redirect_uri).ok().and_then(|u| u.host_str().map(str::to_owned)),
        },
    )?;
    Ok(page.into_response())
}

async fn consent_decision(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    CsrfForm(form): CsrfForm,
) -> Result<Response, PageError> {
    let decision = match form.text("decision") {
        "allow" => consent::Decision::Allow { workspace_id: form.text("workspace_id") },
        "deny" => consent::Decision::Deny,
        _ => return Err(PageError::BadRequest("Choose Allow or Deny.".into())),
    };
    let location = consent::decide(
        &state.store,
        &state.settings.oauth,
        &state.settings.issuer(),
        form.text("consent_challenge"),
        &user.id,
        decision,
        crate::time::now(),
    )
    .await?;
    Ok(Redirect::to(&location).into_response())
}
