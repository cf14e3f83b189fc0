//! Workspace -> Resources: the caches, rules, databases and API keys of a workspace, so users see
//! what partners did. Every member can look; owners and admins create, delete and revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{context, Value};

use crate::accounts::workspaces as ws;
use crate::accounts::{Actor, Role};
use crate::api::problem::ApiError;
use crate::app::AppState;
use crate::apps::{Scope, ScopeSet};
use crate::audit::{self, ApiKeyInfo, AuditActor};
use crate::credentials::{new_id, IssuedSecret, SecretKind};
use crate::store::api_keys::ApiKeyRow;
use crate::store::caches::{CacheRow, RuleRow};
use crate::store::databases::DatabaseRow;
use crate::store::{self, Page};

use super::{render, CsrfForm, PageError, SignedIn};

const ALL: Page = Page { after_time: i64::MIN, after_id: String::new(), limit: 1000 };

fn problem_text(e: ApiError) -> Result<String, PageError> {
    match e {
        ApiError::Validation(errors) => {
            Ok(errors.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))
        }
        ApiError::Conflict(why) => Ok(why),
        other => Err(PageError::Internal(anyhow::anyhow!("{other:?}"))),
    }
}

pub async fn page(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    render_page(&state, user, csrf, &id, None, None, StatusCode::OK).await
}

async fn render_page(
    state: &AppState,
    user: crate::accounts::User,
    csrf: String,
    id: &str,
    error: Option<String>,
    new_key: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let view = ws::view(&state.store, &Actor::User(user.id.clone()), id).await?;
    let can_manage = view.role.is_some_and(Role::can_manage);
    let db = state.store.reader();
    let caches = store::caches::list(&state.store, id, &ALL).await?;
    let mut cache_views = Vec::new();
    for c in &caches {
        let rules = store::caches::list_rules(db, &c.id, &ALL).await?;
        let rules: Vec<Value> = rules
            .iter()
            .map(|r| context! { id => r.id, name => r.name, rule_type => r.rule_type, match_text => r.match_text, ttl => r.ttl_seconds })
            .collect();
        cache_views.push(context! {
            id => c.id, name => c.name, database_type => c.database_type, host => c.origin_host, port => c.origin_port,
            caching_enabled => c.caching_enabled == 1, default_behaviour => c.default_behaviour, created_at => c.created_at, rules,
        });
    }
    let databases: Vec<Value> = store::databases::list(&state.store, id, &ALL)
        .await?
        .iter()
        .map(|d| {
            let active = d.state == "active";
            // The password is shown to owners and admins only, inside the ready-to-copy command.
            let command = match (active && can_manage, &d.endpoint, d.port) {
                (true, Some(host), Some(port)) => Some(format!("redis-cli -h {host} -p {port} -a {} --no-auth-warning", d.password)),
                _ => None,
            };
            context! {
                id => d.id, name => d.name, region => d.region, state => d.state, tls => d.tls == 1, created_at => d.created_at,
                endpoint => d.endpoint.clone().filter(|_| active), port => d.port.filter(|_| active),
                reason => d.failure_reason, command,
            }
        })
        .collect();
    let keys: Vec<Value> = store::api_keys::for_workspace(db, id)
        .await?
        .iter()
        .map(|k| context! { id => k.id, name => k.name, scopes => ScopeSet::from_stored(&k.scopes).names(), created_at => k.created_at, via_partner => k.grant_id.is_some() })
        .collect();
    let scopes: Vec<Value> =
        Scope::ALL.iter().map(|s| context! { name => s.as_str(), description => s.description() }).collect();
    let page = render(
        "resources.html",
        context! {
            user, csrf, error, new_key, can_manage, caches => cache_views, databases, keys, scopes,
            workspace => context! { id => view.workspace.id, name => view.workspace.name },
            regions => state.settings.resources.regions,
            data_plane => state.settings.data_plane.provisioner != crate::config::Provisioner::None,
            database_types => crate::api::caches::DATABASE_TYPES,
        },
    )?;
    Ok((status, page).into_response())
}

async fn manager(state: &AppState, user_id: &str, id: &str) -> Result<(), PageError> {
    ws::require_manager(&state.store, &Actor::User(user_id.to_owned()), id).await?;
    Ok(())
}

fn back(id: &str) -> Response {
    Redirect::to(&format!("/workspaces/{id}/resources")).into_response()
}

/// What a form action did: done, or a message to show on the page.
enum Outcome {
    Done,
    Refused(String),
}

async fn finish(
    state: &AppState,
    user: crate::accounts::User,
    csrf: String,
    id: &str,
    outcome: Outcome,
) -> Result<Response, PageError> {
    match outcome {
        Outcome::Done => Ok(back(id)),
        Outcome::Refused(message) => {
            render_page(state, user, csrf, id, Some(message), None, StatusCode::BAD_REQUEST).await
        }
    }
}

fn unique_or(e: store::StoreError, what: &str, name: &str) -> Result<Outcome, PageError> {
    if e.is_unique_violation() {
        Ok(Outcome::Refused(format!("A {what} named {name} already exists.")))
    } else {
        Err(e.into())
    }
}

pub async fn create_cache(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, PageError> {
    manager(&state, &user.id, &id).await?;
    let now = crate::time::now();
    let row = CacheRow {
        id: new_id("cache").to_lowercase(),
        workspace_id: id.clone(),
        name: form.text("name").trim().to_owned(),
        description: form.text("description").trim().to_owned(),
        database_type: form.text("database_type").to_owned(),
        origin_host: form.text("host").trim().to_owned(),
        origin_port: form.text("port").trim().parse().unwrap_or(0),
        caching_enabled: 1,
        default_behaviour: "auto_cached".into(),
        purged_at: None,
        created_at: now,
        updated_at: now,
    };
    let outcome = match crate::api::caches::check(&row) {
        Err(e) => Outcome::Refused(problem_text(e)?),
        Ok(()) => match store::caches::insert(state.store.writer(), &row).await {
            Ok(()) => Outcome::Done,
            Err(e) => unique_or(e, "cache", &row.name)?,
        },
    };
    finish(&state, user, csrf, &id, outcome).await
}

pub async fn delete_cache(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Path((id, cache_id)): Path<(String, String)>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, PageError> {
    manager(&state, &user.id, &id).await?;
    if !store::caches::delete(state.store.writer(), &id, &cache_id).await? {
        return Err(PageError::NotFound);
    }
    Ok(back(&id))
}

pub async fn create_rule(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path((id, cache_id)): Path<(String, String)>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, PageError> {
    manager(&state, &user.id, &id).await?;
    store::caches::get(state.store.reader(), &id, &cache_id).await?.ok_or(PageError::NotFound)?;
    let now = crate::time::now();
    let row = RuleRow {
        id: new_id("rule"),
        cache_id,
        name: form.text("name").trim().to_owned(),
        rule_type: form.text("type").to_owned(),
        match_text: form.text("match").trim().to_owned(),
        ttl_seconds: form.text("ttl_seconds").trim().parse().unwrap_or(-1),
        created_at: now,
        updated_at: now,
    };
    let outcome = match crate::api::cache_rules::check(&row) {
        Err(e) => Outcome::Refused(problem_text(e)?),
        Ok(()) => match store::caches::insert_rule(state.store.writer(), &row).await {
            Ok(()) => Outcome::Done,
            Err(e) => unique_or(e, "rule", &row.name)?,
        },
    };
    finish(&state, user, csrf, &id, outcome).await
}

pub async fn delete_rule(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Path((id, cache_id, rule_id)): Path<(String, String, String)>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, PageError> {
    manager(&state, &user.id, &id).await?;
    store::caches::get(state.store.reader(), &id, &cache_id).await?.ok_or(PageError::NotFound)?;
    if !store::caches::delete_rule(state.store.writer(), &cache_id, &rule_id).await? {
        return Err(PageError::NotFound);
    }
    Ok(back(&id))
}

pub async fn create_database(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, PageError> {
    manager(&state, &user.id, &id).await?;
    let name = form.text("name").trim().to_owned();
    let region = form.text("region").to_owned();
    let mut errors = Vec::new();
    crate::api::extract::resource_name("name", &name, &mut errors);
    if !state.settings.resources.regions.contains(&region) {
        errors.push(crate::api::problem::FieldError::new("region", "choose one of the listed regions"));
    }
    let now = crate::time::now();
    let outcome = if errors.is_empty() {
        let row = DatabaseRow::requested(&id, name.clone(), region, false, now);
        match state.store.write_all(vec![store::databases::insert(&row)]).await {
            Ok(_) => Outcome::Done,
            Err(e) => unique_or(e, "database", &name)?,
        }
    } else {
        Outcome::Refused(problem_text(ApiError::Validation(errors))?)
    };
    finish(&state, user, csrf, &id, outcome).await
}

pub async fn delete_database(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Path((id, db_id)): Path<(String, String)>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, PageError> {
    manager(&state, &user.id, &id).await?;
    if !store::databases::request_delete(state.store.writer(), &id, &db_id, crate::time::now()).await? {
        return Err(PageError::NotFound);
    }
    Ok(back(&id))
}

pub async fn create_key(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, PageError> {
    manager(&state, &user.id, &id).await?;
    let scopes = ScopeSet::from_names(form.all("scope"));
    let name = form.text("name").trim().to_owned();
    let refusal = match (&scopes, crate::api::api_keys::check_name(&name)) {
        (_, Err(e)) => Some(problem_text(e)?),
        (Err(e), _) => Some(e.clone()),
        (Ok(set), _) if set.is_empty() => Some("Choose at least one scope.".to_owned()),
        _ => None,
    };
    if let Some(message) = refusal {
        return finish(&state, user, csrf, &id, Outcome::Refused(message)).await;
    }
    let secret = IssuedSecret::generate(SecretKind::ApiKey);
    let row = ApiKeyRow {
        id: new_id("key"),
        key_hash: secret.hash().as_str().to_owned(),
        workspace_id: id.clone(),
        grant_id: None,
        created_by_user_id: user.id.clone(),
        name,
        scopes: scopes.unwrap_or_default().to_string(),
        created_at: crate::time::now(),
        last_used_at: None,
        revoked_at: None,
    };
    let now = row.created_at;
    let mut tx = state.store.begin().await?;
    store::api_keys::insert(&mut *tx, &row).await?;
    let info = ApiKeyInfo { key_id: row.id.clone(), key_name: row.name.clone(), client_id: None };
    audit::api_key_minted(&mut tx, &AuditActor::User(user.email.clone()), &id, Some(&user.id), info, now).await?;
    tx.commit().await.map_err(store::StoreError::from)?;
    render_page(&state, user, csrf, &id, None, Some(secret.into_exposed()), StatusCode::OK).await
}

pub async fn revoke_key(
    State(state): State<AppState>,
    SignedIn { user, .. }: SignedIn,
    Path((id, key_id)): Path<(String, String)>,
    CsrfForm(_): CsrfForm,
) -> Result<Response, PageError> {
    manager(&state, &user.id, &id).await?;
    let key = store::api_keys::get(state.store.reader(), &id, &key_id).await?.ok_or(PageError::NotFound)?;
    let now = crate::time::now();
    let mut tx = state.store.begin().await?;
    if store::api_keys::revoke(&mut *tx, &id, &key_id, now).await? {
        let info = ApiKeyInfo { key_id: key.id, key_name: key.name, client_id: None };
        audit::api_key_revoked(&mut tx, &AuditActor::User(user.email.clone()), &id, Some(&user.id), info, now).await?;
    }
    tx.commit().await.map_err(store::StoreError::from)?;
    Ok(back(&id))
}
