//! The authorization server, end to end: authorize, login, consent, token, refresh, revoke,
//! introspect, metadata — including every error branch and the `oauth2` crate as a client.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IntrospectionUrl, PkceCodeChallenge, RedirectUrl,
    RevocationUrl, Scope as OScope, StandardRevocableToken, TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use serde_json::Value;

use crate::helpers::oauth::*;
use crate::helpers::{location, Engine, TestApp, PASSWORD};
use crate::on_both_engines;

on_both_engines!(
    the_oauth2_crate_completes_the_flow_as_a_confidential_client_with_pkce,
    the_oauth2_crate_completes_the_flow_as_a_public_client_on_any_loopback_port,
    authorize_errors_before_the_redirect_uri_is_verified_never_redirect,
    authorize_errors_after_verification_redirect_with_state_and_iss,
    an_anonymous_user_logs_in_and_returns_to_the_same_request,
    denying_consent_redirects_with_access_denied,
    only_workspaces_the_user_administers_can_be_chosen,
    a_consent_challenge_can_be_decided_only_once,
    a_replayed_code_fails_and_revokes_what_the_first_use_issued,
    codes_and_refresh_tokens_are_bound_to_their_client,
    token_endpoint_errors_follow_rfc_6749,
    pkce_is_enforced_and_plain_or_downgrade_is_refused,
    refresh_rotates_narrows_and_detects_reuse,
    tokens_issued_before_issue_times_still_work_until_they_expire,
    concurrent_refreshes_with_one_token_let_exactly_one_succeed,
    revocation_and_introspection_follow_rfc_7009_and_7662,
    metadata_describes_every_endpoint,
    deleting_the_app_invalidates_its_codes_and_tokens,
    a_grant_records_its_last_use_to_the_minute,
    the_janitor_removes_what_has_expired_and_nothing_else,
);

async fn setup(engine: Engine, env: &[(&str, &str)]) -> (TestApp, crate::helpers::Browser, Client) {
    let app = TestApp::spawn_with(engine, env).await;
    let browser = app.signed_in_user("user@example.com").await;
    let client = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    (app, browser, client)
}

async fn the_oauth2_crate_completes_the_flow_as_a_confidential_client_with_pkce(engine: Engine) {
    let (app, browser, registered) = setup(engine, &[]).await;
    let client = BasicClient::new(ClientId::new(registered.id.clone()))
        .set_client_secret(ClientSecret::new(registered.secret.clone().expect("secret")))
        .set_auth_uri(AuthUrl::new(app.url("/oauth2/auth")).expect("url"))
        .set_token_uri(TokenUrl::new(app.url("/oauth2/token")).expect("url"))
        .set_revocation_url(RevocationUrl::new(app.url("/oauth2/revoke")).expect("url"))
        .set_introspection_url(IntrospectionUrl::new(app.url("/oauth2/introspect")).expect("url"))
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).expect("url"));
    let http = oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .expect("http");

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(OScope::new("caches:read".into()))
        .add_scope(OScope::new("databases:write".into()))
        .set_pkce_challenge(challenge)
        .url();
    let html = open_consent(&browser, url.as_str()).await;
    assert!(html.contains("View your caches") && html.contains("Create and delete your databases"));
    assert!(!html.contains("cacheRules"), "only the requested scopes are shown");
    let r = decide(&browser, &html, "allow", None).await;
    let to = location(&r);
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(query_param(&to, "state").as_deref(), Some(state.secret().as_str()));
    assert_eq!(query_param(&to, "iss").as_deref(), Some(app.base.as_str()));
    let code = query_param(&to, "code").expect("code");
    assert!(code.starts_with("tes_ac_"));

    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("exchange");
    assert!(token.access_token().secret().starts_with("tes_at_"));
    assert_eq!(token.expires_in().map(|d| d.as_secs()), Some(3600));
    let scopes: Vec<String> = token.scopes().expect("scope").iter().map(|s| s.to_string()).collect();
    assert_eq!(scopes, vec!["caches:read", "databases:write"]);
    let refresh_token = token.refresh_token().expect("refresh token").clone();
    assert!(refresh_token.secret().starts_with("tes_rt_"));
    assert_eq!(api_status(&app, token.access_token().secret()).await, 200);

    let introspection = client.introspect(token.access_token()).request_async(&http).await.expect("introspect");
    assert!(introspection.active());
    assert_eq!(introspection.client_id().map(|c| c.as_str()), Some(registered.id.as_str()));

    let refreshed = client.exchange_refresh_token(&refresh_token).request_async(&http).await.expect("refresh");
    assert_ne!(refreshed.refresh_token().expect("rotated").secret(), refresh_token.secret());
    assert_eq!(api_status(&app, refreshed.access_token().secret()).await, 200);

    // The oauth2 crate refuses to revoke over plain http (RFC 7009 §2 requires TLS), and this
    // test server speaks http, so the revocation request is sent as the crate would send it.
    assert!(matches!(
        client.revoke_token(StandardRevocableToken::AccessToken(refreshed.access_token().clone())),
        Err(oauth2::ConfigurationError::InsecureUrl(_))
    ));
    let r = post_as(
        &app,
        "/oauth2/revoke",
        &registered,
        &[("token", refreshed.access_token().secret()), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(api_status(&app, refreshed.access_token().secret()).await, 401);
    let after = client.introspect(refreshed.access_token()).request_async(&http).await.expect("introspect");
    assert!(!after.active());
}

async fn the_oauth2_crate_completes_the_flow_as_a_public_client_on_any_loopback_port(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("native@example.com").await;
    let registered = register(&app, "native@example.com", &["http://127.0.0.1/callback"], "caches:read", true);
    assert!(registered.secret.is_none());
    let client = BasicClient::new(ClientId::new(registered.id.clone()))
        .set_auth_uri(AuthUrl::new(app.url("/oauth2/auth")).expect("url"))
        .set_token_uri(TokenUrl::new(app.url("/oauth2/token")).expect("url"))
        .set_redirect_uri(RedirectUrl::new("http://127.0.0.1:49152/callback".into()).expect("url"));
    let http = oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .expect("http");
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _state) = client.authorize_url(CsrfToken::new_random).set_pkce_challenge(challenge).url();
    let html = open_consent(&browser, url.as_str()).await;
    let to = location(&decide(&browser, &html, "allow", None).await);
    assert!(to.starts_with("http://127.0.0.1:49152/callback?"), "{to}");
    let code = query_param(&to, "code").expect("code");
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("exchange");
    assert_eq!(api_status(&app, token.access_token().secret()).await, 200);

    // Without PKCE a public client gets no further than the authorize step.
    let no_pkce = app.url(&format!(
        "/oauth2/auth?response_type=code&client_id={}&redirect_uri=http://127.0.0.1:5000/callback",
        registered.id
    ));
    let r = browser.get(&no_pkce).await;
    assert_eq!(query_param(&location(&r), "error").as_deref(), Some("invalid_request"));
}

async fn authorize_errors_before_the_redirect_uri_is_verified_never_redirect(engine: Engine) {
    let (app, browser, client) = setup(engine, &[]).await;
    let two = register(&app, "user@example.com", &[REDIRECT, "https://partner.example/other"], "caches:read", false);
    let cases: Vec<(String, &str)> = vec![
        (auth_url(&app, "app_unknown", &[]), "not registered"),
        (auth_url(&app, "", &[("client_id", "")]), "client_id is missing"),
        (auth_url(&app, &client.id, &[("redirect_uri", "https://evil.example/callback")]), "does not match"),
        (auth_url(&app, &client.id, &[("redirect_uri", "https://partner.example/callback/")]), "does not match"),
        (auth_url(&app, &client.id, &[("redirect_uri", "http://127.0.0.1:9/callback")]), "does not match"),
        (auth_url(&app, &two.id, &[("redirect_uri", "")]), "registered several"),
        (format!("{}&client_id={}", auth_url(&app, &client.id, &[]), client.id), "repeats client_id"),
        (
            format!("{}&redirect_uri=https%3A%2F%2Fevil.example%2F", auth_url(&app, &client.id, &[])),
            "repeats redirect_uri",
        ),
    ];
    for (url, message) in cases {
        let r = browser.get(&url).await;
        assert_eq!(r.status(), 400, "{url}");
        assert!(r.headers().get("location").is_none(), "{url} must not redirect");
        let body = r.text().await.expect("body");
        assert!(body.contains(message), "{url}: expected {message:?}");
    }
    // Anonymous users get the same page, before any login.
    let r = app.browser().get(&auth_url(&app, "app_unknown", &[])).await;
    assert_eq!(r.status(), 400);
}

async fn authorize_errors_after_verification_redirect_with_state_and_iss(engine: Engine) {
    let (app, browser, _) = setup(engine, &[]).await;
    let narrow = register(&app, "user@example.com", &[REDIRECT], "caches:read", false);
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("response_type", "token")], "unsupported_response_type"),
        (vec![("response_type", "")], "invalid_request"),
        (vec![("scope", "caches:read admin")], "invalid_scope"),
        (vec![("scope", "databases:write")], "invalid_scope"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "too-short")], "invalid_request"),
        (vec![("code_challenge", ""), ("code_challenge_method", "")], "invalid_request"),
    ];
    for (extra, error) in cases {
        let mut extra = extra;
        if !extra.iter().any(|(k, _)| *k == "scope") {
            extra.push(("scope", "caches:read"));
        }
        let r = browser.get(&auth_url(&app, &narrow.id, &extra)).await;
        assert_eq!(r.status(), 303, "{extra:?}");
        let to = location(&r);
        assert!(to.starts_with(REDIRECT), "{extra:?}: {to}");
        assert_eq!(query_param(&to, "error").as_deref(), Some(error), "{extra:?}: {to}");
        assert!(query_param(&to, "error_description").is_some());
        assert_eq!(query_param(&to, "state").as_deref(), Some("xyz-state"));
        assert_eq!(query_param(&to, "iss").as_deref(), Some(app.base.as_str()));
    }
    let repeated = format!("{}&scope=caches:read", auth_url(&app, &narrow.id, &[("scope", "caches:read")]));
    let to = location(&browser.get(&repeated).await);
    assert_eq!(query_param(&to, "error").as_deref(), Some("invalid_request"));

    // A missing scope means every scope the app registered.
    let html = open_consent(&browser, &auth_url(&app, &narrow.id, &[("scope", "")])).await;
    assert!(html.contains("View your caches"));
}

async fn an_anonymous_user_logs_in_and_returns_to_the_same_request(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.signed_in_user("owner@example.com").await;
    let client = register(&app, "owner@example.com", &[REDIRECT], ALL_SCOPES, false);
    let browser = app.browser();
    let r = browser.get(&auth_url(&app, &client.id, &[])).await;
    let consent = location(&r);
    let r = browser.get(&consent).await;
    assert_eq!(r.status(), 303);
    let login = location(&r);
    assert!(login.starts_with("/login?next=%2Foauth2%2Fconsent"), "{login}");
    let page = browser.get_html(&login).await;
    let next = crate::helpers::hidden_value(&page, "next").expect("next");
    assert_eq!(next, consent);
    let csrf = crate::helpers::hidden_value(&page, "csrf_token").expect("csrf");
    let r = browser
        .post_raw(
            "/login",
            &[("csrf_token", &csrf), ("email", "owner@example.com"), ("password", PASSWORD), ("next", &next)],
        )
        .await;
    assert_eq!(location(&r), consent);
    let html = browser.get_html(&consent).await;
    let to = location(&decide(&browser, &html, "allow", None).await);
    assert!(query_param(&to, "code").is_some());
    assert_eq!(query_param(&to, "state").as_deref(), Some("xyz-state"));
}

async fn denying_consent_redirects_with_access_denied(engine: Engine) {
    let (app, browser, client) = setup(engine, &[]).await;
    let html = open_consent(&browser, &auth_url(&app, &client.id, &[])).await;
    let r = decide(&browser, &html, "deny", None).await;
    let to = location(&r);
    assert_eq!(query_param(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&to, "state").as_deref(), Some("xyz-state"));
    assert_eq!(query_param(&to, "iss").as_deref(), Some(app.base.as_str()));
    assert!(query_param(&to, "code").is_none());
}

async fn only_workspaces_the_user_administers_can_be_chosen(engine: Engine) {
    let (app, browser, client) = setup(engine, &[]).await;
    stdout_json_ok(&app, &["admin", "create-user", "--email", "boss@example.com", "--password", PASSWORD]);
    let ws = stdout_json_ok(&app, &["admin", "create-workspace", "--name", "Boss Corp", "--owner", "boss@example.com"]);
    let ws_id = ws["id"].as_str().expect("id").to_owned();
    stdout_json_ok(
        &app,
        &["admin", "add-member", "--workspace", &ws_id, "--email", "user@example.com", "--role", "member"],
    );
    let html = open_consent(&browser, &auth_url(&app, &client.id, &[])).await;
    assert!(html.contains(&format!("<option value=\"{ws_id}\" disabled>")), "member workspace is not selectable");
    let r = decide(&browser, &html, "allow", Some(&ws_id)).await;
    assert_eq!(r.status(), 403);
    let r = decide(&browser, &html, "allow", Some("ws_not_mine")).await;
    assert_eq!(r.status(), 403);
    // The refused attempts did not use up the request.
    let to = location(&decide(&browser, &html, "allow", None).await);
    assert!(query_param(&to, "code").is_some());
}

fn stdout_json_ok(app: &TestApp, args: &[&str]) -> Value {
    crate::helpers::stdout_json(&app.cli(args))
}

async fn a_consent_challenge_can_be_decided_only_once(engine: Engine) {
    let (app, browser, client) = setup(engine, &[]).await;
    let html = open_consent(&browser, &auth_url(&app, &client.id, &[])).await;
    assert_eq!(decide(&browser, &html, "allow", None).await.status(), 303);
    let again = decide(&browser, &html, "allow", None).await;
    assert_eq!(again.status(), 400);
    assert!(again.text().await.expect("body").contains("expired or was already answered"));
    // And a forged challenge is no better.
    let forged = html.replace(&crate::helpers::hidden_value(&html, "consent_challenge").expect("c"), "forged");
    assert_eq!(decide(&browser, &forged, "allow", None).await.status(), 400);
}

async fn a_replayed_code_fails_and_revokes_what_the_first_use_issued(engine: Engine) {
    let (app, browser, client) = setup(engine, &[]).await;
    let code = obtain_code(&app, &browser, &client, &[]).await;
    let first = tokens(&app, &client, &code).await;
    let access = first["access_token"].as_str().expect("access");
    assert_eq!(api_status(&app, access).await, 200);
    let second = exchange(&app, &client, &code).await;
    assert_eq!(second.status(), 400);
    assert_eq!(error_of(second).await, "invalid_grant");
    assert_eq!(api_status(&app, access).await, 401, "the first exchange's access token is revoked");
    let r = refresh(&app, &client, first["refresh_token"].as_str().expect("refresh"), None).await;
    assert_eq!(error_of(r).await, "invalid_grant");
}

async fn codes_and_refresh_tokens_are_bound_to_their_client(engine: Engine) {
    let (app, browser, client) = setup(engine, &[]).await;
    let other = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let code = obtain_code(&app, &browser, &client, &[]).await;
    let r = exchange(&app, &other, &code).await;
    assert_eq!(error_of(r).await, "invalid_grant");
    // The rightful client can still use it: another client's attempt does not burn it.
    let t = tokens(&app, &client, &code).await;
    let r = refresh(&app, &other, t["refresh_token"].as_str().expect("rt"), None).await;
    assert_eq!(error_of(r).await, "invalid_grant");
    assert_eq!(refresh(&app, &client, t["refresh_token"].as_str().expect("rt"), None).await.status(), 200);
}

async fn token_endpoint_errors_follow_rfc_6749(engine: Engine) {
    let (app, browser, client) = setup(engine, &[("TESSERA_CODE_TTL", "1")]).await;
    let code = obtain_code(&app, &browser, &client, &[]).await;
    let http = reqwest::Client::new();
    let secret = client.secret.clone().expect("secret");
    let post = |body: String, basic: Option<(&str, &str)>| {
        let mut r =
            http.post(app.url("/oauth2/token")).header("content-type", "application/x-www-form-urlencoded").body(body);
        if let Some((id, s)) = basic {
            r = r.basic_auth(id, Some(s));
        }
        r.send()
    };
    let base = |extra: &str| {
        format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={VERIFIER}{extra}",
            urlenc(REDIRECT)
        )
    };
    let creds = Some((client.id.as_str(), secret.as_str()));

    type Case<'a> = (String, Option<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("code=x".into(), creds, 400, "invalid_request"),
        ("grant_type=password&username=a&password=b".to_owned(), creds, 400, "unsupported_grant_type"),
        ("grant_type=client_credentials".to_owned(), creds, 400, "unsupported_grant_type"),
        (base(""), Some((client.id.as_str(), "tes_sk_wrong")), 401, "invalid_client"),
        (base(""), Some(("app_nobody", secret.as_str())), 401, "invalid_client"),
        (base(""), None, 401, "invalid_client"),
        (base(&format!("&client_id={}", client.id)), None, 401, "invalid_client"),
        (base(&format!("&client_secret={secret}")), creds, 400, "invalid_request"),
        (base("&grant_type=authorization_code"), creds, 400, "invalid_request"),
        (format!("grant_type=authorization_code&redirect_uri={}", urlenc(REDIRECT)), creds, 400, "invalid_request"),
        (
            format!("grant_type=authorization_code&code=tes_ac_garbage&redirect_uri={}", urlenc(REDIRECT)),
            creds,
            400,
            "invalid_grant",
        ),
        (
            format!(
                "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={VERIFIER}",
                urlenc("https://partner.example/other")
            ),
            creds,
            400,
            "invalid_grant",
        ),
        (format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"), creds, 400, "invalid_grant"),
        ("grant_type=refresh_token".to_owned(), creds, 400, "invalid_request"),
        ("grant_type=refresh_token&refresh_token=tes_rt_nope".to_owned(), creds, 400, "invalid_grant"),
        // The client's verdict comes before anything about the code or token presented, although
        // both are read at the same time.
        ("grant_type=authorization_code".to_owned(), Some((client.id.as_str(), "tes_sk_wrong")), 401, "invalid_client"),
        (base(""), Some(("app_nobody", "tes_sk_wrong")), 401, "invalid_client"),
        (
            "grant_type=refresh_token&refresh_token=tes_rt_nope".to_owned(),
            Some((client.id.as_str(), "tes_sk_wrong")),
            401,
            "invalid_client",
        ),
    ];
    for (body, basic, status, error) in cases {
        let r = post(body.clone(), basic).await.expect("POST");
        assert_eq!(r.status().as_u16(), status, "{body}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{body}");
        if status == 401 {
            assert!(r.headers()["www-authenticate"].to_str().expect("ascii").starts_with("Basic"), "{body}");
        }
        assert_eq!(error_of(r).await, error, "{body}");
    }
    // client_secret_post works as well as basic (with a fresh code: this one lives a second).
    let fresh = obtain_code(&app, &browser, &client, &[]).await;
    let body = format!(
        "grant_type=authorization_code&code={fresh}&redirect_uri={}&code_verifier={VERIFIER}&client_id={}&client_secret={secret}",
        urlenc(REDIRECT),
        client.id
    );
    let r = post(body, None).await.expect("POST");
    assert_eq!(r.status(), 200, "client_secret_post");
    assert_eq!(r.headers()["cache-control"], "no-store");

    // Wrong content type is invalid_request, not a 5xx.
    let r = http
        .post(app.url("/oauth2/token"))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400);
    assert_eq!(error_of(r).await, "invalid_request");

    // An expired code (TESSERA_CODE_TTL=1) is invalid_grant.
    let stale = obtain_code(&app, &browser, &client, &[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = exchange(&app, &client, &stale).await;
    assert_eq!(error_of(r).await, "invalid_grant");
}

fn urlenc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn pkce_is_enforced_and_plain_or_downgrade_is_refused(engine: Engine) {
    let (app, browser, client) = setup(engine, &[]).await;
    // Wrong and missing verifiers.
    let code = obtain_code(&app, &browser, &client, &[]).await;
    let wrong = "x".repeat(43);
    for fields in [
        vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", wrong.as_str()),
        ],
        vec![("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT)],
    ] {
        let r = post_as(&app, "/oauth2/token", &client, &fields).await;
        assert_eq!(error_of(r).await, "invalid_grant");
    }
    assert_eq!(exchange(&app, &client, &code).await.status(), 200, "failed verifiers do not burn the code");

    // require_pkce on (default): a confidential client without PKCE is refused at authorize.
    let r = browser.get(&auth_url(&app, &client.id, &[("code_challenge", ""), ("code_challenge_method", "")])).await;
    assert_eq!(query_param(&location(&r), "error").as_deref(), Some("invalid_request"));

    // With require_pkce off, a confidential client may skip PKCE, but a verifier without a
    // challenge is refused (downgrade protection).
    let (app, browser, client) = setup(engine, &[("TESSERA_REQUIRE_PKCE", "false")]).await;
    let code = obtain_code(&app, &browser, &client, &[("code_challenge", ""), ("code_challenge_method", "")]).await;
    let r = exchange(&app, &client, &code).await;
    assert_eq!(error_of(r).await, "invalid_grant");
    let code = obtain_code(&app, &browser, &client, &[("code_challenge", ""), ("code_challenge_method", "")]).await;
    let r = post_as(
        &app,
        "/oauth2/token",
        &client,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)],
    )
    .await;
    assert_eq!(r.status(), 200);
}

async fn refresh_rotates_narrows_and_detects_reuse(engine: Engine) {
    let (app, browser, client) = setup(engine, &[]).await;
    let code = obtain_code(&app, &browser, &client, &[("scope", "caches:read caches:write")]).await;
    let t = tokens(&app, &client, &code).await;
    let rt1 = t["refresh_token"].as_str().expect("rt").to_owned();

    let r = refresh(&app, &client, &rt1, Some("caches:read")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let t2: Value = r.json().await.expect("json");
    assert_eq!(t2["scope"], "caches:read", "narrowed");
    let rt2 = t2["refresh_token"].as_str().expect("rt").to_owned();
    assert_ne!(rt1, rt2);

    // The rotated refresh token keeps the full grant: asking for both scopes again is allowed.
    let r = refresh(&app, &client, &rt2, Some("caches:read databases:read")).await;
    assert_eq!(error_of(r).await, "invalid_scope", "never wider");
    let r = refresh(&app, &client, &rt2, Some("caches:read caches:write")).await;
    assert_eq!(r.status(), 200);
    let t3: Value = r.json().await.expect("json");
    let at3 = t3["access_token"].as_str().expect("at").to_owned();
    assert_eq!(api_status(&app, &at3).await, 200);

    // Reusing rt1 (already rotated) fails and revokes the whole grant.
    let r = refresh(&app, &client, &rt1, None).await;
    assert_eq!(error_of(r).await, "invalid_grant");
    assert_eq!(api_status(&app, &at3).await, 401);
    let r = refresh(&app, &client, t3["refresh_token"].as_str().expect("rt"), None).await;
    assert_eq!(error_of(r).await, "invalid_grant");
}

/// A token issue writes the grant's `last_used_at` only when the recorded use is a minute old
/// or more, so a busy refresh chain does not rewrite its grant on every refresh.
async fn a_grant_records_its_last_use_to_the_minute(engine: Engine) {
    let (app, browser, client) = setup(engine, &[]).await;
    let store = tessera::store::Store::connect(&app.db.url).await.expect("store");
    let t = tokens(&app, &client, &obtain_code(&app, &browser, &client, &[]).await).await;
    let rt = t["refresh_token"].as_str().expect("rt");

    let (rt, ago) = last_use_after_refresh(&app, &store, &client, rt, 30).await;
    assert_eq!(ago, 30, "a use recorded 30 seconds ago stands");
    let (_, ago) = last_use_after_refresh(&app, &store, &client, &rt, 90).await;
    assert!((-1..=1).contains(&ago), "a use recorded 90 seconds ago is replaced by this one: {ago}");
}

/// Records the grant's last use `recorded_ago` seconds back, refreshes, and returns the next
/// refresh token and how many seconds back the grant's last use then is.
async fn last_use_after_refresh(
    app: &TestApp,
    store: &tessera::store::Store,
    client: &Client,
    refresh_token: &str,
    recorded_ago: i64,
) -> (String, i64) {
    let now = tessera::time::now();
    sqlx::query("UPDATE grants SET last_used_at = $1")
        .bind(now - recorded_ago)
        .execute(store.writer())
        .await
        .expect("set");
    let r = refresh(app, client, refresh_token, None).await;
    assert_eq!(r.status(), 200);
    let next = r.json::<Value>().await.expect("json")["refresh_token"].as_str().expect("rt").to_owned();
    let last: i64 = sqlx::query_scalar("SELECT last_used_at FROM grants").fetch_one(store.writer()).await.expect("get");
    (next, now - last)
}

/// Tokens issued before secrets carried their issue time are 8 characters shorter and stored
/// under the bare SHA-256 of the token. Rewriting two issued tokens' rows that way recreates them.
async fn tokens_issued_before_issue_times_still_work_until_they_expire(engine: Engine) {
    use tessera::credentials::{sha256_hex, PresentedSecret, SecretKind};
    let (app, browser, client) = setup(engine, &[]).await;
    let store = tessera::store::Store::connect(&app.db.url).await.expect("store");
    let mut earlier = Vec::new();
    for _ in 0..2 {
        let t = tokens(&app, &client, &obtain_code(&app, &browser, &client, &[]).await).await;
        let mut pair = Vec::new();
        for (table, kind, field) in [
            ("access_tokens", SecretKind::AccessToken, "access_token"),
            ("refresh_tokens", SecretKind::RefreshToken, "refresh_token"),
        ] {
            let issued = t[field].as_str().expect("token");
            let key = PresentedSecret::parse(kind, issued).expect("parses").token_key();
            let old = secret_from_before_issue_times(kind.prefix());
            let sql = format!("UPDATE {table} SET token_hash = $1 WHERE token_hash = $2");
            let changed = sqlx::query(&sql)
                .bind(sha256_hex(old.as_bytes()))
                .bind(&key)
                .execute(store.writer())
                .await
                .expect("rewrite")
                .rows_affected();
            assert_eq!(changed, 1, "{table}: the issued token is stored under its token key");
            pair.push(old);
        }
        earlier.push(pair);
    }
    let (at, rt) = (earlier[0][0].as_str(), earlier[0][1].as_str());

    assert_eq!(api_status(&app, at).await, 200, "bearer");
    let r = post_as(&app, "/oauth2/introspect", &client, &[("token", at)]).await;
    assert_eq!(r.json::<Value>().await.expect("json")["active"], true, "introspection");
    let other_at = earlier[1][0].as_str();
    let r = post_as(&app, "/oauth2/revoke", &client, &[("token", other_at)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(api_status(&app, other_at).await, 401, "revocation finds an earlier token");

    let r = refresh(&app, &client, rt, None).await;
    assert_eq!(r.status(), 200, "refresh of an earlier token");
    let t2: Value = r.json().await.expect("json");
    let at2 = t2["access_token"].as_str().expect("at");
    // The rotated token is found again, so presenting it twice is caught as reuse.
    let r = refresh(&app, &client, rt, None).await;
    assert_eq!(error_of(r).await, "invalid_grant");
    assert_eq!(api_status(&app, at2).await, 401, "reuse revoked the grant");
    assert_eq!(api_status(&app, at).await, 401);
}

/// `prefix` + 43 random base62 characters + the CRC-32 checksum: a secret as issued before.
fn secret_from_before_issue_times(prefix: &str) -> String {
    const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut value = format!("{prefix}{}", tessera::credentials::random_token());
    let mut n = crc32fast::hash(value.as_bytes());
    let mut checksum = [b'0'; 6];
    for slot in checksum.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    value.push_str(std::str::from_utf8(&checksum).expect("ascii"));
    value
}

async fn concurrent_refreshes_with_one_token_let_exactly_one_succeed(engine: Engine) {
    let (app, browser, client) = setup(engine, &[]).await;
    let code = obtain_code(&app, &browser, &client, &[]).await;
    let t = tokens(&app, &client, &code).await;
    let rt = t["refresh_token"].as_str().expect("rt").to_owned();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (url, id, secret) = (app.url("/oauth2/token"), client.id.clone(), client.secret.clone());
        let body = crate::helpers::encode(&[("grant_type", "refresh_token"), ("refresh_token", &rt)]);
        set.spawn(async move {
            let http = reqwest::Client::new();
            let request =
                http.post(url).basic_auth(id, secret).header("content-type", "application/x-www-form-urlencoded");
            request.body(body).send().await.expect("POST").status()
        });
    }
    let results = set.join_all().await;
    let winners = results.iter().filter(|s| s.is_success()).count();
    assert_eq!(winners, 1, "{results:?}");
}

async fn revocation_and_introspection_follow_rfc_7009_and_7662(engine: Engine) {
    let (app, browser, client) = setup(engine, &[]).await;
    let other = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let t = tokens(&app, &client, &obtain_code(&app, &browser, &client, &[]).await).await;
    let at = t["access_token"].as_str().expect("at").to_owned();
    let rt = t["refresh_token"].as_str().expect("rt").to_owned();

    let r = post_as(&app, "/oauth2/introspect", &client, &[("token", &at)]).await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    let info: Value = r.json().await.expect("json");
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], client.id.as_str());
    assert_eq!(info["scope"], "caches:read databases:write");
    assert_eq!(info["token_type"], "Bearer");
    assert!(info["sub"].as_str().expect("sub").starts_with("usr_"));
    assert!(info["workspace_id"].as_str().expect("ws").starts_with("ws_"));
    assert!(info["exp"].as_i64().expect("exp") > info["iat"].as_i64().expect("iat"));
    let info: Value =
        post_as(&app, "/oauth2/introspect", &client, &[("token", &rt), ("token_type_hint", "refresh_token")])
            .await
            .json()
            .await
            .expect("json");
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "refresh_token");

    // Another client learns nothing and cannot revoke.
    let info: Value = post_as(&app, "/oauth2/introspect", &other, &[("token", &at)]).await.json().await.expect("json");
    assert_eq!(info, serde_json::json!({"active": false}));
    assert_eq!(post_as(&app, "/oauth2/revoke", &other, &[("token", &at)]).await.status(), 200);
    assert_eq!(api_status(&app, &at).await, 200);
    // Unknown tokens: 200 and inactive.
    assert_eq!(post_as(&app, "/oauth2/revoke", &client, &[("token", "tes_at_unknown")]).await.status(), 200);
    let info: Value =
        post_as(&app, "/oauth2/introspect", &client, &[("token", "garbage")]).await.json().await.expect("json");
    assert_eq!(info["active"], false);
    // Errors: missing token, bad hint, bad client.
    assert_eq!(error_of(post_as(&app, "/oauth2/revoke", &client, &[]).await).await, "invalid_request");
    assert_eq!(
        error_of(post_as(&app, "/oauth2/revoke", &client, &[("token", &at), ("token_type_hint", "id_token")]).await)
            .await,
        "unsupported_token_type"
    );
    let nobody = Client { id: client.id.clone(), secret: Some("tes_sk_wrong".into()) };
    let r = post_as(&app, "/oauth2/introspect", &nobody, &[("token", &at)]).await;
    assert_eq!(r.status(), 401);
    // The client's verdict comes first, even about a request that names no token.
    assert_eq!(error_of(post_as(&app, "/oauth2/introspect", &nobody, &[]).await).await, "invalid_client");
    assert_eq!(error_of(post_as(&app, "/oauth2/introspect", &client, &[]).await).await, "invalid_request");

    // Revoking the refresh token revokes the access tokens issued from it.
    assert_eq!(
        post_as(&app, "/oauth2/revoke", &client, &[("token", &rt), ("token_type_hint", "refresh_token")])
            .await
            .status(),
        200
    );
    assert_eq!(api_status(&app, &at).await, 401);
    let info: Value = post_as(&app, "/oauth2/introspect", &client, &[("token", &rt)]).await.json().await.expect("json");
    assert_eq!(info["active"], false);
    assert_eq!(error_of(refresh(&app, &client, &rt, None).await).await, "invalid_grant");

    // A public client revokes by naming itself.
    let public = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, true);
    let t = tokens(&app, &public, &obtain_code(&app, &browser, &public, &[]).await).await;
    let at = t["access_token"].as_str().expect("at");
    assert_eq!(post_as(&app, "/oauth2/revoke", &public, &[("token", at)]).await.status(), 200);
    assert_eq!(api_status(&app, at).await, 401);
}

async fn metadata_describes_every_endpoint(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let meta: Value = reqwest::get(app.url("/.well-known/oauth-authorization-server"))
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(meta["issuer"], app.base.as_str());
    for (key, path) in [
        ("authorization_endpoint", "/oauth2/auth"),
        ("token_endpoint", "/oauth2/token"),
        ("revocation_endpoint", "/oauth2/revoke"),
        ("introspection_endpoint", "/oauth2/introspect"),
    ] {
        assert_eq!(meta[key], app.url(path), "{key}");
    }
    assert_eq!(meta["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(meta["grant_types_supported"], serde_json::json!(["authorization_code", "refresh_token"]));
    assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
    assert_eq!(meta["scopes_supported"].as_array().expect("scopes").len(), 6);
    let methods = meta["token_endpoint_auth_methods_supported"].as_array().expect("methods");
    assert!(methods.contains(&"client_secret_basic".into()) && methods.contains(&"client_secret_post".into()));
}

async fn deleting_the_app_invalidates_its_codes_and_tokens(engine: Engine) {
    let (app, browser, client) = setup(engine, &[]).await;
    let t = tokens(&app, &client, &obtain_code(&app, &browser, &client, &[]).await).await;
    let pending_code = obtain_code(&app, &browser, &client, &[]).await;
    let at = t["access_token"].as_str().expect("at");
    assert_eq!(api_status(&app, at).await, 200);
    let page = format!("/apps/{}/delete", client.id);
    assert_eq!(browser.submit(&page, &page, &[]).await.status(), 303);
    assert_eq!(api_status(&app, at).await, 401);
    // The client itself no longer exists, so its credentials fail outright.
    assert_eq!(exchange(&app, &client, &pending_code).await.status(), 401);
    assert_eq!(refresh(&app, &client, t["refresh_token"].as_str().expect("rt"), None).await.status(), 401);
}

/// The janitor is run with a clock two hours ahead: the access token and the codes are past their
/// lifetimes, the refresh token (30 days) is not. What it removed is gone for the API too.
async fn the_janitor_removes_what_has_expired_and_nothing_else(engine: Engine) {
    let (app, browser, client) = setup(engine, &[]).await;
    let issued = tokens(&app, &client, &obtain_code(&app, &browser, &client, &[]).await).await;
    let unused_code = obtain_code(&app, &browser, &client, &[]).await;
    let access = issued["access_token"].as_str().expect("access token");
    let refresh_token = issued["refresh_token"].as_str().expect("refresh token");
    let store = tessera::store::Store::connect(&app.db.url).await.expect("store");

    let now = tessera::time::now();
    assert_eq!(tessera::ops::janitor::sweep(&store, now).await.expect("sweep"), 0, "nothing has expired yet");
    assert_eq!(api_status(&app, access).await, 200);

    let later = now + 2 * 3600;
    // Two codes, their two authorization requests and the access token.
    assert_eq!(tessera::ops::janitor::sweep(&store, later).await.expect("sweep"), 5);
    assert_eq!(tessera::ops::janitor::sweep(&store, later).await.expect("sweep"), 0, "a second pass finds nothing");
    assert_eq!(api_status(&app, access).await, 401, "the removed access token is unknown");
    let r = exchange(&app, &client, &unused_code).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.expect("json")["error"], "invalid_grant");
    let r = refresh(&app, &client, refresh_token, None).await;
    assert_eq!(r.status(), 200, "the refresh token outlives the sweep");
}
