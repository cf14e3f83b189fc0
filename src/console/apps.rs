//! OAuth application pages: Settings -> Account -> Integrations ("OAuth Apps") for user-level apps,
//! Workspace -> Settings -> Integrations for workspace-level apps, and each app's own page.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{context, Value};

use crate::accounts::workspaces as ws;
use crate::accounts::Actor;
use crate::app::AppState;
use crate::apps::{self, App, AppError, AppInput, AppOwner, ClientType, FieldErrors, Scope};
use crate::grants;
use crate::http::form::FormData;

use super::{render, CsrfForm, PageError, SignedIn};

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound => PageError::NotFound,
            AppError::Forbidden(why) => PageError::Forbidden(why.to_owned()),
            AppError::Invalid(errors) => PageError::BadRequest(errors.values().cloned().collect::<Vec<_>>().join("; ")),
            AppError::Internal(e) => PageError::Internal(e),
        }
    }
}

fn scope_choices(checked: &[&str]) -> Vec<Value> {
    Scope::ALL
        .iter()
        .map(|s| context! { name => s.as_str(), description => s.description(), checked => checked.contains(&s.as_str()) })
        .collect()
}

fn app_context(app: &App) -> Value {
    context! {
        client_id => app.client_id,
        name => app.name,
        scopes => app.scopes.names(),
        scope_descriptions => app.scopes.iter().map(|s| s.description()).collect::<Vec<_>>(),
        redirect_uris => app.redirect_uris,
        redirect_uris_text => app.redirect_uris.join("\n"),
        logo_url => app.logo_url,
        homepage_url => app.homepage_url,
        public => app.is_public(),
        client_type => app.client_type.as_str(),
        created_at => app.created_at,
        updated_at => app.updated_at,
    }
}

fn input_from(form: &FormData) -> AppInput {
    AppInput {
        name: form.text("name").to_owned(),
        scopes: form.all("scope").into_iter().map(str::to_owned).collect(),
        redirect_uris: form.text("redirect_uris").lines().map(str::to_owned).collect(),
        logo_url: form.text("logo_url").to_owned(),
        homepage_url: form.text("homepage_url").to_owned(),
    }
}

/// Where an owner's apps are listed and created.
struct OwnerPages {
    owner: AppOwner,
    title: String,
    list_url: String,
    workspace_id: Option<String>,
}

async fn owner_pages(state: &AppState, user_id: &str, workspace_id: Option<String>) -> Result<OwnerPages, PageError> {
    match workspace_id {
        None => Ok(OwnerPages {
            owner: AppOwner::User(user_id.to_owned()),
            title: "Account integrations".into(),
            list_url: "/settings/account/integrations".into(),
            workspace_id: None,
        }),
        Some(id) => {
            let view = ws::view(&state.store, &Actor::User(user_id.to_owned()), &id).await?;
            ws::require_manager(&state.store, &Actor::User(user_id.to_owned()), &id).await?;
            Ok(OwnerPages {
                owner: AppOwner::Workspace(id.clone()),
                title: format!("{} · Integrations", view.workspace.name),
                list_url: format!("/workspaces/{id}/integrations"),
                workspace_id: Some(id),
            })
        }
    }
}

pub async fn account_integrations(State(state): State<AppState>, signed_in: SignedIn) -> Result<Response, PageError> {
    list_page(&state, signed_in, None).await
}

pub async fn workspace_integrations(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    list_page(&state, signed_in, Some(id)).await
}

async fn list_page(
    state: &AppState,
    SignedIn { user, csrf }: SignedIn,
    workspace: Option<String>,
) -> Result<Response, PageError> {
    let pages = owner_pages(state, &user.id, workspace).await?;
    let owned = match &pages.owner {
        AppOwner::User(id) => apps::owned_by_user(&state.store, id).await?,
        AppOwner::Workspace(id) => apps::owned_by_workspace(&state.store, &Actor::User(user.id.clone()), id).await?,
    };
    let apps: Vec<Value> = owned.iter().map(app_context).collect();
    let authorized = match &pages.owner {
        AppOwner::User(id) => grants::authorized_by_user(&state.store, id).await?,
        AppOwner::Workspace(id) => {
            grants::authorized_on_workspace(&state.store, &Actor::User(user.id.clone()), id).await?
        }
    };
    let page = render(
        "apps.html",
        context! {
            user, csrf, title => pages.title, list_url => pages.list_url, workspace_id => pages.workspace_id, apps,
            authorized => Value::from_serialize(&authorized),
        },
    )?;
    Ok(page.into_response())
}

pub async fn new_account_app(State(state): State<AppState>, signed_in: SignedIn) -> Result<Response, PageError> {
    new_app_page(&state, signed_in, None).await
}

pub async fn new_workspace_app(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    new_app_page(&state, signed_in, Some(id)).await
}

async fn new_app_page(
    state: &AppState,
    SignedIn { user, csrf }: SignedIn,
    workspace: Option<String>,
) -> Result<Response, PageError> {
    let pages = owner_pages(state, &user.id, workspace).await?;
    let values = context! { name => "", redirect_uris_text => "", logo_url => "", homepage_url => "", client_type => "confidential" };
    let page = render(
        "app_new.html",
        context! { user, csrf, title => pages.title, list_url => pages.list_url, values, scopes => scope_choices(&[]), errors => FieldErrors::new() },
    )?;
    Ok(page.into_response())
}

pub async fn create_account_app(
    State(state): State<AppState>,
    signed_in: SignedIn,
    CsrfForm(form): CsrfForm,
) -> Result<Response, PageError> {
    create_app(&state, signed_in, None, form).await
}

pub async fn create_workspace_app(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, PageError> {
    create_app(&state, signed_in, Some(id), form).await
}

async fn create_app(
    state: &AppState,
    SignedIn { user, csrf }: SignedIn,
    workspace: Option<String>,
    form: FormData,
) -> Result<Response, PageError> {
    let pages = owner_pages(state, &user.id, workspace).await?;
    let client_type = match form.text("client_type") {
        "public" => ClientType::Public,
        _ => ClientType::Confidential,
    };
    let input = input_from(&form);
    let actor = Actor::User(user.id.clone());
    match apps::create(&state.store, &actor, pages.owner, &input, client_type, crate::time::now()).await {
        Ok((app, secret)) => {
            let page = render(
                "app_secret.html",
                context! { user, csrf, app => app_context(&app), secret => secret.map(|s| s.into_exposed()), created => true },
            )?;
            Ok(page.into_response())
        }
        Err(AppError::Invalid(errors)) => {
            let checked: Vec<&str> = form.all("scope");
            let values = context! {
                name => input.name, redirect_uris_text => form.text("redirect_uris"),
                logo_url => input.logo_url, homepage_url => input.homepage_url, client_type => client_type.as_str(),
            };
            let page = render(
                "app_new.html",
                context! { user, csrf, title => pages.title, list_url => pages.list_url, values, scopes => scope_choices(&checked), errors },
            )?;
            Ok((StatusCode::BAD_REQUEST, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

fn list_url_of(app: &App) -> String {
    match &app.owner {
        AppOwner::User(_) => "/settings/account/integrations".into(),
        AppOwner::Workspace(id) => format!("/workspaces/{id}/integrations"),
    }
}

pub async fn show(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path(client_id): Path<String>,
) -> Result<Response, PageError> {
    let app = apps::get_managed(&state.store, &Actor::User(user.id.clone()), &client_id).await?;
    app_page(user, csrf, &app, None, StatusCode::OK)
}

fn app_page(
    user: crate::accounts::User,
    csrf: String,
    app: &App,
    errors: Option<(FieldErrors, Value)>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let (errors, values) = match errors {
        Some((errors, values)) => (errors, values),
        None => (FieldErrors::new(), app_context(app)),
    };
    let checked: Vec<String> = values
        .get_attr("scopes")
        .ok()
        .and_then(|v| v.try_iter().ok())
        .map(|it| it.map(|s| s.to_string()).collect())
        .unwrap_or_default();
    let checked: Vec<&str> = checked.iter().map(String::as_str).collect();
    let page = render(
        "app.html",
        context! { user, csrf, app => app_context(app), values, errors, scopes => scope_choices(&checked), list_url => list_url_of(app) },
    )?;
    Ok((status, page).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path(client_id): Path<String>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, PageError> {
    let actor = Actor::User(user.id.clone());
    let input = input_from(&form);
    match apps::update(&state.store, &actor, &client_id, &input, crate::time::now()).await {
        Ok(app) => Ok(Redirect::to(&format!("/apps/{}", app.client_id)).into_response()),
        Err(AppError::Invalid(errors)) => {
            let app = apps::get_managed(&state.store, &actor, &client_id).await?;
            let values = context! {
                name => input.name, scopes => form.all("scope"), redirect_uris_text => form.text("redirect_uris"),
                logo_url => input.logo_url, homepage_url => input.homepage_url,
            };
            app_page(user, csrf, &app, Some((errors, values)), StatusCode::BAD_REQUEST)
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path(client_id): Path<String>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, PageError> {
    let actor = Actor::User(user.id.clone());
    let secret = apps::rotate_secret(&state.store, &actor, &client_id, crate::time::now()).await?;
    let app = apps::get_managed(&state.store, &actor, &client_id).await?;
    let page = render(
        "app_secret.html",
        context! { user, csrf, app => app_context(&app), secret => secret.into_exposed(), created => false },
    )?;
    Ok(page.into_response())
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path(client_id): Path<String>,
) -> Result<Response, PageError> {
    let app = apps::get_managed(&state.store, &Actor::User(user.id.clone()), &client_id).await?;
    Ok(render("app_delete.html", context! { user, csrf, app => app_context(&app) })?.into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Path(client_id): Path<String>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, PageError> {
    let actor = Actor::User(user.id.clone());
    let app = apps::get_managed(&state.store, &actor, &client_id).await?;
    apps::delete(&state.store, &actor, &client_id, crate::time::now()).await?;
    Ok(Redirect::to(&list_url_of(&app)).into_response())
}

/// Where a revocation confirmation posts to and returns to.
struct RevokeTarget {
    title: String,
    message: String,
    action: String,
    back: String,
}

fn confirm_page(user: crate::accounts::User, csrf: String, target: RevokeTarget) -> Result<Response, PageError> {
    let page = render(
        "revoke_confirm.html",
        context! { user, csrf, title => target.title, message => target.message, action => target.action, back => target.back },
    )?;
    Ok(page.into_response())
}

const REVOKE_MESSAGE: &str =
    "Every access token, refresh token and API key issued under this consent stops working at once. The application will have to ask again.";

pub async fn confirm_revoke_user_app(
    SignedIn { user, csrf }: SignedIn,
    Path(client_id): Path<String>,
) -> Result<Response, PageError> {
    let target = RevokeTarget {
        title: "Revoke this application's access?".into(),
        message: REVOKE_MESSAGE.into(),
        action: format!("/settings/account/integrations/authorized/{client_id}/revoke"),
        back: "/settings/account/integrations".into(),
    };
    confirm_page(user, csrf, target)
}

pub async fn revoke_user_app(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Path(client_id): Path<String>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, PageError> {
    let actor = Actor::User(user.id.clone());
    grants::revoke_user_app(&state.store, &actor, &user.id, &client_id, crate::time::now()).await?;
    Ok(Redirect::to("/settings/account/integrations").into_response())
}

pub async fn confirm_revoke_all(SignedIn { user, csrf }: SignedIn) -> Result<Response, PageError> {
    let target = RevokeTarget {
        title: "Revoke access for all applications?".into(),
        message: "Every application you authorized loses access at once: all their tokens and API keys stop working."
            .into(),
        action: "/settings/account/integrations/authorized/revoke-all".into(),
        back: "/settings/account/integrations".into(),
    };
    confirm_page(user, csrf, target)
}

pub async fn revoke_all(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    CsrfForm(_): CsrfForm,
) -> Result<Response, PageError> {
    grants::revoke_all_for_user(&state.store, &user.id, crate::time::now()).await?;
    Ok(Redirect::to("/settings/account/integrations").into_response())
}

pub async fn confirm_revoke_workspace_app(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path((id, client_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    ws::require_manager(&state.store, &Actor::User(user.id.clone()), &id).await?;
    let target = RevokeTarget {
        title: "Revoke this application's access to the workspace?".into(),
        message: format!("{REVOKE_MESSAGE} This covers the authorizations of every member."),
        action: format!("/workspaces/{id}/integrations/authorized/{client_id}/revoke"),
        back: format!("/workspaces/{id}/integrations"),
    };
    confirm_page(user, csrf, target)
}

pub async fn revoke_workspace_app(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Path((id, client_id)): Path<(String, String)>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, PageError> {
    grants::revoke_workspace_app(&state.store, &Actor::User(user.id.clone()), &id, &client_id, crate::time::now())
        .await?;
    Ok(Redirect::to(&format!("/workspaces/{id}/integrations")).into_response())
}
