//! Sign-up, login and logout pages.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;

use crate::accounts::signup::{create_user, NewUser};
use crate::accounts::{login::authenticate, sessions, AccountError};
use crate::app::AppState;
use crate::http::{clear_cookie, client_address, set_cookie};

use super::{render, CsrfForm, PageError, Visitor};

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// `next` must be a path on Tessera's own origin; anything else (another host, `//evil`,
/// `/\evil`, a scheme) falls back to the home page, so login cannot be used as an open redirect.
pub fn safe_next(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    if ok {
        next
    } else {
        "/"
    }
}

pub async fn login_page(visitor: Visitor, Query(query): Query<NextQuery>) -> Result<Response, PageError> {
    let next = safe_next(&query.next);
    if visitor.user.is_some() {
        return Ok(Redirect::to(next).into_response());
    }
    Ok(render("login.html", context! { csrf => visitor.csrf, next, email => "" })?.into_response())
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    visitor: Visitor,
    CsrfForm(form): CsrfForm,
) -> Result<Response, PageError> {
    let now = crate::time::now();
    let next = safe_next(form.text("next")).to_owned();
    let address = client_address(&headers, peer, state.settings.http.trust_forwarded_for);
    let settings = &state.settings.accounts;
    match authenticate(&state.store, settings, form.text("email"), form.text("password"), address, now).await {
        Ok(user) => {
            // A fresh session id at every login (no session fixation).
            let session = sessions::start(&state.store, &user.id, settings.session_ttl, now).await?;
            let cookie = set_cookie(sessions::COOKIE, session.expose(), settings.session_ttl, settings.secure_cookies);
            if let Some(old) = crate::http::cookie(&headers, sessions::COOKIE) {
                sessions::end(&state.store, old).await?;
            }
            Ok((StatusCode::SEE_OTHER, [(header::LOCATION, next), (header::SET_COOKIE, cookie)]).into_response())
        }
        Err(AccountError::InvalidCredentials) => {
            let page = render(
                "login.html",
                context! { csrf => visitor.csrf, next, email => form.text("email"), error => "Email or password is incorrect." },
            )?;
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    CsrfForm(_): CsrfForm,
) -> Result<Response, PageError> {
    if let Some(value) = crate::http::cookie(&headers, sessions::COOKIE) {
        sessions::end(&state.store, value).await?;
    }
    let cookie = clear_cookie(sessions::COOKIE, state.settings.accounts.secure_cookies);
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/login".to_owned()), (header::SET_COOKIE, cookie)]).into_response())
}

pub async fn signup_page(visitor: Visitor) -> Result<Response, PageError> {
    if visitor.user.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    Ok(render("signup.html", context! { csrf => visitor.csrf, values => context!{}, errors => context!{} })?
        .into_response())
}

pub async fn signup(
    State(state): State<AppState>,
    visitor: Visitor,
    CsrfForm(form): CsrfForm,
) -> Result<Response, PageError> {
    let now = crate::time::now();
    let input = NewUser { name: form.text("name"), email: form.text("email"), password: form.text("password") };
    if input.name.trim().is_empty() {
        return signup_error(&visitor, &form, "name", "enter your name");
    }
    match create_user(&state.store, input, now).await {
        Ok(user) => {
            let settings = &state.settings.accounts;
            let session = sessions::start(&state.store, &user.id, settings.session_ttl, now).await?;
            let cookie = set_cookie(sessions::COOKIE, session.expose(), settings.session_ttl, settings.secure_cookies);
            Ok((StatusCode::SEE_OTHER, [(header::LOCATION, "/".to_owned()), (header::SET_COOKIE, cookie)])
                .into_response())
        }
        Err(AccountError::Invalid { field, message }) => signup_error(&visitor, &form, field, &message),
        Err(AccountError::EmailTaken) => {
            signup_error(&visitor, &form, "email", "an account with this email already exists; log in instead")
        }
        Err(e) => Err(e.into()),
    }
}

fn signup_error(
    visitor: &Visitor,
    form: &crate::http::form::FormData,
    field: &str,
    message: &str,
) -> Result<Response, PageError> {
    let errors = std::collections::BTreeMap::from([(field.to_owned(), message.to_owned())]);
    let values = context! { name => form.text("name"), email => form.text("email") };
    let page = render("signup.html", context! { csrf => visitor.csrf, values, errors })?;
    Ok((StatusCode::BAD_REQUEST, page).into_response())
}
