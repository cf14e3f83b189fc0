//! Abuse limits: failed client authentications, token and authorization rates per client, the
//! size and pace of request headers, JSON nesting and over-long scopes.
//! (Login throttling per account and per address is tested in `accounts.rs`.)

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::oauth::*;
use crate::helpers::{encode, hidden_value, location, Engine, TestApp};
use crate::on_both_engines;

on_both_engines!(
    failed_client_authentications_are_throttled_before_the_secret_is_checked,
    token_requests_beyond_a_clients_rate_get_429_slow_down,
    authorization_requests_beyond_a_clients_rate_get_a_429_page,
    deeply_nested_json_is_refused_with_a_problem,
    an_overlong_scope_is_refused_with_an_oauth_error,
    forwarded_for_is_ignored_unless_trusted,
    oversized_bodies_get_413_on_the_api_and_invalid_request_on_oauth_endpoints,
);

fn retry_after(r: &reqwest::Response) -> i64 {
    r.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds")
}

fn with_wrong_secret(client: &Client) -> Client {
    Client { id: client.id.clone(), secret: Some("tes_sk_wrong".into()) }
}

async fn introspect(app: &TestApp, client: &Client) -> reqwest::Response {
    post_as(app, "/oauth2/introspect", client, &[("token", "tes_at_unknown")]).await
}

async fn failed_client_authentications_are_throttled_before_the_secret_is_checked(engine: Engine) {
    let app = TestApp::spawn_with(engine, &[("TESSERA_CLIENT_AUTH_FAILURES", "3")]).await;
    app.signed_in_user("owner@example.com").await;
    let client = register(&app, "owner@example.com", &[REDIRECT], ALL_SCOPES, false);
    let bystander = register(&app, "owner@example.com", &[REDIRECT], ALL_SCOPES, false);
    let wrong = with_wrong_secret(&client);

    // Under the limit everything answers as usual, and a success does not count as a failure.
    for _ in 0..2 {
        let r =
            post_as(&app, "/oauth2/token", &wrong, &[("grant_type", "refresh_token"), ("refresh_token", "x")]).await;
        assert_eq!(r.status(), 401);
        assert_eq!(error_of(r).await, "invalid_client");
    }
    let r = introspect(&app, &client).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.expect("json")["active"], false);
    let r = post_as(&app, "/oauth2/revoke", &wrong, &[("token", "x")]).await;
    assert_eq!(r.status(), 401, "the third failure is still answered");

    // Over it: 429 before the secret is looked at, even the right one, on every endpoint.
    for path in ["/oauth2/token", "/oauth2/revoke", "/oauth2/introspect"] {
        let r =
            post_as(&app, path, &client, &[("grant_type", "refresh_token"), ("refresh_token", "x"), ("token", "x")])
                .await;
        assert_eq!(r.status(), 429, "{path}");
        let wait = retry_after(&r);
        assert!(wait > 0 && wait <= 300, "{path}: Retry-After {wait}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], "slow_down", "{path}");
        assert!(body["error_description"].as_str().expect("description").contains("retry in"));
    }
    // Another client, and an unknown client id, are not affected.
    assert_eq!(introspect(&app, &bystander).await.status(), 200);
    let unknown = Client { id: "app_unknown".into(), secret: Some("tes_sk_x".into()) };
    assert_eq!(introspect(&app, &unknown).await.status(), 401);
}

async fn token_requests_beyond_a_clients_rate_get_429_slow_down(engine: Engine) {
    let app = TestApp::spawn_with(engine, &[("TESSERA_TOKEN_REQUESTS_PER_MINUTE", "3")]).await;
    let browser = app.signed_in_user("user@example.com").await;
    let client = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let other = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);

    let t = tokens(&app, &client, &obtain_code(&app, &browser, &client, &[]).await).await;
    let refresh_token = t["refresh_token"].as_str().expect("rt").to_owned();
    let r = refresh(&app, &client, &refresh_token, None).await;
    assert_eq!(r.status(), 200, "the second request is within the rate");
    let r = refresh(&app, &client, "tes_rt_bogus", None).await;
    assert_eq!(r.status(), 400, "the third is answered on its merits");
    assert_eq!(error_of(r).await, "invalid_grant");

    let r = refresh(&app, &client, "tes_rt_bogus", None).await;
    assert_eq!(r.status(), 429);
    let wait = retry_after(&r);
    assert!((1..=20).contains(&wait), "one request comes back every 20 seconds, not {wait}");
    assert_eq!(error_of(r).await, "slow_down");

    // The rate is per client: another one is served.
    let r = refresh(&app, &other, "tes_rt_bogus", None).await;
    assert_eq!(r.status(), 400);
}

async fn authorization_requests_beyond_a_clients_rate_get_a_429_page(engine: Engine) {
    let app = TestApp::spawn_with(engine, &[("TESSERA_AUTHORIZE_REQUESTS_PER_MINUTE", "2")]).await;
    let browser = app.signed_in_user("user@example.com").await;
    let client = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let other = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    for _ in 0..2 {
        let r = browser.get(&auth_url(&app, &client.id, &[])).await;
        assert_eq!(r.status(), 303);
        assert!(location(&r).starts_with("/oauth2/consent"));
    }
    let r = browser.get(&auth_url(&app, &client.id, &[])).await;
    assert_eq!(r.status(), 429);
    let wait = retry_after(&r);
    assert!((1..=30).contains(&wait), "Retry-After {wait}");
    assert!(r.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"));
    let page = r.text().await.expect("page");
    assert!(page.contains("too many authorization requests"), "{page}");

    assert_eq!(browser.get(&auth_url(&app, &other.id, &[])).await.status(), 303, "per client");
}

/// A bearer token for a freshly registered partner.
async fn access_token(app: &TestApp) -> String {
    let browser = app.signed_in_user("user@example.com").await;
    let client = register(app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let code = obtain_code(app, &browser, &client, &[("scope", ALL_SCOPES)]).await;
    tokens(app, &client, &code).await["access_token"].as_str().expect("token").to_owned()
}

async fn deeply_nested_json_is_refused_with_a_problem(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let token = access_token(&app).await;
    let http = reqwest::Client::new();
    let nested =
        |depth: usize| format!(r#"{{"name": "deep", "origin": {}"x"{}}}"#, "{\"a\": ".repeat(depth), "}".repeat(depth));
    for depth in [40, 120, 129, 8_000] {
        let r = http
            .post(app.url("/v1/caches"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(nested(depth))
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), 400, "depth {depth}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let problem: Value = r.json().await.expect("json");
        assert!(problem["detail"].as_str().expect("detail").contains("nested deeper than 32"), "{problem}");
    }
    // Shallow bodies are read as usual (this one is merely invalid).
    let r = http
        .post(app.url("/v1/caches"))
        .bearer_auth(&token)
        .json(&json!({"name": "shallow", "origin": {"a": {"b": 1}}}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 422);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

async fn an_overlong_scope_is_refused_with_an_oauth_error(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("user@example.com").await;
    let client = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let long = ["caches:read"; 200].join(" ");

    let r = browser.get(&auth_url(&app, &client.id, &[("scope", &long)])).await;
    assert_eq!(r.status(), 303);
    let to = location(&r);
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_scope"));
    assert!(query_param(&to, "error_description").expect("description").contains("longer than 1024"));
    assert!(to.len() < 1024, "the scope is not echoed back: {} bytes", to.len());

    // An unknown scope of any length is named, but only in part.
    let r = browser.get(&auth_url(&app, &client.id, &[("scope", &"x".repeat(1000))])).await;
    let to = location(&r);
    assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_scope"));
    assert!(to.len() < 1024, "{} bytes", to.len());

    let t = tokens(&app, &client, &obtain_code(&app, &browser, &client, &[]).await).await;
    let r = refresh(&app, &client, t["refresh_token"].as_str().expect("rt"), Some(&long)).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "invalid_scope");
    assert!(body["error_description"].as_str().expect("description").contains("longer than 1024"));
}

/// A client that sends its headers a byte at a time is disconnected once the header read timeout
/// passes, while a prompt request on another connection is served as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_disconnected_after_the_header_read_timeout() {
    let app = TestApp::spawn_with(Engine::Sqlite, &[("TESSERA_HEADER_READ_TIMEOUT", "1")]).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Slow: {}\r\n\r\n", "x", "y".repeat(200));
        for byte in request.bytes() {
            if writer.write_all(&[byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut answer)).await;
    let elapsed = started.elapsed();
    assert!(read.is_ok(), "the server did not close the connection within 10 s");
    assert!(elapsed >= Duration::from_millis(900), "closed too early: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "closed too late: {elapsed:?}");
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains("200 OK"), "the slow request must not be served: {answer}");
    trickle.abort();

    let r = reqwest::get(app.url("/healthz")).await.expect("GET");
    assert_eq!(r.status(), 200);

    // A client that connects and sends nothing at all is disconnected too.
    let mut silent = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "a silent connection was not closed within 10 s");
    assert!(started.elapsed() < Duration::from_secs(5), "closed too late: {:?}", started.elapsed());
    assert!(answer.is_empty());
}

/// A request whose body never finishes is answered 408 after the request timeout, and that
/// answer, made by the timeout layer rather than a handler, carries the security headers and the
/// request id like every other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_times_out_gets_408_with_the_security_headers() {
    let app = TestApp::spawn_with(Engine::Sqlite, &[("TESSERA_REQUEST_TIMEOUT", "1")]).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let head = "POST /oauth2/token HTTP/1.1\r\nHost: x\r\nX-Request-Id: slow-body\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=";
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = vec![0u8; 8192];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer)).await;
    let n = read.expect("answered within 10 s").expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 408"), "{answer}");
    assert!(answer.contains("content-security-policy: default-src 'none'"), "{answer}");
    assert!(answer.contains("x-frame-options: deny"), "{answer}");
    assert!(answer.contains("x-request-id: slow-body"), "{answer}");
}

/// Request headers over `max_header_bytes` get 431 (or, if the client is still writing when the
/// server gives up, a closed connection); headers under it are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_431() {
    let app = TestApp::spawn_with(Engine::Sqlite, &[("TESSERA_MAX_HEADER_BYTES", "16384")]).await;
    let http = reqwest::Client::new();
    let r = http.get(app.url("/healthz")).header("x-big", "a".repeat(8 * 1024)).send().await.expect("GET");
    assert_eq!(r.status(), 200, "headers under the limit are fine");

    match http.get(app.url("/healthz")).header("x-big", "a".repeat(64 * 1024)).send().await {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "unexpected error: {e}"),
    }
    // Raw, so that the answer can be read whatever the client library does.
    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(20 * 1024));
    let _ = stream.write_all(request.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");

    assert_eq!(reqwest::get(app.url("/healthz")).await.expect("GET").status(), 200);
}

/// Failed logins "from" ever-new `X-Forwarded-For` addresses are still counted against the real
/// peer unless `trust_forwarded_for` is set; with it, the last hop is the address.
async fn forwarded_for_is_ignored_unless_trusted(engine: Engine) {
    async fn failed_login(app: &TestApp, forwarded_for: &str) -> u16 {
        let browser = app.browser();
        let page = browser.get_html("/login").await;
        let csrf = hidden_value(&page, "csrf_token").expect("csrf");
        let fields = [("csrf_token", csrf.as_str()), ("email", "nobody@example.com"), ("password", "wrong 12345")];
        let fields: Vec<(&str, &str)> = fields.to_vec();
        browser
            .client
            .post(app.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-for", forwarded_for)
            .body(encode(&fields))
            .send()
            .await
            .expect("POST")
            .status()
            .as_u16()
    }
    let limits = [("TESSERA_LOGIN_FAILURES_PER_ADDRESS", "2"), ("TESSERA_LOGIN_FAILURES_PER_ACCOUNT", "100")];
    let app = TestApp::spawn_with(engine, &limits).await;
    assert_eq!(failed_login(&app, "203.0.113.1").await, 400);
    assert_eq!(failed_login(&app, "203.0.113.2").await, 400);
    assert_eq!(failed_login(&app, "203.0.113.3").await, 429, "a forged header does not escape the limit");

    let trusted = [limits[0], limits[1], ("TESSERA_TRUST_FORWARDED_FOR", "true")];
    let app = TestApp::spawn_with(engine, &trusted).await;
    assert_eq!(failed_login(&app, "198.51.100.7, 203.0.113.1").await, 400);
    assert_eq!(failed_login(&app, "198.51.100.7, 203.0.113.1").await, 400);
    assert_eq!(failed_login(&app, "198.51.100.7, 203.0.113.1").await, 429, "the last hop is counted");
    assert_eq!(failed_login(&app, "203.0.113.1, 203.0.113.2").await, 400, "another last hop is not");
}

async fn oversized_bodies_get_413_on_the_api_and_invalid_request_on_oauth_endpoints(engine: Engine) {
    let app = TestApp::spawn_with(engine, &[("TESSERA_MAX_BODY_BYTES", "4096")]).await;
    let token = access_token(&app).await;
    let big = json!({"name": "big", "description": "x".repeat(8192)}).to_string();
    let r = reqwest::Client::new()
        .post(app.url("/v1/caches"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(r.json::<Value>().await.expect("json")["detail"].as_str().expect("detail").contains("4096 bytes"));

    let client = Client { id: "app_whoever".into(), secret: None };
    let padding = "x".repeat(8192);
    let r = post_as(&app, "/oauth2/token", &client, &[("grant_type", "refresh_token"), ("padding", &padding)]).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "invalid_request");
    assert!(body["error_description"].as_str().expect("description").contains("too large"));
}
