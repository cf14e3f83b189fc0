//! Helpers that play the partner and the user through the authorization-code flow.

use serde_json::Value;

use super::{hidden_value, location, stdout_json, Browser, TestApp};

pub const REDIRECT: &str = "https://partner.example/callback";
pub const ALL_SCOPES: &str = "caches:read caches:write cacheRules:read cacheRules:write databases:read databases:write";
/// RFC 7636 appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub struct Client {
    pub id: String,
    pub secret: Option<String>,
}

/// A user-level app registered through the CLI, owned by `owner_email`.
pub fn register(app: &TestApp, owner_email: &str, redirects: &[&str], scopes: &str, public: bool) -> Client {
    let mut args = vec!["admin", "create-app", "--owner-user", owner_email, "--name", "Partner"];
    for r in redirects {
        args.extend(["--redirect-uri", r]);
    }
    for s in scopes.split(' ') {
        args.extend(["--scope", s]);
    }
    if public {
        args.push("--public");
    }
    let out = stdout_json(&app.cli(&args));
    Client {
        id: out["client_id"].as_str().expect("client id").to_owned(),
        secret: out["client_secret"].as_str().map(str::to_owned),
    }
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// Follows `/oauth2/auth` to the consent page for a signed-in browser; returns the page's HTML.
pub async fn open_consent(browser: &Browser, auth_url: &str) -> String {
    let r = browser.get(auth_url).await;
    assert_eq!(r.status(), 303, "authorize should continue to consent");
    let consent = location(&r);
    assert!(consent.starts_with("/oauth2/consent?consent_challenge="), "{consent}");
    browser.get_html(&consent).await
}

/// Answers the consent page and returns the redirect sent to the client.
pub async fn decide(
    browser: &Browser,
    consent_html: &str,
    decision: &str,
    workspace_id: Option<&str>,
) -> reqwest::Response {
    let csrf = hidden_value(consent_html, "csrf_token").expect("csrf");
    let challenge = hidden_value(consent_html, "consent_challenge").expect("challenge");
    let workspace = workspace_id.map(str::to_owned).unwrap_or_else(|| first_option(consent_html));
    browser
        .post_raw(
            "/oauth2/consent",
            &[
                ("csrf_token", &csrf),
                ("consent_challenge", &challenge),
                ("workspace_id", &workspace),
                ("decision", decision),
            ],
        )
        .await
}

/// The first selectable workspace in the consent page's picker.
pub fn first_option(html: &str) -> String {
    html.split("<option value=\"")
        .skip(1)
        .find(|chunk| !chunk.split('>').next().unwrap_or("").contains("disabled"))
        .and_then(|chunk| chunk.split('"').next())
        .map(str::to_owned)
        .unwrap_or_default()
}

pub fn auth_url(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "caches:read databases:write"),
        ("state", "xyz-state"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        params.retain(|(key, _)| key != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    app.url(&format!("/oauth2/auth?{}", super::encode(&params)))
}

/// The whole browser part: authorize, allow, and return the code.
pub async fn obtain_code(app: &TestApp, browser: &Browser, client: &Client, extra: &[(&str, &str)]) -> String {
    let html = open_consent(browser, &auth_url(app, &client.id, extra)).await;
    let r = decide(browser, &html, "allow", None).await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    query_param(&to, "code").unwrap_or_else(|| panic!("no code in {to}"))
}

/// POSTs to a token-family endpoint with client_secret_basic (or client_id for public clients).
pub async fn post_as(app: &TestApp, path: &str, client: &Client, fields: &[(&str, &str)]) -> reqwest::Response {
    let http = reqwest::Client::new();
    let mut request = http.post(app.url(path)).header("content-type", "application/x-www-form-urlencoded");
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
        None => all.push(("client_id", &client.id)),
    }
    request.body(super::encode(&all)).send().await.expect("POST")
}

pub async fn exchange(app: &TestApp, client: &Client, code: &str) -> reqwest::Response {
    post_as(
        app,
        "/oauth2/token",
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

pub async fn tokens(app: &TestApp, client: &Client, code: &str) -> Value {
    let r = exchange(app, client, code).await;
    assert_eq!(r.status(), 200, "code exchange");
    r.json().await.expect("token JSON")
}

pub async fn refresh(app: &TestApp, client: &Client, refresh_token: &str, scope: Option<&str>) -> reqwest::Response {
    let mut fields = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    if let Some(s) = scope {
        fields.push(("scope", s));
    }
    post_as(app, "/oauth2/token", client, &fields).await
}

pub async fn api_status(app: &TestApp, access_token: &str) -> u16 {
    reqwest::Client::new()
        .get(app.url("/v1/workspace"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("GET")
        .status()
        .as_u16()
}

pub async fn error_of(r: reqwest::Response) -> String {
    let body: Value = r.json().await.expect("error JSON");
    body["error"].as_str().unwrap_or_default().to_owned()
}
