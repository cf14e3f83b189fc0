//! Workspace -> Resources in the console: users see what partners made, and owners and admins
//! manage caches, rules, databases and API keys there too.

use serde_json::{json, Value};

use crate::helpers::oauth::*;
use crate::helpers::{hidden_value, location, stdout_json, Engine, TestApp};
use crate::on_both_engines;

on_both_engines!(
    what_a_partner_made_shows_in_the_console_for_every_member,
    owners_manage_resources_and_api_keys_in_the_console,
);

async fn personal_workspace(browser: &crate::helpers::Browser) -> String {
    let home = browser.get_html("/").await;
    let at = home.find("/workspaces/ws_").expect("a workspace link") + "/workspaces/".len();
    home[at..at + home[at..].find('"').expect("end")].to_owned()
}

async fn what_a_partner_made_shows_in_the_console_for_every_member(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.signed_in_user("owner@example.com").await;
    let member = app.signed_in_user("member@example.com").await;
    let outsider = app.signed_in_user("outsider@example.com").await;
    let ws = personal_workspace(&owner).await;
    stdout_json(&app.cli(&[
        "admin",
        "add-member",
        "--workspace",
        &ws,
        "--email",
        "member@example.com",
        "--role",
        "member",
    ]));
    let client = register(&app, "owner@example.com", &[REDIRECT], ALL_SCOPES, false);
    let token = tokens(&app, &client, &obtain_code(&app, &owner, &client, &[("scope", ALL_SCOPES)]).await).await;
    let at = token["access_token"].as_str().expect("at");
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| http.post(app.url(path)).bearer_auth(at).json(&body).send();
    assert_eq!(
        post("/v1/databases", json!({"name": "partner-db", "region": "us-east-1"})).await.expect("POST").status(),
        201
    );
    let cache: Value = post(
        "/v1/caches",
        json!({"name": "partner-cache", "origin": {"database_type": "mysql", "host": "db.example.com", "port": 3306}}),
    )
    .await
    .expect("POST")
    .json()
    .await
    .expect("json");
    let rules = format!("/v1/caches/{}/rules", cache["id"].as_str().expect("id"));
    assert_eq!(
        post(&rules, json!({"name": "orders", "type": "table", "match": "orders", "ttl_seconds": 30}))
            .await
            .expect("POST")
            .status(),
        201
    );
    assert_eq!(post("/v1/api-keys", json!({"name": "partner key"})).await.expect("POST").status(), 201);

    let page = format!("/workspaces/{ws}/resources");
    let log = owner.get_html(&format!("/workspaces/{ws}/audit")).await;
    assert!(log.contains("Minted the API key") && log.contains("partner key") && log.contains(&client.id), "{log}");
    for viewer in [&owner, &member] {
        let html = viewer.get_html(&page).await;
        for text in
            ["partner-db", "pending", "partner-cache", "mysql", "orders", "partner key", "minted by a partner app"]
        {
            assert!(html.contains(text), "{text} on the resources page");
        }
    }
    let member_html = member.get_html(&page).await;
    assert!(!member_html.contains("Create cache"), "members only look");
    let csrf = hidden_value(&member_html, "csrf_token").expect("csrf");
    let r = member
        .post_raw(&format!("{page}/databases"), &[("csrf_token", &csrf), ("name", "x"), ("region", "us-east-1")])
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(outsider.get(&page).await.status(), 404);
}

async fn owners_manage_resources_and_api_keys_in_the_console(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.signed_in_user("owner@example.com").await;
    let ws = personal_workspace(&owner).await;
    let page = format!("/workspaces/{ws}/resources");

    let r = owner
        .submit(
            &page,
            &format!("{page}/caches"),
            &[("name", "web"), ("database_type", "postgres"), ("host", "pg.example.com"), ("port", "5432")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = owner
        .submit(
            &page,
            &format!("{page}/caches"),
            &[("name", "Bad Name"), ("database_type", "postgres"), ("host", "h"), ("port", "5432")],
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.expect("body").contains("name: must be 1 to 63 characters"));
    let html = owner.get_html(&page).await;
    let at = html.find("data-cache-id=\"").expect("cache row") + "data-cache-id=\"".len();
    let cache_id = html[at..at + html[at..].find('"').expect("end")].to_owned();
    let r = owner
        .submit(
            &page,
            &format!("{page}/caches/{cache_id}/rules"),
            &[
                ("name", "by-id"),
                ("type", "template"),
                ("match", "SELECT * FROM t WHERE id = ?"),
                ("ttl_seconds", "60"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let r = owner.submit(&page, &format!("{page}/databases"), &[("name", "sessions"), ("region", "eu-west-1")]).await;
    assert_eq!(location(&r), page);
    let html = owner.get_html(&page).await;
    assert!(html.contains("by-id") && html.contains("sessions") && html.contains("not provisioned yet"));

    // An API key made in the console works against the API with exactly the chosen scopes.
    let r = owner.submit(&page, &format!("{page}/api-keys"), &[("name", "ci"), ("scope", "databases:read")]).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("body");
    let at = html.find("id=\"api-key\">").expect("key shown") + "id=\"api-key\">".len();
    let key = html[at..at + html[at..].find('<').expect("end")].to_owned();
    assert!(key.starts_with("tes_ak_"));
    assert!(html.contains("it will not be shown again"));
    assert!(!owner.get_html(&page).await.contains(&key), "shown once");
    let http = reqwest::Client::new();
    let r = http.get(app.url("/v1/databases")).bearer_auth(&key).send().await.expect("GET");
    assert_eq!(r.status(), 200);
    let listed: Value = r.json().await.expect("json");
    assert_eq!(listed["items"][0]["name"], "sessions");
    assert_eq!(http.get(app.url("/v1/caches")).bearer_auth(&key).send().await.expect("GET").status(), 403);

    let html = owner.get_html(&page).await;
    let at = html.find("data-key-id=\"").expect("key row") + "data-key-id=\"".len();
    let key_id = html[at..at + html[at..].find('"').expect("end")].to_owned();
    assert_eq!(owner.submit(&page, &format!("{page}/api-keys/{key_id}/revoke"), &[]).await.status(), 303);
    assert_eq!(http.get(app.url("/v1/databases")).bearer_auth(&key).send().await.expect("GET").status(), 401);

    // Both the minting and the revocation are in the workspace's audit log, never the key.
    let log = owner.get_html(&format!("/workspaces/{ws}/audit")).await;
    assert!(log.contains("Minted the API key") && log.contains(&key_id), "minted: {log}");
    assert!(log.contains("api_key.revoked") || log.contains("Revoked the API key"), "revoked");
    assert!(!log.contains(&key), "no secret in the log");

    let r = owner.submit(&page, &format!("{page}/api-keys"), &[("name", "none")]).await;
    assert_eq!(r.status(), 400, "a key needs a scope");

    // A console key dies when the member who made it leaves the workspace.
    let admin = app.signed_in_user("admin@example.com").await;
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
    let html = admin
        .submit(&page, &format!("{page}/api-keys"), &[("name", "admins"), ("scope", "databases:read")])
        .await
        .text()
        .await
        .expect("body");
    let at = html.find("id=\"api-key\">").expect("key shown") + "id=\"api-key\">".len();
    let admin_key = html[at..at + html[at..].find('<').expect("end")].to_owned();
    assert_eq!(http.get(app.url("/v1/databases")).bearer_auth(&admin_key).send().await.expect("GET").status(), 200);
    let members = owner.get_html(&format!("/workspaces/{ws}")).await;
    let at = members.find("admin@example.com").expect("listed");
    let start = members[at..].find("/members/").expect("form") + at + "/members/".len();
    let admin_id = members[start..start + members[start..].find("/remove").expect("remove")].to_owned();
    let r =
        owner.submit(&format!("/workspaces/{ws}"), &format!("/workspaces/{ws}/members/{admin_id}/remove"), &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(http.get(app.url("/v1/databases")).bearer_auth(&admin_key).send().await.expect("GET").status(), 401);
    assert_eq!(owner.submit(&page, &format!("{page}/caches/{cache_id}/delete"), &[]).await.status(), 303);
    assert!(!owner.get_html(&page).await.contains("by-id"));
}
