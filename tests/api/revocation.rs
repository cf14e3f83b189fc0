//! Authorized apps and revocation: per app, all at once, per workspace, by leaving a workspace,
//! and through the operator CLI — each killing every token under the grants at once.

use serde_json::Value;

use crate::audit::{connect_on, new_workspace};
use crate::helpers::oauth::*;
use crate::helpers::{location, stdout_json, Browser, Engine, TestApp};
use crate::on_both_engines;

on_both_engines!(
    authorized_apps_are_listed_and_revoking_one_kills_its_tokens_only,
    revoke_all_kills_every_apps_tokens,
    workspace_managers_see_and_revoke_what_members_authorized,
    leaving_a_workspace_revokes_ones_grants_on_it,
    the_cli_revokes_consent_and_deletes_apps,
    a_revocation_through_another_server_is_honoured_at_once,
    a_revocation_through_another_tessera_process_is_honoured_at_once,
);

const ACCOUNT: &str = "/settings/account/integrations";

async fn connected(app: &TestApp, browser: &Browser, client: &Client) -> Value {
    tokens(app, client, &obtain_code(app, browser, client, &[]).await).await
}

/// Connects, then also mints an API key with the token and obtains a second, unused code for the
/// same user, app and workspace: every kind of credential a revocation must kill.
async fn connected_with_every_credential(app: &TestApp, browser: &Browser, client: &Client) -> Value {
    let mut t = connected(app, browser, client).await;
    let r = reqwest::Client::new()
        .post(app.url("/v1/api-keys"))
        .bearer_auth(t["access_token"].as_str().expect("at"))
        .json(&serde_json::json!({"name": "revocation test"}))
        .send()
        .await
        .expect("mint");
    assert_eq!(r.status(), 201);
    let key: Value = r.json().await.expect("json");
    t["api_key"] = key["api_key"].clone();
    assert_eq!(api_status(app, t["api_key"].as_str().expect("key")).await, 200);
    t["pending_code"] = Value::from(obtain_code(app, browser, client, &[]).await);
    t
}

pub async fn assert_dead(app: &TestApp, client: &Client, t: &Value) {
    let at = t["access_token"].as_str().expect("at");
    assert_eq!(api_status(app, at).await, 401);
    if let Some(key) = t["api_key"].as_str() {
        assert_eq!(api_status(app, key).await, 401, "the API key dies with the grant");
    }
    if let Some(code) = t["pending_code"].as_str() {
        assert_eq!(error_of(exchange(app, client, code).await).await, "invalid_grant", "an unused code dies too");
    }
    let info: Value = post_as(app, "/oauth2/introspect", client, &[("token", at)]).await.json().await.expect("json");
    assert_eq!(info["active"], false);
    let r = refresh(app, client, t["refresh_token"].as_str().expect("rt"), None).await;
    assert_eq!(error_of(r).await, "invalid_grant");
}

async fn authorized_apps_are_listed_and_revoking_one_kills_its_tokens_only(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("user@example.com").await;
    let first = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let second = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let t1 = connected_with_every_credential(&app, &browser, &first).await;
    let t1b = connected(&app, &browser, &first).await;
    let t2 = connected(&app, &browser, &second).await;

    let page = browser.get_html(ACCOUNT).await;
    assert!(page.contains("Authorized OAuth apps"));
    assert_eq!(page.matches(&format!("data-client-id=\"{}\"", first.id)).count(), 1, "one row per app and workspace");
    assert!(page.contains("View your caches") && page.contains("First authorized") && page.contains("Last used"));

    let confirm = format!("{ACCOUNT}/authorized/{}/revoke", first.id);
    assert!(browser.get_html(&confirm).await.contains("stops working at once"));
    let r = browser.submit(&confirm, &confirm, &[]).await;
    assert_eq!(location(&r), ACCOUNT);
    assert_dead(&app, &first, &t1).await;
    assert_dead(&app, &first, &t1b).await;
    assert_eq!(api_status(&app, t2["access_token"].as_str().expect("at")).await, 200, "the other app keeps access");
    assert!(!browser.get_html(ACCOUNT).await.contains(&format!("data-client-id=\"{}\"", first.id)));
}

async fn revoke_all_kills_every_apps_tokens(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("user@example.com").await;
    let first = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let second = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, true);
    let t1 = connected_with_every_credential(&app, &browser, &first).await;
    let t2 = connected_with_every_credential(&app, &browser, &second).await;
    let confirm = format!("{ACCOUNT}/authorized/revoke-all");
    assert_eq!(browser.submit(&confirm, &confirm, &[]).await.status(), 303);
    assert_dead(&app, &first, &t1).await;
    assert_dead(&app, &second, &t2).await;
    assert!(browser.get_html(ACCOUNT).await.contains("No authorized applications."));
}

async fn workspace_managers_see_and_revoke_what_members_authorized(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.signed_in_user("owner@example.com").await;
    let admin = app.signed_in_user("admin@example.com").await;
    let member = app.signed_in_user("member@example.com").await;
    let r = owner.submit("/", "/workspaces", &[("name", "Shared")]).await;
    let ws = location(&r).trim_start_matches("/workspaces/").to_owned();
    for (email, role) in [("admin@example.com", "admin"), ("member@example.com", "member")] {
        stdout_json(&app.cli(&["admin", "add-member", "--workspace", &ws, "--email", email, "--role", role]));
    }
    let client = register(&app, "owner@example.com", &[REDIRECT], ALL_SCOPES, false);
    let html = open_consent(&admin, &auth_url(&app, &client.id, &[])).await;
    let to = location(&decide(&admin, &html, "allow", Some(&ws)).await);
    let t = tokens(&app, &client, &query_param(&to, "code").expect("code")).await;

    let list = format!("/workspaces/{ws}/integrations");
    let page = owner.get_html(&list).await;
    assert!(page.contains(&format!("data-client-id=\"{}\"", client.id)));
    assert!(page.contains("authorized by admin@example.com"));
    assert_eq!(member.get(&list).await.status(), 403, "a member does not see the workspace's list");

    let confirm = format!("{list}/authorized/{}/revoke", client.id);
    let csrf = crate::helpers::hidden_value(&member.get_html("/").await, "csrf_token").expect("csrf");
    assert_eq!(member.post_raw(&confirm, &[("csrf_token", &csrf)]).await.status(), 403);
    assert_eq!(api_status(&app, t["access_token"].as_str().expect("at")).await, 200);
    assert_eq!(owner.submit(&confirm, &confirm, &[]).await.status(), 303);
    assert_dead(&app, &client, &t).await;
}

async fn leaving_a_workspace_revokes_ones_grants_on_it(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.signed_in_user("owner@example.com").await;
    let admin = app.signed_in_user("admin@example.com").await;
    let r = owner.submit("/", "/workspaces", &[("name", "Team")]).await;
    let ws = location(&r).trim_start_matches("/workspaces/").to_owned();
    stdout_json(&app.cli(&[
        "admin",
        "add-member",
        "--workspace",
        &ws,
        "--email",
        "admin@example.com",
        "--role",
        "admin",
    ]));
    let client = register(&app, "owner@example.com", &[REDIRECT], ALL_SCOPES, false);
    let html = open_consent(&admin, &auth_url(&app, &client.id, &[])).await;
    let on_team = tokens(
        &app,
        &client,
        &query_param(&location(&decide(&admin, &html, "allow", Some(&ws)).await), "code").expect("code"),
    )
    .await;
    let on_own = connected(&app, &admin, &client).await;

    let page = owner.get_html(&format!("/workspaces/{ws}")).await;
    let at = page.find("admin@example.com").expect("listed");
    let rest = &page[at..];
    let start = rest.find("/members/").expect("form") + "/members/".len();
    let admin_id = &rest[start..start + rest[start..].find("/remove").expect("remove")];
    let r =
        owner.submit(&format!("/workspaces/{ws}"), &format!("/workspaces/{ws}/members/{admin_id}/remove"), &[]).await;
    assert_eq!(r.status(), 303);
    assert_dead(&app, &client, &on_team).await;
    assert_eq!(
        api_status(&app, on_own["access_token"].as_str().expect("at")).await,
        200,
        "other workspaces keep theirs"
    );
}

async fn the_cli_revokes_consent_and_deletes_apps(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("user@example.com").await;
    let client = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let t = connected_with_every_credential(&app, &browser, &client).await;
    let out =
        stdout_json(&app.cli(&["admin", "revoke-consent", "--email", "user@example.com", "--client-id", &client.id]));
    assert_eq!(out["grants_revoked"], 2, "the connection and the unused code's consent");
    assert_dead(&app, &client, &t).await;

    let t = connected_with_every_credential(&app, &browser, &client).await;
    let out = stdout_json(&app.cli(&["admin", "delete-app", "--client-id", &client.id]));
    assert_eq!(out["deleted"], client.id.as_str());
    assert_eq!(api_status(&app, t["access_token"].as_str().expect("at")).await, 401);
    assert_eq!(api_status(&app, t["api_key"].as_str().expect("key")).await, 401, "a deleted app's API keys die");

    for args in [
        vec!["admin", "delete-app", "--client-id", "app_missing"],
        vec!["admin", "revoke-consent", "--email", "user@example.com", "--client-id", "app_missing"],
        vec!["admin", "revoke-consent", "--email", "ghost@example.com", "--client-id", &client.id],
    ] {
        let out = app.cli(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let error: Value = serde_json::from_slice(&out.stderr).expect("JSON error");
        assert!(error["error"].as_str().expect("message").contains("not found"), "{args:?}");
    }
}

/// Two servers, one database: tokens obtained through A, revoked through B, are refused by A on
/// the very next request, because no server caches what the database says.
async fn a_revocation_through_another_server_is_honoured_at_once(engine: Engine) {
    let a = TestApp::spawn(engine).await;
    let b = a.spawn_beside().await;
    revocations_through_b_are_honoured_by_a(&a, &b).await;
}

/// The same with B a separate `tessera serve` process.
async fn a_revocation_through_another_tessera_process_is_honoured_at_once(engine: Engine) {
    let a = TestApp::spawn(engine).await;
    let b = a.spawn_process_beside().await;
    revocations_through_b_are_honoured_by_a(&a, &b).await;
}

async fn revocations_through_b_are_honoured_by_a(a: &TestApp, b: &TestApp) {
    let browser = a.signed_in_user("user@example.com").await;
    let client = register(a, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    // The same browser on B: its session lives in the database, so B knows it too.
    let on_b = browser.on(&b.base);

    // Revoked in B's console.
    let t = connected(a, &browser, &client).await;
    let at = t["access_token"].as_str().expect("at");
    assert_eq!(api_status(a, at).await, 200);
    assert_eq!(api_status(b, at).await, 200);
    let confirm = format!("{ACCOUNT}/authorized/{}/revoke", client.id);
    assert_eq!(on_b.submit(&confirm, &confirm, &[]).await.status(), 303);
    assert_dead(a, &client, &t).await;

    // Revoked by the partner at B's /oauth2/revoke.
    let t = connected(a, &browser, &client).await;
    assert_eq!(api_status(a, t["access_token"].as_str().expect("at")).await, 200);
    let r = post_as(b, "/oauth2/revoke", &client, &[("token", t["refresh_token"].as_str().expect("rt"))]).await;
    assert_eq!(r.status(), 200);
    assert_dead(a, &client, &t).await;

    // The workspace deleted in B's console.
    let ws = new_workspace(&on_b, "Ephemeral").await;
    let t = connect_on(a, &browser, &client, &ws).await;
    assert_eq!(api_status(a, t["access_token"].as_str().expect("at")).await, 200);
    let delete = format!("/workspaces/{ws}/delete");
    assert_eq!(on_b.submit(&delete, &delete, &[]).await.status(), 303);
    assert_dead(a, &client, &t).await;
}
