//! Who is at the browser, and CSRF protection for every form.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::accounts::{sessions, User};
use crate::app::AppState;
use crate::credentials::{constant_time_eq, random_token};
use crate::http::form::FormData;
use crate::http::{cookie, set_cookie};

use super::PageError;

/// Anonymous visitors get this cookie so that the login and sign-up forms have a CSRF token too.
pub const BROWSER_COOKIE: &str = "tessera_browser";

/// The CSRF token is derived from the session cookie when there is one, else from the browser cookie.
fn csrf_basis(parts: &Parts) -> Option<&str> {
    cookie(&parts.headers, sessions::COOKIE).or_else(|| cookie(&parts.headers, BROWSER_COOKIE))
}

/// Gives a browser without cookies an anonymous one before its first form is rendered.
pub async fn ensure_browser_cookie(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let has_cookie =
        cookie(request.headers(), sessions::COOKIE).is_some() || cookie(request.headers(), BROWSER_COOKIE).is_some();
    if has_cookie {
        return next.run(request).await;
    }
    let value = random_token();
    // Make the new cookie visible to this request's extractors, as if the browser had sent it.
    if let Ok(header_value) = HeaderValue::from_str(&format!("{BROWSER_COOKIE}={value}")) {
        request.headers_mut().append(header::COOKIE, header_value);
    }
    let secure = state.settings.accounts.secure_cookies;
    let mut response = next.run(request).await;
    if let Ok(v) = HeaderValue::from_str(&set_cookie(BROWSER_COOKIE, &value, 365 * 24 * 3600, secure)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// Whoever is at the browser, signed in or not, with the CSRF token for the forms on the page.
pub struct Visitor {
    pub user: Option<User>,
    pub csrf: String,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let user = match cookie(&parts.headers, sessions::COOKIE) {
            Some(value) => sessions::current_user(&state.store, value, crate::time::now()).await?,
            None => None,
        };
        let csrf = csrf_basis(parts).map(sessions::csrf_token).unwrap_or_default();
        Ok(Visitor { user, csrf })
    }
}

/// A signed-in user; anyone else is sent to the login page and then back here.
pub struct SignedIn {
    pub user: User,
    pub csrf: String,
}

pub struct LoginRedirect(String);

impl IntoResponse for LoginRedirect {
    fn into_response(self) -> Response {
        Redirect::to(&self.0).into_response()
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let visitor = Visitor::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)?;
        match visitor.user {
            Some(user) => Ok(SignedIn { user, csrf: visitor.csrf }),
            None => {
                let next = parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
                let target = format!(
                    "/login?next={}",
                    percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
                );
                Err(LoginRedirect(target).into_response())
            }
        }
    }
}

/// A form whose `csrf_token` field matches the one derived from this browser's cookie.
pub struct CsrfForm(pub FormData);

impl FromRequest<AppState> for CsrfForm {
    type Rejection = PageError;

    async fn from_request(request: Request<Body>, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let form = FormData::read(&parts.headers, body, state.settings.http.max_body_bytes).await?;
        let expected = csrf_basis(&parts).map(sessions::csrf_token).ok_or(PageError::Csrf)?;
        if !constant_time_eq(form.text("csrf_token"), &expected) {
            return Err(PageError::Csrf);
        }
        Ok(CsrfForm(form))
    }
}
