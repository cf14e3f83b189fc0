//! Health, readiness, security headers, request ids and start-up configuration errors.

use crate::helpers::{Engine, TestApp};
use crate::on_both_engines;

on_both_engines!(health_and_readiness_answer, every_response_carries_security_headers_and_a_request_id,);

async fn health_and_readiness_answer(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let client = reqwest::Client::new();
    let health = client.get(app.url("/healthz")).send().await.expect("GET");
    assert_eq!(health.status(), 200);
    let ready = client.get(app.url("/readyz")).send().await.expect("GET");
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.json::<serde_json::Value>().await.expect("json")["status"], "ready");
}

async fn every_response_carries_security_headers_and_a_request_id(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    for path in [
        "/login",
        "/signup",
        "/",
        "/healthz",
        "/missing",
        "/static/app.css",
        "/oauth2/auth?client_id=x",
        "/oauth2/consent",
    ] {
        let r = client.get(app.url(path)).send().await.expect("GET");
        let h = r.headers();
        let csp = h.get("content-security-policy").unwrap_or_else(|| panic!("{path}: CSP")).to_str().expect("ascii");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(h.contains_key("referrer-policy"), "{path}");
        assert!(h["x-request-id"].to_str().expect("ascii").starts_with("req_"), "{path}");
    }
    let r = client.get(app.url("/healthz")).header("x-request-id", "trace-123").send().await.expect("GET");
    assert_eq!(r.headers()["x-request-id"], "trace-123");
}

#[test]
fn a_bad_setting_stops_start_up_with_a_message_naming_it() {
    let dir = tempfile::tempdir().expect("dir");
    for (key, value, named) in [
        ("TESSERA_CODE_TTL", "soon", "TESSERA_CODE_TTL"),
        ("TESSERA_LISTEN", "nowhere", "listen"),
        ("TESSERA_DATABASE_URL", "mysql://x", "database_url"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("serve")
            .current_dir(dir.path())
            .env(key, value)
            .output()
            .expect("run tessera");
        assert_eq!(out.status.code(), Some(1), "{key}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(named), "{key}: {stderr}");
    }
}

#[test]
fn help_describes_every_command() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["admin", "--help"],
        &["admin", "create-user", "--help"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera")).args(args).output().expect("run tessera");
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: tessera"), "{args:?}: {text}");
    }
}
