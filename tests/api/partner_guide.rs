//! Runs docs/partner-guide.md's commands, exactly as written, against a live server, so the
//! guide cannot drift from the product. Only the user's clicks at Tessera (login and consent)
//! are played by the test's browser.

use std::collections::HashMap;

use serde_json::Value;

use crate::helpers::oauth::{decide, open_consent, query_param, register, ALL_SCOPES, REDIRECT};
use crate::helpers::{location, Engine, TestApp};
use crate::on_both_engines;

on_both_engines!(the_partner_guides_commands_work_as_written,);

const GUIDE: &str = include_str!("../../docs/partner-guide.md");

/// The shell block after `<!-- step: NAME -->`.
fn step(name: &str) -> String {
    let marker = format!("<!-- step: {name} -->");
    let at = GUIDE.find(&marker).unwrap_or_else(|| panic!("the guide has no step {name}")) + marker.len();
    let rest = &GUIDE[at..];
    let start = rest.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = rest[start..].find("```").expect("end of block") + start;
    rest[start..end].to_owned()
}

fn run(name: &str, env: &HashMap<&str, String>) -> String {
    let output = std::process::Command::new("bash")
        .arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(step(name))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run bash");
    assert!(output.status.success(), "step {name} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8")
}

fn run_json(name: &str, env: &HashMap<&str, String>) -> Value {
    let out = run(name, env);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("step {name} printed no JSON ({e}): {out}"))
}

async fn the_partner_guides_commands_work_as_written(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("user@example.com").await;
    let client = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let mut env: HashMap<&str, String> = HashMap::from([
        ("TESSERA", app.base.clone()),
        ("CLIENT_ID", client.id.clone()),
        ("CLIENT_SECRET", client.secret.clone().expect("secret")),
        ("REDIRECT_URI", REDIRECT.to_owned()),
    ]);

    let meta = run_json("metadata", &env);
    assert_eq!(meta["token_endpoint"], app.url("/oauth2/token"));

    let pkce = run("pkce", &env);
    let (verifier, challenge) = pkce.trim().split_once(' ').expect("verifier and challenge");
    assert!(verifier.len() >= 43, "{verifier}");
    assert_eq!(challenge.len(), 43);
    env.insert("CODE_VERIFIER", verifier.to_owned());
    env.insert("CODE_CHALLENGE", challenge.to_owned());

    // The user's part: open the URL, allow on the consent page.
    let url = run("authorize", &env).trim().to_owned();
    let state = query_param(&url, "state").expect("state in the URL");
    let html = open_consent(&browser, &url).await;
    let to = location(&decide(&browser, &html, "allow", None).await);
    assert_eq!(query_param(&to, "state").as_deref(), Some(state.as_str()));
    assert_eq!(query_param(&to, "iss").as_deref(), Some(app.base.as_str()));
    env.insert("CODE", query_param(&to, "code").expect("code"));

    let tokens = run_json("exchange", &env);
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    env.insert("ACCESS_TOKEN", tokens["access_token"].as_str().expect("at").to_owned());
    env.insert("REFRESH_TOKEN", tokens["refresh_token"].as_str().expect("rt").to_owned());

    assert!(run_json("workspace", &env)["id"].as_str().expect("id").starts_with("ws_"));
    let key = run_json("api-key", &env);
    env.insert("API_KEY", key["api_key"].as_str().expect("key").to_owned());

    let db = run_json("create-database", &env);
    assert_eq!(db["state"], "pending");
    env.insert("DATABASE_ID", db["id"].as_str().expect("id").to_owned());
    assert_eq!(run_json("get-database", &env)["name"], "sessions");
    assert_eq!(run_json("list-databases", &env)["items"][0]["id"], db["id"]);

    let cache = run_json("create-cache", &env);
    env.insert("CACHE_ID", cache["id"].as_str().expect("id").to_owned());
    assert_eq!(run_json("create-rule", &env)["type"], "template");
    assert_eq!(run_json("list-rules", &env)["items"].as_array().expect("items").len(), 1);

    let refreshed = run_json("refresh", &env);
    assert_ne!(refreshed["refresh_token"], tokens["refresh_token"]);
    env.insert("ACCESS_TOKEN", refreshed["access_token"].as_str().expect("at").to_owned());
    env.insert("REFRESH_TOKEN", refreshed["refresh_token"].as_str().expect("rt").to_owned());
    assert_eq!(run_json("introspect", &env)["active"], true);

    assert_eq!(run("revoke", &env).trim(), "200");
    let after = run("after-revoke", &env);
    assert!(after.contains("401") && after.contains("invalid_token"), "{after}");
    assert_eq!(run_json("introspect", &env)["active"], false);
}
