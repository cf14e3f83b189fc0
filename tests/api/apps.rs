//! OAuth applications: both owners, permissions, validation, secrets shown once, rotation,
//! deletion, escaping and the CLI.

use tessera::store::Store;

use crate::helpers::{hidden_value, location, stdout_json, Browser, Engine, TestApp};
use crate::on_both_engines;

on_both_engines!(
    a_user_creates_a_confidential_app_and_sees_its_secret_exactly_once,
    a_public_app_has_no_secret,
    workspace_apps_are_managed_by_owners_and_admins_only,
    a_user_level_app_is_invisible_to_everyone_else,
    every_invalid_field_gets_an_inline_error_and_nothing_is_saved,
    editing_rotating_and_deleting_an_app,
    app_fields_are_rendered_escaped,
    the_cli_creates_apps_for_both_owners_and_refuses_bad_input,
);

type Fields = Vec<(&'static str, &'static str)>;

const ACCOUNT: &str = "/settings/account/integrations";

pub async fn create_app(browser: &Browser, list: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    browser.submit(&format!("{list}/apps/new"), &format!("{list}/apps"), fields).await
}

pub fn valid_fields() -> Vec<(&'static str, &'static str)> {
    vec![
        ("name", "Partner Dashboard"),
        ("scope", "caches:read"),
        ("scope", "databases:write"),
        ("redirect_uris", "https://partner.example/callback\nhttp://localhost:3000/callback"),
        ("logo_url", "https://partner.example/logo.png"),
        ("homepage_url", "https://partner.example"),
    ]
}

fn code_by_id(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\">");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('<')? + start;
    Some(html[start..end].trim().to_owned())
}

async fn a_user_creates_a_confidential_app_and_sees_its_secret_exactly_once(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("partner@example.com").await;
    let r = create_app(&browser, ACCOUNT, &valid_fields()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.expect("body");
    let client_id = code_by_id(&html, "client-id").expect("client id shown");
    let secret = code_by_id(&html, "client-secret").expect("secret shown");
    assert!(secret.starts_with("tes_sk_") && secret.len() == 7 + 8 + 43 + 6, "{secret}");
    assert!(html.contains("it will not be shown again"));
    assert!(html.contains("data-copy=\"client-secret\""), "copy button");

    // The app's page and the list never show the secret again.
    let page = browser.get_html(&format!("/apps/{client_id}")).await;
    assert!(page.contains("Partner Dashboard") && !page.contains(&secret));
    let list = browser.get_html(ACCOUNT).await;
    assert!(list.contains(&client_id) && !list.contains(&secret));

    // The database holds only a hash: no column of the row contains the secret.
    let store = Store::connect(&app.db.url).await.expect("store");
    let row = tessera::store::apps::by_client_id(store.reader(), &client_id).await.expect("query").expect("row");
    let dump = format!("{row:?}");
    assert!(!dump.contains(&secret[7..]), "plain secret stored: {dump}");
    assert_eq!(row.secret_hash.as_deref(), Some(tessera::credentials::SecretHash::of(&secret).as_str()));
    let found = tessera::apps::find(&store, &client_id).await.expect("find").expect("app");
    assert!(found.secret_matches(&secret));
    assert_eq!(found.redirect_uris, vec!["https://partner.example/callback", "http://localhost:3000/callback"]);
    assert_eq!(found.scopes.to_string(), "caches:read databases:write");
}

async fn a_public_app_has_no_secret(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("native@example.com").await;
    let mut fields = valid_fields();
    fields.push(("client_type", "public"));
    let html = create_app(&browser, ACCOUNT, &fields).await.text().await.expect("body");
    assert!(code_by_id(&html, "client-id").is_some());
    assert!(code_by_id(&html, "client-secret").is_none());
    assert!(html.contains("must use PKCE"));
    let client_id = code_by_id(&html, "client-id").expect("id");
    let page = browser.get_html(&format!("/apps/{client_id}")).await;
    assert!(!page.contains("Rotate secret"));
}

async fn workspace_apps_are_managed_by_owners_and_admins_only(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let owner = app.signed_in_user("owner@example.com").await;
    let admin = app.signed_in_user("admin@example.com").await;
    let member = app.signed_in_user("member@example.com").await;
    let outsider = app.signed_in_user("outsider@example.com").await;
    let r = owner.submit("/", "/workspaces", &[("name", "Team")]).await;
    let ws = location(&r).trim_start_matches("/workspaces/").to_owned();
    let page = format!("/workspaces/{ws}");
    for (email, role) in [("admin@example.com", "admin"), ("member@example.com", "member")] {
        let r = owner.submit(&page, &format!("{page}/members"), &[("email", email), ("role", role)]).await;
        assert_eq!(r.status(), 303);
    }
    let list = format!("{page}/integrations");

    // An admin creates the app; the owner sees and manages it too.
    let html = create_app(&admin, &list, &valid_fields()).await.text().await.expect("body");
    let client_id = code_by_id(&html, "client-id").expect("created");
    assert!(owner.get_html(&list).await.contains(&client_id));
    let app_page = format!("/apps/{client_id}");
    assert_eq!(owner.get(&app_page).await.status(), 200);

    // A member is refused, an outsider learns nothing.
    assert_eq!(member.get(&list).await.status(), 403);
    assert_eq!(member.get(&app_page).await.status(), 403);
    assert_eq!(member.get(&format!("{list}/apps/new")).await.status(), 403);
    assert_eq!(outsider.get(&list).await.status(), 404);
    assert_eq!(outsider.get(&app_page).await.status(), 404);
    let csrf = hidden_value(&member.get_html("/").await, "csrf_token").expect("csrf");
    let r = member.post_raw(&format!("{app_page}/rotate-secret"), &[("csrf_token", &csrf)]).await;
    assert_eq!(r.status(), 403);
    let r = member.post_raw(&format!("{app_page}/delete"), &[("csrf_token", &csrf)]).await;
    assert_eq!(r.status(), 403);
    let mut fields = vec![("csrf_token", csrf.as_str())];
    fields.extend(valid_fields());
    assert_eq!(member.post_raw(&format!("{list}/apps"), &fields).await.status(), 403);
    let csrf = hidden_value(&outsider.get_html("/").await, "csrf_token").expect("csrf");
    let r = outsider.post_raw(&format!("{app_page}/delete"), &[("csrf_token", &csrf)]).await;
    assert_eq!(r.status(), 404);
    assert_eq!(owner.get(&app_page).await.status(), 200, "still there");
}

async fn a_user_level_app_is_invisible_to_everyone_else(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let alice = app.signed_in_user("alice@example.com").await;
    let bob = app.signed_in_user("bob@example.com").await;
    let html = create_app(&alice, ACCOUNT, &valid_fields()).await.text().await.expect("body");
    let client_id = code_by_id(&html, "client-id").expect("created");
    assert_eq!(bob.get(&format!("/apps/{client_id}")).await.status(), 404);
    assert!(!bob.get_html(ACCOUNT).await.contains(&client_id));
    let csrf = hidden_value(&bob.get_html("/").await, "csrf_token").expect("csrf");
    let mut fields = vec![("csrf_token", csrf.as_str())];
    fields.extend(valid_fields());
    assert_eq!(bob.post_raw(&format!("/apps/{client_id}"), &fields).await.status(), 404);
}

async fn every_invalid_field_gets_an_inline_error_and_nothing_is_saved(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("strict@example.com").await;
    let with = |key: &'static str, value: &'static str| -> Vec<(&'static str, &'static str)> {
        let mut fields: Vec<_> = valid_fields().into_iter().filter(|(k, _)| *k != key).collect();
        if !value.is_empty() || key != "scope" {
            fields.push((key, value));
        }
        fields
    };
    let eleven = "https://a.example/1\nhttps://a.example/2\nhttps://a.example/3\nhttps://a.example/4\nhttps://a.example/5\nhttps://a.example/6\nhttps://a.example/7\nhttps://a.example/8\nhttps://a.example/9\nhttps://a.example/10\nhttps://a.example/11";
    let long_name: &'static str = Box::leak("n".repeat(81).into_boxed_str());
    let cases: Vec<(Fields, &str, &str)> = vec![
        (with("name", ""), "name", "1 to 80 characters"),
        (with("name", long_name), "name", "1 to 80 characters"),
        (with("scope", ""), "scopes", "at least one scope"),
        (with("scope", "admin:all"), "scopes", "unknown scope"),
        (with("redirect_uris", ""), "redirect_uris", "at least one redirect URI"),
        (with("redirect_uris", eleven), "redirect_uris", "at most 10"),
        (with("redirect_uris", "/relative/callback"), "redirect_uris", "absolute URI"),
        (with("redirect_uris", "https://p.example/cb#frag"), "redirect_uris", "fragment"),
        (with("redirect_uris", "https://*.p.example/cb"), "redirect_uris", "wildcards"),
        (with("redirect_uris", "http://p.example/cb"), "redirect_uris", "use https"),
        (with("redirect_uris", "ftp://p.example/cb"), "redirect_uris", "https"),
        (with("logo_url", "javascript:alert(1)"), "logo_url", "must be an https"),
        (with("logo_url", "http://p.example/logo.png"), "logo_url", "must be an https"),
        (with("homepage_url", "javascript:alert(1)"), "homepage_url", "must be an https"),
    ];
    for (fields, field, message) in cases {
        let r = create_app(&browser, ACCOUNT, &fields).await;
        assert_eq!(r.status(), 400, "{field}: {fields:?}");
        let html = r.text().await.expect("body");
        let marker = format!("data-field=\"{field}\"");
        let at = html.find(&marker).unwrap_or_else(|| panic!("no inline error for {field}"));
        let line = &html[at..at + html[at..].find("</p>").expect("end")];
        assert!(line.contains(message), "{field}: {line}");
    }
    assert!(browser.get_html(ACCOUNT).await.contains("No OAuth apps yet."), "nothing was saved");
}

async fn editing_rotating_and_deleting_an_app(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("editor@example.com").await;
    let html = create_app(&browser, ACCOUNT, &valid_fields()).await.text().await.expect("body");
    let client_id = code_by_id(&html, "client-id").expect("id");
    let old_secret = code_by_id(&html, "client-secret").expect("secret");
    let page = format!("/apps/{client_id}");

    let r = browser
        .submit(
            &page,
            &page,
            &[("name", "Renamed"), ("scope", "cacheRules:read"), ("redirect_uris", "https://new.example/cb")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let store = Store::connect(&app.db.url).await.expect("store");
    let found = tessera::apps::find(&store, &client_id).await.expect("find").expect("app");
    assert_eq!(found.name, "Renamed");
    assert_eq!(found.scopes.to_string(), "cacheRules:read");
    assert_eq!(found.redirect_uris, vec!["https://new.example/cb"]);
    assert_eq!(found.logo_url, None);

    let r = browser.submit(&page, &page, &[("name", "Renamed"), ("redirect_uris", "https://new.example/cb")]).await;
    assert_eq!(r.status(), 400, "an edit is validated like a creation");
    assert!(r.text().await.expect("body").contains("data-field=\"scopes\""));

    // Rotation: the new secret is shown once; the old one fails the hash check at once.
    let rotated = browser.submit(&page, &format!("{page}/rotate-secret"), &[]).await.text().await.expect("body");
    let new_secret = code_by_id(&rotated, "client-secret").expect("new secret");
    assert_ne!(new_secret, old_secret);
    assert!(rotated.contains("previous secret has stopped working"));
    let found = tessera::apps::find(&store, &client_id).await.expect("find").expect("app");
    assert!(!found.secret_matches(&old_secret));
    assert!(found.secret_matches(&new_secret));
    assert!(!browser.get_html(&page).await.contains(&new_secret));

    // Deletion asks first, then removes the app.
    let confirm = browser.get_html(&format!("{page}/delete")).await;
    assert!(confirm.contains("Delete Renamed?"));
    let r = browser.submit(&format!("{page}/delete"), &format!("{page}/delete"), &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), ACCOUNT);
    assert_eq!(browser.get(&page).await.status(), 404);
    assert!(tessera::apps::find(&store, &client_id).await.expect("find").is_none());
}

async fn app_fields_are_rendered_escaped(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("xss@example.com").await;
    let payload = "<img src=x onerror=alert(1)>";
    let mut fields: Vec<_> = valid_fields().into_iter().filter(|(k, _)| *k != "name").collect();
    fields.push(("name", payload));
    let html = create_app(&browser, ACCOUNT, &fields).await.text().await.expect("body");
    let client_id = code_by_id(&html, "client-id").expect("id");
    for page in [ACCOUNT.to_owned(), format!("/apps/{client_id}"), format!("/apps/{client_id}/delete")] {
        let html = browser.get_html(&page).await;
        assert!(!html.contains(payload), "{page}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"), "{page}");
    }
}

async fn the_cli_creates_apps_for_both_owners_and_refuses_bad_input(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let user = stdout_json(&app.cli(&[
        "admin",
        "create-user",
        "--email",
        "cli@example.com",
        "--password",
        crate::helpers::PASSWORD,
    ]));
    let ws = stdout_json(&app.cli(&["admin", "create-workspace", "--name", "CLI", "--owner", "cli@example.com"]));
    let ws = ws["id"].as_str().expect("id");
    let _ = user;

    let out = stdout_json(&app.cli(&[
        "admin",
        "create-app",
        "--owner-user",
        "cli@example.com",
        "--name",
        "Mine",
        "--redirect-uri",
        "https://p.example/cb",
        "--scope",
        "caches:read",
        "--scope",
        "caches:write",
    ]));
    assert!(out["client_secret"].as_str().expect("secret").starts_with("tes_sk_"));
    let out = stdout_json(&app.cli(&[
        "admin",
        "create-app",
        "--owner-workspace",
        ws,
        "--name",
        "Native",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--scope",
        "databases:read",
        "--public",
    ]));
    assert!(out.get("client_secret").is_none());
    assert_eq!(out["client_type"], "public");
    let client_id = out["client_id"].as_str().expect("id").to_owned();
    let store = Store::connect(&app.db.url).await.expect("store");
    let found = tessera::apps::find(&store, &client_id).await.expect("find").expect("app");
    assert_eq!(found.owner, tessera::apps::AppOwner::Workspace(ws.to_owned()));

    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--owner-user",
                "cli@example.com",
                "--name",
                "X",
                "--redirect-uri",
                "http://p.example/cb",
                "--scope",
                "caches:read",
            ],
            "redirect_uris",
        ),
        (
            &[
                "--owner-user",
                "cli@example.com",
                "--name",
                "X",
                "--redirect-uri",
                "https://p.example/cb",
                "--scope",
                "root",
            ],
            "unknown scope",
        ),
        (
            &[
                "--owner-user",
                "cli@example.com",
                "--name",
                "X",
                "--redirect-uri",
                "https://p.example/cb",
                "--scope",
                "caches:read",
                "--logo-url",
                "javascript:x",
            ],
            "logo_url",
        ),
        (
            &[
                "--owner-user",
                "ghost@example.com",
                "--name",
                "X",
                "--redirect-uri",
                "https://p.example/cb",
                "--scope",
                "caches:read",
            ],
            "user not found",
        ),
        (
            &[
                "--owner-workspace",
                "ws_nope",
                "--name",
                "X",
                "--redirect-uri",
                "https://p.example/cb",
                "--scope",
                "caches:read",
            ],
            "not found",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["admin", "create-app"];
        all.extend_from_slice(args);
        let out = app.cli(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let error: serde_json::Value = serde_json::from_slice(&out.stderr).expect("JSON error");
        assert!(error["error"].as_str().expect("message").contains(expected), "{args:?}: {error}");
    }
    let out = app.cli(&[
        "admin",
        "create-app",
        "--name",
        "X",
        "--redirect-uri",
        "https://p.example/cb",
        "--scope",
        "caches:read",
    ]);
    assert!(!out.status.success(), "an owner is required");
}
