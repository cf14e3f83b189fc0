//! The audit log: an entry for every app, authorization, membership and API-key event, in the
//! right logs, with the right actor, never a secret; pagination; who may read which log.

use serde_json::Value;
use tessera::audit::{self, ApiKeyInfo, AuditActor, AuditEvent, Log, PAGE_SIZE};
use tessera::store::Store;

use crate::apps::{create_app, valid_fields};
use crate::helpers::oauth::*;
use crate::helpers::{location, stdout_json, Browser, Engine, TestApp, PASSWORD};
use crate::on_both_engines;

on_both_engines!(
    app_events_are_logged_for_their_owner_without_secrets,
    authorizations_and_every_kind_of_revocation_are_logged_in_both_logs,
    replayed_codes_and_reused_refresh_tokens_are_logged_as_the_system,
    membership_changes_are_logged_and_a_refused_change_leaves_no_entry,
    api_key_events_are_recorded_for_the_resource_api,
    audit_logs_are_paginated_newest_first,
    only_owners_and_admins_read_a_workspace_log_and_users_read_only_their_own,
);

pub const ACCOUNT_LOG: &str = "/settings/account/audit";

/// One row of an audit page.
#[derive(Clone, Debug)]
pub struct Entry {
    pub action: String,
    pub actor: String,
    pub details: String,
}

fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The rows of an audit page, newest first.
pub fn entries(html: &str) -> Vec<Entry> {
    html.split("<tr data-action=\"")
        .skip(1)
        .map(|chunk| {
            let action = chunk[..chunk.find('"').expect("action")].to_owned();
            let row = &chunk[..chunk.find("</tr>").expect("row end")];
            let cells: Vec<String> = row
                .split("<td")
                .skip(1)
                .map(|cell| {
                    let start = cell.find('>').expect("cell") + 1;
                    let end = cell.find("</td>").expect("cell end");
                    unescape(cell[start..end].trim())
                })
                .collect();
            Entry { action, actor: cells[1].clone(), details: cells[3].clone() }
        })
        .collect()
}

/// Loads an audit page, checks that no secret is on it, and returns its rows.
pub async fn read_log(browser: &Browser, path: &str) -> Vec<Entry> {
    let html = browser.get_html(path).await;
    assert!(!html.contains("tes_"), "a secret-shaped string on {path}: {html}");
    entries(&html)
}

/// The entries with this action.
pub fn with_action<'a>(log: &'a [Entry], action: &str) -> Vec<&'a Entry> {
    log.iter().filter(|e| e.action == action).collect()
}

fn one<'a>(log: &'a [Entry], action: &str) -> &'a Entry {
    let found = with_action(log, action);
    assert_eq!(found.len(), 1, "exactly one {action} in {log:#?}");
    found[0]
}

fn code_by_id(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = html.find(&marker).expect("element") + marker.len();
    let end = html[start..].find('<').expect("end") + start;
    html[start..end].trim().to_owned()
}

pub async fn new_workspace(browser: &Browser, name: &str) -> String {
    let r = browser.submit("/", "/workspaces", &[("name", name)]).await;
    assert_eq!(r.status(), 303);
    location(&r).trim_start_matches("/workspaces/").to_owned()
}

fn add_member(app: &TestApp, ws: &str, email: &str, role: &str) {
    stdout_json(&app.cli(&["admin", "add-member", "--workspace", ws, "--email", email, "--role", role]));
}

/// Authorizes `client` on workspace `ws` as the user at `browser`, and returns the tokens.
pub async fn connect_on(app: &TestApp, browser: &Browser, client: &Client, ws: &str) -> Value {
    let html = open_consent(browser, &auth_url(app, &client.id, &[])).await;
    let to = location(&decide(browser, &html, "allow", Some(ws)).await);
    tokens(app, client, &query_param(&to, "code").expect("code")).await
}

async fn app_events_are_logged_for_their_owner_without_secrets(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("owner@example.com").await;
    let created = create_app(&browser, "/settings/account/integrations", &valid_fields()).await.text().await.unwrap();
    let client_id = code_by_id(&created, "client-id");
    let first_secret = code_by_id(&created, "client-secret");
    let page = format!("/apps/{client_id}");
    let fields = [
        ("name", "Partner Dashboard v2"),
        ("scope", "caches:read"),
        ("scope", "databases:write"),
        ("redirect_uris", "https://partner.example/callback\nhttp://localhost:3000/callback"),
        ("logo_url", "https://partner.example/logo.png"),
        ("homepage_url", "https://partner.example"),
    ];
    assert_eq!(browser.submit(&page, &page, &fields).await.status(), 303);
    let rotated = browser.submit(&page, &format!("{page}/rotate-secret"), &[]).await.text().await.unwrap();
    let second_secret = code_by_id(&rotated, "client-secret");
    let r = browser.submit(&format!("{page}/delete"), &format!("{page}/delete"), &[]).await;
    assert_eq!(r.status(), 303);

    let html = browser.get_html(ACCOUNT_LOG).await;
    assert!(!html.contains(&first_secret) && !html.contains(&second_secret));
    let log = read_log(&browser, ACCOUNT_LOG).await;
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["app.deleted", "app.secret_rotated", "app.edited", "app.created"], "newest first");
    assert!(log.iter().all(|e| e.actor == "owner@example.com"));
    let created = one(&log, "app.created");
    assert!(created.details.contains("“Partner Dashboard”") && created.details.contains(&client_id));
    assert!(created.details.contains("confidential") && created.details.contains("caches:read databases:write"));
    assert!(one(&log, "app.edited").details.ends_with(": name"), "{:?}", one(&log, "app.edited"));
    assert!(one(&log, "app.secret_rotated").details.contains("previous secret stopped working"));
    assert!(one(&log, "app.deleted").details.contains("0 authorizations ended"));
    let page_text = browser.get_html(ACCOUNT_LOG).await;
    for title in ["App created", "App edited", "Client secret rotated", "App deleted"] {
        assert!(page_text.contains(title), "{title}");
    }

    // A workspace-level app goes to the workspace's log, not the user's; names are escaped.
    let ws = new_workspace(&browser, "Team").await;
    let mut fields = valid_fields();
    fields[0] = ("name", "<script>alert(1)</script>");
    let r = create_app(&browser, &format!("/workspaces/{ws}/integrations"), &fields).await;
    assert_eq!(r.status(), 200);
    let ws_html = browser.get_html(&format!("/workspaces/{ws}/audit")).await;
    assert!(!ws_html.contains("<script>alert(1)"), "escaped");
    let ws_log = read_log(&browser, &format!("/workspaces/{ws}/audit")).await;
    assert!(one(&ws_log, "app.created").details.contains("“<script>alert(1)</script>”"));
    assert_eq!(with_action(&read_log(&browser, ACCOUNT_LOG).await, "app.created").len(), 1);

    // The operator's CLI is "operator"; a public app has no secret to leak either.
    let out = stdout_json(&app.cli(&[
        "admin",
        "create-app",
        "--owner-user",
        "owner@example.com",
        "--name",
        "From the CLI",
        "--redirect-uri",
        REDIRECT,
        "--scope",
        "caches:read",
    ]));
    let cli_id = out["client_id"].as_str().unwrap();
    stdout_json(&app.cli(&["admin", "delete-app", "--client-id", cli_id]));
    let log = read_log(&browser, ACCOUNT_LOG).await;
    assert_eq!(log[0].action, "app.deleted");
    assert_eq!(log[0].actor, "operator");
    assert_eq!(log[1].action, "app.created");
    assert_eq!(log[1].actor, "operator");
    assert!(log[1].details.contains(cli_id) && !log[1].details.contains(out["client_secret"].as_str().unwrap()));
}

async fn authorizations_and_every_kind_of_revocation_are_logged_in_both_logs(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.signed_in_user("owner@example.com").await;
    let admin = app.signed_in_user("admin@example.com").await;
    let ws = new_workspace(&owner, "Shared").await;
    add_member(&app, &ws, "admin@example.com", "admin");
    let client = register(&app, "owner@example.com", &[REDIRECT], ALL_SCOPES, false);
    let ws_log = format!("/workspaces/{ws}/audit");

    // Granted: in the user's log and the workspace's, with the app, workspace and scopes.
    let t = connect_on(&app, &admin, &client, &ws).await;
    for log in [read_log(&admin, ACCOUNT_LOG).await, read_log(&owner, &ws_log).await] {
        let granted = &log[0];
        assert_eq!(granted.action, "authorization.granted");
        assert_eq!(granted.actor, "admin@example.com");
        assert!(granted.details.contains(&client.id) && granted.details.contains("“Partner”"));
        assert!(granted.details.contains("“Shared”") && granted.details.contains("caches:read databases:write"));
    }

    // Revoked by the user who gave it.
    let confirm = format!("/settings/account/integrations/authorized/{}/revoke", client.id);
    assert_eq!(admin.submit(&confirm, &confirm, &[]).await.status(), 303);
    for log in [read_log(&admin, ACCOUNT_LOG).await, read_log(&owner, &ws_log).await] {
        assert_eq!(log[0].action, "authorization.revoked");
        assert_eq!(log[0].actor, "admin@example.com");
        assert!(log[0].details.contains("by the user who gave it") && log[0].details.contains(&client.id));
    }

    // Revoked by a manager of the workspace: the owner acts, the admin's log learns of it.
    connect_on(&app, &admin, &client, &ws).await;
    let confirm = format!("/workspaces/{ws}/integrations/authorized/{}/revoke", client.id);
    assert_eq!(owner.submit(&confirm, &confirm, &[]).await.status(), 303);
    for log in [read_log(&admin, ACCOUNT_LOG).await, read_log(&owner, &ws_log).await] {
        assert_eq!(log[0].action, "authorization.revoked");
        assert_eq!(log[0].actor, "owner@example.com");
        assert!(log[0].details.contains("by a manager of the workspace"));
        assert!(log[0].details.contains("admin@example.com gave"));
    }

    // Revoked by the operator.
    connect_on(&app, &admin, &client, &ws).await;
    stdout_json(&app.cli(&["admin", "revoke-consent", "--email", "admin@example.com", "--client-id", &client.id]));
    let log = read_log(&admin, ACCOUNT_LOG).await;
    assert_eq!((log[0].action.as_str(), log[0].actor.as_str()), ("authorization.revoked", "operator"));
    assert!(log[0].details.contains("by the operator"));

    // Revoked by the application itself through /oauth2/revoke (RFC 7009).
    let t2 = connect_on(&app, &admin, &client, &ws).await;
    let r = post_as(&app, "/oauth2/revoke", &client, &[("token", t2["refresh_token"].as_str().unwrap())]).await;
    assert_eq!(r.status(), 200);
    let log = read_log(&owner, &ws_log).await;
    assert_eq!(log[0].action, "authorization.revoked");
    assert_eq!(log[0].actor, format!("application {}", client.id));
    assert!(log[0].details.contains("by the application"));

    // Revoked because the member was removed: a membership entry and a revocation entry.
    connect_on(&app, &admin, &client, &ws).await;
    let members = owner.get_html(&format!("/workspaces/{ws}")).await;
    let at = members.find("admin@example.com").unwrap();
    let start = members[at..].find("/members/").unwrap() + at + "/members/".len();
    let admin_id = &members[start..start + members[start..].find("/remove").unwrap()];
    let r =
        owner.submit(&format!("/workspaces/{ws}"), &format!("/workspaces/{ws}/members/{admin_id}/remove"), &[]).await;
    assert_eq!(r.status(), 303);
    for log in [read_log(&admin, ACCOUNT_LOG).await, read_log(&owner, &ws_log).await] {
        let revoked = one(&log[..2], "authorization.revoked");
        assert!(revoked.details.contains("no longer a member"), "{revoked:?}");
        let removed = one(&log[..2], "membership.removed");
        assert_eq!(removed.actor, "owner@example.com");
        assert!(removed.details.contains("Removed admin@example.com from the workspace “Shared”; 1 authorization"));
    }
    // Five consents, five revocations, in both logs; and the first tokens are long dead.
    let ws_entries = read_log(&owner, &ws_log).await;
    assert_eq!(with_action(&ws_entries, "authorization.granted").len(), 5);
    assert_eq!(with_action(&ws_entries, "authorization.revoked").len(), 5);
    assert_eq!(api_status(&app, t["access_token"].as_str().unwrap()).await, 401);
}

async fn replayed_codes_and_reused_refresh_tokens_are_logged_as_the_system(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.signed_in_user("owner@example.com").await;
    let ws = new_workspace(&owner, "Prod").await;
    let client = register(&app, "owner@example.com", &[REDIRECT], ALL_SCOPES, false);
    let ws_log = format!("/workspaces/{ws}/audit");

    let html = open_consent(&owner, &auth_url(&app, &client.id, &[])).await;
    let code = query_param(&location(&decide(&owner, &html, "allow", Some(&ws)).await), "code").unwrap();
    assert_eq!(exchange(&app, &client, &code).await.status(), 200);
    assert_eq!(error_of(exchange(&app, &client, &code).await).await, "invalid_grant");
    for log in [read_log(&owner, ACCOUNT_LOG).await, read_log(&owner, &ws_log).await] {
        assert_eq!(log[0].action, "authorization.code_replayed");
        assert_eq!(log[0].actor, "system");
        assert!(log[0].details.contains(&client.id) && log[0].details.contains("“Prod”"));
        assert!(!log[0].details.contains(&code));
    }
    // A third use changes nothing more: the grant is already revoked.
    exchange(&app, &client, &code).await;
    assert_eq!(with_action(&read_log(&owner, ACCOUNT_LOG).await, "authorization.code_replayed").len(), 1);

    let t = connect_on(&app, &owner, &client, &ws).await;
    let old = t["refresh_token"].as_str().unwrap();
    assert_eq!(refresh(&app, &client, old, None).await.status(), 200);
    assert_eq!(error_of(refresh(&app, &client, old, None).await).await, "invalid_grant");
    for log in [read_log(&owner, ACCOUNT_LOG).await, read_log(&owner, &ws_log).await] {
        assert_eq!(log[0].action, "authorization.refresh_token_reused");
        assert_eq!(log[0].actor, "system");
        assert!(log[0].details.contains("owner@example.com gave it on the workspace “Prod” was revoked"));
    }
    let page = owner.get_html(ACCOUNT_LOG).await;
    assert!(page.contains("Refresh token reused") && page.contains("Authorization code replayed"));
}

async fn membership_changes_are_logged_and_a_refused_change_leaves_no_entry(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.signed_in_user("owner@example.com").await;
    let member = app.signed_in_user("member@example.com").await;
    app.signed_in_user("viaops@example.com").await;
    let ws = new_workspace(&owner, "Crew").await;
    let settings = format!("/workspaces/{ws}");
    let ws_log = format!("/workspaces/{ws}/audit");
    let add = format!("/workspaces/{ws}/members");
    let r = owner.submit(&settings, &add, &[("email", "member@example.com"), ("role", "member")]).await;
    assert_eq!(r.status(), 303);
    add_member(&app, &ws, "viaops@example.com", "admin");

    let log = read_log(&owner, &ws_log).await;
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].action.as_str(), log[0].actor.as_str()), ("membership.added", "operator"));
    assert!(log[0].details.contains("Added viaops@example.com to the workspace “Crew” as admin"));
    assert_eq!((log[1].action.as_str(), log[1].actor.as_str()), ("membership.added", "owner@example.com"));
    assert!(log[1].details.contains("Added member@example.com to the workspace “Crew” as member"));
    let mine = read_log(&member, ACCOUNT_LOG).await;
    assert_eq!(mine.len(), 1, "the added user's own log records it too");
    assert_eq!(mine[0].action, "membership.added");

    // A refused change (already a member) rolls back with its entry.
    let r = owner.submit(&settings, &add, &[("email", "member@example.com"), ("role", "admin")]).await;
    assert_eq!(r.status(), 409);
    assert_eq!(read_log(&owner, &ws_log).await.len(), 2);

    // Leaving is recorded as such, by the one who left.
    let page = member.get_html(&settings).await;
    let start = page.find("/members/").unwrap() + "/members/".len();
    let member_id = &page[start..start + page[start..].find("/remove").unwrap()];
    let r = member.submit(&settings, &format!("/workspaces/{ws}/members/{member_id}/remove"), &[]).await;
    assert_eq!(r.status(), 303);
    let log = read_log(&owner, &ws_log).await;
    assert_eq!((log[0].action.as_str(), log[0].actor.as_str()), ("membership.removed", "member@example.com"));
    assert!(log[0].details.contains("member@example.com left the workspace “Crew”; 0 authorizations"));
    assert_eq!(read_log(&member, ACCOUNT_LOG).await[0].action, "membership.removed");
}

async fn api_key_events_are_recorded_for_the_resource_api(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let user = stdout_json(&app.cli(&["admin", "create-user", "--email", "dev@example.com", "--password", PASSWORD]));
    let user_id = user["id"].as_str().unwrap();
    let browser = app.browser();
    browser.log_in("dev@example.com", PASSWORD).await;
    let ws = new_workspace(&browser, "Keys").await;

    // What the resource API will do when it mints and revokes a key: record inside its transaction.
    let store = Store::connect(&app.db.url).await.unwrap();
    let key = ApiKeyInfo { key_id: "key_123".into(), key_name: "deploy bot".into(), client_id: Some("app_abc".into()) };
    let mut tx = store.begin().await.unwrap();
    let actor = AuditActor::User("dev@example.com".into());
    audit::api_key_minted(&mut tx, &actor, &ws, Some(user_id), key.clone(), 1_700_000_000).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    audit::api_key_revoked(&mut tx, &AuditActor::Operator, &ws, None, key, 1_700_000_100).await.unwrap();
    tx.commit().await.unwrap();
    // A rolled-back transaction leaves nothing behind.
    let mut tx = store.begin().await.unwrap();
    let event =
        AuditEvent::MemberAdded { email: "x@example.com".into(), role: "member".into(), workspace_name: "K".into() };
    audit::record(&mut tx, &AuditActor::System, &[Log::User(user_id)], &event, 1).await.unwrap();
    tx.rollback().await.unwrap();

    let ws_log = read_log(&browser, &format!("/workspaces/{ws}/audit")).await;
    assert_eq!(ws_log.len(), 2);
    assert_eq!((ws_log[0].action.as_str(), ws_log[0].actor.as_str()), ("api_key.revoked", "operator"));
    assert_eq!(ws_log[1].action, "api_key.minted");
    assert!(ws_log[1].details.contains("“deploy bot” (key_123) for the workspace “Keys”"), "{:?}", ws_log[1]);
    assert!(ws_log[1].details.contains("app_abc"));
    let mine = read_log(&browser, ACCOUNT_LOG).await;
    assert_eq!(mine.len(), 1, "minted goes to the user's log too; the revocation named no user");
    assert_eq!(mine[0].action, "api_key.minted");
    assert!(browser.get_html(ACCOUNT_LOG).await.contains("2023-11-14 22:13:20 UTC"), "times to the second");
}

async fn audit_logs_are_paginated_newest_first(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let user = stdout_json(&app.cli(&["admin", "create-user", "--email", "many@example.com", "--password", PASSWORD]));
    let user_id = user["id"].as_str().unwrap();
    let browser = app.browser();
    browser.log_in("many@example.com", PASSWORD).await;
    let other = app.signed_in_user("other@example.com").await;
    let other_ws = new_workspace(&other, "Other").await;
    other
        .submit(
            &format!("/workspaces/{other_ws}"),
            &format!("/workspaces/{other_ws}/members"),
            &[("email", "many@example.com"), ("role", "member")],
        )
        .await;

    // 2 pages and a bit, all in the same second: the order is still the order of writing.
    let total = 2 * PAGE_SIZE + 7;
    let store = Store::connect(&app.db.url).await.unwrap();
    let mut tx = store.begin().await.unwrap();
    for i in 0..total {
        let event = AuditEvent::MemberAdded {
            email: format!("n{i}@example.com"),
            role: "member".into(),
            workspace_name: "W".into(),
        };
        audit::record(&mut tx, &AuditActor::System, &[Log::User(user_id)], &event, 1_700_000_000).await.unwrap();
    }
    tx.commit().await.unwrap();

    let mut seen = Vec::new();
    let mut path = ACCOUNT_LOG.to_owned();
    let mut pages = 0;
    loop {
        let html = browser.get_html(&path).await;
        pages += 1;
        let rows = entries(&html);
        assert!(rows.len() <= PAGE_SIZE);
        seen.extend(rows.into_iter().map(|e| e.details));
        assert_eq!(html.contains(">Newest</a>"), pages > 1);
        match html.find("?before=") {
            Some(at) => {
                let cursor = &html[at + "?before=".len()..];
                path = format!("{ACCOUNT_LOG}?before={}", &cursor[..cursor.find('"').unwrap()]);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    // Newest first by order of writing, not by the recorded time: the 107 (stamped 2023) come
    // before the entry written earlier when the other workspace added this user.
    assert_eq!(seen.len(), total + 1);
    let expected: Vec<String> =
        (0..total).rev().map(|i| format!("Added n{i}@example.com to the workspace “W” as member")).collect();
    assert_eq!(seen[..total], expected[..]);
    assert!(seen[total].contains("Added many@example.com to the workspace “Other”"));

    // A cursor is an entry of this very log: anything else is refused, and reveals nothing.
    assert_eq!(browser.get(&format!("{ACCOUNT_LOG}?before=evt_nope")).await.status(), 400);
    let first_page = browser.get_html(ACCOUNT_LOG).await;
    let at = first_page.find("?before=").unwrap() + "?before=".len();
    let my_cursor = &first_page[at..at + first_page[at..].find('"').unwrap()];
    assert_eq!(other.get(&format!("{ACCOUNT_LOG}?before={my_cursor}")).await.status(), 400);
}

async fn only_owners_and_admins_read_a_workspace_log_and_users_read_only_their_own(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.signed_in_user("owner@example.com").await;
    let admin = app.signed_in_user("admin@example.com").await;
    let member = app.signed_in_user("member@example.com").await;
    let outsider = app.signed_in_user("outsider@example.com").await;
    let ws = new_workspace(&owner, "Guarded").await;
    add_member(&app, &ws, "admin@example.com", "admin");
    add_member(&app, &ws, "member@example.com", "member");
    let log = format!("/workspaces/{ws}/audit");

    assert_eq!(read_log(&owner, &log).await.len(), 2);
    assert_eq!(read_log(&admin, &log).await.len(), 2);
    assert_eq!(member.get(&log).await.status(), 403);
    assert_eq!(outsider.get(&log).await.status(), 404);
    assert_eq!(outsider.get("/workspaces/ws_missing/audit").await.status(), 404);
    let r = app.browser().get(&log).await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/login?next="));
    let r = app.browser().get(ACCOUNT_LOG).await;
    assert_eq!(r.status(), 303);

    // The pages are linked where people look for them.
    assert!(owner.get_html(&format!("/workspaces/{ws}")).await.contains(&format!("href=\"{log}\"")));
    assert!(owner.get_html(&format!("/workspaces/{ws}/integrations")).await.contains(&format!("href=\"{log}\"")));
    assert!(!member.get_html(&format!("/workspaces/{ws}")).await.contains(&log));
    assert!(owner.get_html("/settings/account/integrations").await.contains(&format!("href=\"{ACCOUNT_LOG}\"")));

    // Each user's own log holds only what concerns them.
    assert_eq!(read_log(&owner, ACCOUNT_LOG).await.len(), 0);
    assert!(owner.get_html(ACCOUNT_LOG).await.contains("Nothing has been recorded yet."));
    let mine = read_log(&member, ACCOUNT_LOG).await;
    assert_eq!(mine.len(), 1);
    assert!(mine[0].details.contains("member@example.com"));
    assert!(read_log(&outsider, ACCOUNT_LOG).await.is_empty());
}
