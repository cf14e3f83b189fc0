//! The home page (my workspaces) and a workspace's settings page with its members.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;

use crate::accounts::workspaces::{self, Owner};
use crate::accounts::{AccountError, Actor, Role};
use crate::app::AppState;

use super::{render, CsrfForm, PageError, SignedIn};

pub async fn home(State(state): State<AppState>, SignedIn { user, csrf }: SignedIn) -> Result<Response, PageError> {
    let mine = workspaces::list_mine(&state.store, &user.id).await?;
    let rows: Vec<_> = mine
        .iter()
        .map(|w| context! { id => w.id, name => w.name, role => w.role, personal => w.personal == 1 })
        .collect();
    Ok(render("home.html", context! { user, csrf, workspaces => rows, error => () })?.into_response())
}

pub async fn create(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    CsrfForm(form): CsrfForm,
) -> Result<Response, PageError> {
    let workspace =
        workspaces::create(&state.store, Owner::UserId(&user.id), form.text("name"), crate::time::now()).await?;
    Ok(Redirect::to(&format!("/workspaces/{}", workspace.id)).into_response())
}

pub async fn settings(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    settings_page(&state, user, csrf, &id, StatusCode::OK, None).await
}

async fn settings_page(
    state: &AppState,
    user: crate::accounts::User,
    csrf: String,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let view = workspaces::view(&state.store, &Actor::User(user.id.clone()), id).await?;
    let can_manage = view.role.is_some_and(Role::can_manage);
    let members: Vec<_> = view
        .members
        .iter()
        .map(|m| context! { user_id => m.user_id, email => m.email, name => m.name, role => m.role, since => m.created_at, is_me => m.user_id == user.id })
        .collect();
    let page = render(
        "workspace.html",
        context! {
            user, csrf, error,
            workspace => context! { id => view.workspace.id, name => view.workspace.name, personal => view.workspace.personal == 1 },
            role => view.role.map(Role::as_str),
            can_manage, members,
        },
    )?;
    Ok((status, page).into_response())
}

pub async fn rename(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, PageError> {
    match workspaces::rename(&state.store, &Actor::User(user.id.clone()), &id, form.text("name")).await {
        Ok(()) => Ok(Redirect::to(&format!("/workspaces/{id}")).into_response()),
        Err(AccountError::Invalid { message, .. }) => {
            settings_page(&state, user, csrf, &id, StatusCode::BAD_REQUEST, Some(format!("Name {message}."))).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn add_member(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, PageError> {
    let actor = Actor::User(user.id.clone());
    let outcome = match Role::parse(form.text("role")) {
        Ok(role) => workspaces::add_member(&state.store, &actor, &id, form.text("email"), role, crate::time::now())
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/workspaces/{id}")).into_response()),
        Err(AccountError::Invalid { field, message }) => {
            let error = format!("{}: {message}.", if field == "email" { "Email" } else { "Role" });
            settings_page(&state, user, csrf, &id, StatusCode::BAD_REQUEST, Some(error)).await
        }
        Err(AccountError::Conflict(message)) => {
            settings_page(&state, user, csrf, &id, StatusCode::CONFLICT, Some(message)).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn remove_member(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path((id, member_id)): Path<(String, String)>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, PageError> {
    let leaving = member_id == user.id;
    match workspaces::remove_member(&state.store, &Actor::User(user.id.clone()), &id, &member_id, crate::time::now())
        .await
    {
        Ok(()) if leaving => Ok(Redirect::to("/").into_response()),
        Ok(()) => Ok(Redirect::to(&format!("/workspaces/{id}")).into_response()),
        Err(AccountError::Conflict(message)) => {
            settings_page(&state, user, csrf, &id, StatusCode::CONFLICT, Some(message)).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let preview = workspaces::deletion_preview(&state.store, &user.id, &id).await?;
    let page = render(
        "workspace_delete.html",
        context! {
            user, csrf,
            workspace => context! { id => preview.workspace.id, name => preview.workspace.name },
            members => preview.members, apps => preview.apps, authorizations => preview.authorizations,
        },
    )?;
    Ok(page.into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, PageError> {
    workspaces::delete(&state.store, &user.id, &id, crate::time::now()).await?;
    Ok(Redirect::to("/").into_response())
}
