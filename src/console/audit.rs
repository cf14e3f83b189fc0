//! The audit logs: Settings -> Account -> Audit log (your own) and Workspace -> Settings ->
//! Audit log (owners and admins), newest first, a page at a time.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use minijinja::{context, Value};
use serde::Deserialize;

use crate::accounts::workspaces as ws;
use crate::accounts::{Actor, User};
use crate::app::AppState;
use crate::audit::{self, Page};

use super::{render, PageError, SignedIn};

#[derive(Deserialize)]
pub struct Cursor {
    /// The id of the last entry of the previous page.
    #[serde(default)]
    before: String,
}

pub async fn account_log(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Query(cursor): Query<Cursor>,
) -> Result<Response, PageError> {
    let page = audit::user_log(&state.store, &user.id, Some(&cursor.before)).await?;
    let log = LogPage {
        title: "Your audit log".into(),
        intro:
            "What you, the operator and Tessera did to your apps, your authorizations, your API keys and your workspace memberships.",
        url: "/settings/account/audit".into(),
        back: ("/settings/account/integrations".into(), "Integrations".into()),
    };
    log_page(user, csrf, log, page, !cursor.before.is_empty())
}

pub async fn workspace_log(
    State(state): State<AppState>,
    SignedIn { user, csrf }: SignedIn,
    Path(id): Path<String>,
    Query(cursor): Query<Cursor>,
) -> Result<Response, PageError> {
    let actor = Actor::User(user.id.clone());
    // Outsiders learn nothing (404) before members are refused (403).
    let view = ws::view(&state.store, &actor, &id).await?;
    let page = audit::workspace_log(&state.store, &actor, &id, Some(&cursor.before)).await?;
    let log = LogPage {
        title: format!("{} · Audit log", view.workspace.name),
        intro:
            "What members, the operator and Tessera did to this workspace's apps, authorizations, API keys and members.",
        url: format!("/workspaces/{id}/audit"),
        back: (format!("/workspaces/{id}"), "Workspace settings".into()),
    };
    log_page(user, csrf, log, page, !cursor.before.is_empty())
}

struct LogPage {
    title: String,
    intro: &'static str,
    url: String,
    back: (String, String),
}

fn log_page(user: User, csrf: String, log: LogPage, page: Page, paged: bool) -> Result<Response, PageError> {
    let rendered = render(
        "audit.html",
        context! {
            user, csrf, paged,
            title => log.title, intro => log.intro, url => log.url,
            back_url => log.back.0, back_label => log.back.1,
            entries => Value::from_serialize(&page.entries),
            older => page.older,
        },
    )?;
    Ok(rendered.into_response())
}
