//! The resource API: scopes, workspace isolation, validation, pagination, idempotency, API keys
//! and the OpenAPI document.

use serde_json::{json, Value};

use crate::helpers::oauth::*;
use crate::helpers::{Browser, Engine, TestApp};
use crate::on_both_engines;

on_both_engines!(
    every_route_needs_its_scope_and_answers_403_without_it,
    ids_from_another_workspace_answer_404,
    revoked_expired_and_malformed_credentials_answer_401,
    caches_and_rules_round_trip_with_validation,
    databases_are_pending_until_a_data_plane_exists_and_regions_are_checked,
    lists_paginate_with_opaque_cursors,
    idempotency_keys_replay_the_first_response,
    api_keys_outlive_their_access_token_and_die_with_the_grant,
    malformed_bodies_get_problem_json_4xx,
    the_openapi_document_covers_every_route,
);

struct Partner {
    app: TestApp,
    browser: Browser,
    client: Client,
}

async fn partner(engine: Engine, env: &[(&str, &str)]) -> Partner {
    let app = TestApp::spawn_with(engine, env).await;
    let browser = app.signed_in_user("user@example.com").await;
    let client = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    Partner { app, browser, client }
}

impl Partner {
    async fn tokens(&self, scopes: &str) -> Value {
        let code = obtain_code(&self.app, &self.browser, &self.client, &[("scope", scopes)]).await;
        tokens(&self.app, &self.client, &code).await
    }

    async fn token(&self, scopes: &str) -> String {
        self.tokens(scopes).await["access_token"].as_str().expect("token").to_owned()
    }

    async fn call(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
        let http = reqwest::Client::new();
        let mut request = http.request(method.parse().expect("method"), self.app.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request")
    }

    async fn json(&self, token: &str, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let r = self.call(token, method, path, body).await;
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        if status == 204 {
            return Value::Null;
        }
        r.json().await.expect("JSON")
    }
}

fn cache_body(name: &str) -> Value {
    json!({"name": name, "description": "orders", "origin": {"database_type": "postgres", "host": "db.example.com", "port": 5432}})
}

fn rule_body(name: &str) -> Value {
    json!({"name": name, "type": "template", "match": "SELECT * FROM orders WHERE id = ?", "ttl_seconds": 60})
}

async fn every_route_needs_its_scope_and_answers_403_without_it(engine: Engine) {
    let p = partner(engine, &[]).await;
    let all = p.token(ALL_SCOPES).await;
    let cache = p.json(&all, "POST", "/v1/caches", Some(cache_body("scoped")), 201).await;
    let cache_id = cache["id"].as_str().expect("id").to_owned();
    let rule = p.json(&all, "POST", &format!("/v1/caches/{cache_id}/rules"), Some(rule_body("r1")), 201).await;
    let rule_id = rule["id"].as_str().expect("id").to_owned();
    let db = p.json(&all, "POST", "/v1/databases", Some(json!({"name": "db1", "region": "eu-west-1"})), 201).await;
    let db_id = db["id"].as_str().expect("id").to_owned();

    let c = format!("/v1/caches/{cache_id}");
    let r = format!("{c}/rules/{rule_id}");
    let d = format!("/v1/databases/{db_id}");
    let routes: Vec<(&str, String, Option<Value>, &str, u16)> = vec![
        ("GET", "/v1/caches".into(), None, "caches:read", 200),
        ("GET", c.clone(), None, "caches:read", 200),
        ("PATCH", c.clone(), Some(json!({"description": "new"})), "caches:write", 200),
        ("POST", format!("{c}/purge"), None, "caches:write", 200),
        ("POST", "/v1/caches".into(), Some(cache_body("another")), "caches:write", 201),
        ("GET", format!("{c}/rules"), None, "cacheRules:read", 200),
        ("GET", r.clone(), None, "cacheRules:read", 200),
        ("PATCH", r.clone(), Some(json!({"ttl_seconds": 0})), "cacheRules:write", 200),
        ("POST", format!("{c}/rules"), Some(rule_body("r2")), "cacheRules:write", 201),
        ("DELETE", r.clone(), None, "cacheRules:write", 204),
        ("GET", "/v1/databases".into(), None, "databases:read", 200),
        ("GET", d.clone(), None, "databases:read", 200),
        ("POST", "/v1/databases".into(), Some(json!({"name": "db2", "region": "us-east-1"})), "databases:write", 201),
        ("DELETE", d.clone(), None, "databases:write", 204),
        ("DELETE", c.clone(), None, "caches:write", 204),
    ];
    for (method, path, body, scope, ok) in routes {
        // Every other scope, but not this one; `:write` does not imply `:read` and vice versa.
        let others: Vec<&str> = ALL_SCOPES.split(' ').filter(|s| *s != scope).collect();
        let without = p.token(&others.join(" ")).await;
        let denied = p.call(&without, method, &path, body.clone()).await;
        assert_eq!(denied.status(), 403, "{method} {path} without {scope}");
        let challenge = denied.headers()["www-authenticate"].to_str().expect("ascii").to_owned();
        assert!(
            challenge.contains("error=\"insufficient_scope\"") && challenge.contains(&format!("scope=\"{scope}\"")),
            "{challenge}"
        );
        assert_eq!(denied.headers()["content-type"], "application/problem+json");
        let with = p.token(scope).await;
        assert_eq!(p.call(&with, method, &path, body).await.status().as_u16(), ok, "{method} {path} with {scope}");
    }
    // With the grant revoked, every route answers 401 invalid_token, whatever the scope.
    let revoked = p.tokens(ALL_SCOPES).await;
    let at = revoked["access_token"].as_str().expect("at").to_owned();
    post_as(&p.app, "/oauth2/revoke", &p.client, &[("token", revoked["refresh_token"].as_str().expect("rt"))]).await;
    for (method, path) in [
        ("GET", "/v1/caches".to_owned()),
        ("POST", "/v1/caches".to_owned()),
        ("GET", format!("{c}/rules")),
        ("POST", format!("{c}/purge")),
        ("GET", "/v1/databases".to_owned()),
        ("POST", "/v1/databases".to_owned()),
        ("GET", "/v1/api-keys".to_owned()),
        ("POST", "/v1/api-keys".to_owned()),
        ("GET", "/v1/workspace".to_owned()),
    ] {
        let r = p.call(&at, method, &path, Some(json!({}))).await;
        assert_eq!(r.status(), 401, "{method} {path}");
        assert!(r.headers()["www-authenticate"].to_str().expect("ascii").contains("invalid_token"));
    }
    // The workspace route answers any valid credential.
    let narrow = p.token("cacheRules:read").await;
    let ws = p.json(&narrow, "GET", "/v1/workspace", None, 200).await;
    assert_eq!(ws["scopes"], json!(["cacheRules:read"]));
}

async fn ids_from_another_workspace_answer_404(engine: Engine) {
    let p = partner(engine, &[]).await;
    let mine = p.token(ALL_SCOPES).await;
    let cache = p.json(&mine, "POST", "/v1/caches", Some(cache_body("mine")), 201).await;
    let rule = p
        .json(
            &mine,
            "POST",
            &format!("/v1/caches/{}/rules", cache["id"].as_str().expect("id")),
            Some(rule_body("r")),
            201,
        )
        .await;
    let db = p.json(&mine, "POST", "/v1/databases", Some(json!({"name": "mine", "region": "us-east-1"})), 201).await;

    // Another user, another workspace, the same partner.
    let other_browser = p.app.signed_in_user("other@example.com").await;
    let code = obtain_code(&p.app, &other_browser, &p.client, &[("scope", ALL_SCOPES)]).await;
    let theirs = tokens(&p.app, &p.client, &code).await["access_token"].as_str().expect("at").to_owned();
    let cache_id = cache["id"].as_str().expect("id");
    let rule_id = rule["id"].as_str().expect("id");
    let db_id = db["id"].as_str().expect("id");
    for (method, path, body) in [
        ("GET", format!("/v1/caches/{cache_id}"), None),
        ("PATCH", format!("/v1/caches/{cache_id}"), Some(json!({"description": "x"}))),
        ("DELETE", format!("/v1/caches/{cache_id}"), None),
        ("POST", format!("/v1/caches/{cache_id}/purge"), None),
        ("GET", format!("/v1/caches/{cache_id}/rules"), None),
        ("POST", format!("/v1/caches/{cache_id}/rules"), Some(rule_body("x"))),
        ("GET", format!("/v1/caches/{cache_id}/rules/{rule_id}"), None),
        ("DELETE", format!("/v1/caches/{cache_id}/rules/{rule_id}"), None),
        ("GET", format!("/v1/databases/{db_id}"), None),
        ("DELETE", format!("/v1/databases/{db_id}"), None),
    ] {
        let r = p.call(&theirs, method, &path, body).await;
        assert_eq!(r.status(), 404, "{method} {path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    let list = p.json(&theirs, "GET", "/v1/caches", None, 200).await;
    assert_eq!(list["items"], json!([]));
    p.json(&mine, "GET", &format!("/v1/caches/{cache_id}"), None, 200).await;
}

async fn revoked_expired_and_malformed_credentials_answer_401(engine: Engine) {
    let p = partner(engine, &[("TESSERA_ACCESS_TOKEN_TTL", "3")]).await;
    let t = p.tokens(ALL_SCOPES).await;
    let at = t["access_token"].as_str().expect("at").to_owned();
    p.json(&at, "GET", "/v1/caches", None, 200).await;
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    for token in [at.as_str(), "tes_at_garbage", "", "tes_ak_notakey"] {
        let r = p.call(token, "GET", "/v1/caches", None).await;
        assert_eq!(r.status(), 401, "{token:?}");
        let challenge = r.headers()["www-authenticate"].to_str().expect("ascii").to_owned();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
    }
    let r = reqwest::Client::new().get(p.app.url("/v1/caches")).send().await.expect("GET");
    assert_eq!(r.status(), 401, "no credential");
    // A refreshed token works; revoking the grant makes it fail on its next use.
    let r = refresh(&p.app, &p.client, t["refresh_token"].as_str().expect("rt"), None).await;
    let fresh: Value = r.json().await.expect("json");
    let fresh = fresh["access_token"].as_str().expect("at").to_owned();
    p.json(&fresh, "GET", "/v1/databases", None, 200).await;
    let rt = fresh.clone();
    assert_eq!(post_as(&p.app, "/oauth2/revoke", &p.client, &[("token", &rt)]).await.status(), 200);
    let r = p.call(&fresh, "GET", "/v1/databases", None).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().expect("ascii").contains("invalid_token"));
}

async fn caches_and_rules_round_trip_with_validation(engine: Engine) {
    let p = partner(engine, &[]).await;
    let t = p.token(ALL_SCOPES).await;
    let cache = p.json(&t, "POST", "/v1/caches", Some(cache_body("orders-cache")), 201).await;
    let id = cache["id"].as_str().expect("id").to_owned();
    assert_eq!(cache["caching_enabled"], true);
    assert_eq!(cache["default_behaviour"], "auto_cached");
    assert_eq!(cache["origin"], json!({"database_type": "postgres", "host": "db.example.com", "port": 5432}));
    assert!(cache["connection_uri_template"].as_str().expect("uri").contains(&format!("@{id}.cache.localhost:5432/")));
    assert!(cache["workspace_id"].as_str().expect("ws").starts_with("ws_"));
    let patched = p
        .json(
            &t,
            "PATCH",
            &format!("/v1/caches/{id}"),
            Some(json!({"caching_enabled": false, "origin": {"port": 6543}})),
            200,
        )
        .await;
    assert_eq!(patched["caching_enabled"], false);
    assert_eq!(patched["origin"]["port"], 6543);
    assert_eq!(p.json(&t, "GET", &format!("/v1/caches/{id}"), None, 200).await["origin"]["port"], 6543);
    let purged = p.json(&t, "POST", &format!("/v1/caches/{id}/purge"), None, 200).await;
    assert!(purged["purged_at"].is_string());
    let r = p.call(&t, "POST", "/v1/caches", Some(cache_body("orders-cache"))).await;
    assert_eq!(r.status(), 409, "names are unique per workspace");

    let bad_caches = [
        (json!({"name": "Bad Name", "origin": {"database_type": "postgres", "host": "h", "port": 1}}), "name"),
        (json!({"name": &"a".repeat(64), "origin": {"database_type": "postgres", "host": "h", "port": 1}}), "name"),
        (json!({"name": "x", "origin": {"database_type": "oracle", "host": "h", "port": 1}}), "origin.database_type"),
        (json!({"name": "x", "origin": {"database_type": "mysql", "host": "h", "port": 0}}), "origin.port"),
        (json!({"name": "x", "origin": {"database_type": "mysql", "host": "h", "port": 65536}}), "origin.port"),
        (json!({"name": "x", "origin": {"database_type": "mysql", "host": "bad host!", "port": 3306}}), "origin.host"),
        (
            json!({"name": "x", "origin": {"database_type": "mysql", "host": "h", "port": 3306}, "default_behaviour": "sometimes"}),
            "default_behaviour",
        ),
        (
            json!({"name": "x", "origin": {"database_type": "mysql", "host": "h", "port": 3306}, "colour": "red"}),
            "body",
        ),
    ];
    for (body, field) in bad_caches {
        let r = p.call(&t, "POST", "/v1/caches", Some(body.clone())).await;
        assert_eq!(r.status(), 422, "{body}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let problem: Value = r.json().await.expect("json");
        assert_eq!(problem["type"], "https://tessera.dev/problems/validation");
        let fields: Vec<&str> =
            problem["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().expect("f")).collect();
        assert!(fields.contains(&field), "{body}: {fields:?}");
    }

    let rules = format!("/v1/caches/{id}/rules");
    let rule = p.json(&t, "POST", &rules, Some(rule_body("by-id")), 201).await;
    assert_eq!(rule["type"], "template");
    assert_eq!(rule["match"], "SELECT * FROM orders WHERE id = ?");
    assert_eq!(rule["cache_id"], id.as_str());
    p.json(
        &t,
        "POST",
        &rules,
        Some(json!({"name": "orders", "type": "table", "match": "public.orders", "ttl_seconds": 0})),
        201,
    )
    .await;
    let bad_rules = [
        (json!({"name": "r", "type": "table", "match": "orders; drop", "ttl_seconds": 1}), "match"),
        (json!({"name": "r", "type": "template", "match": "SELECT 1", "ttl_seconds": 1}), "match"),
        (json!({"name": "r", "type": "query", "match": "DELETE FROM x", "ttl_seconds": 1}), "match"),
        (json!({"name": "r", "type": "regex", "match": "x", "ttl_seconds": 1}), "type"),
        (json!({"name": "r", "type": "table", "match": "t", "ttl_seconds": -1}), "ttl_seconds"),
        (json!({"name": "r", "type": "table", "match": "t", "ttl_seconds": 400_000_000}), "ttl_seconds"),
        (json!({"name": "R!", "type": "table", "match": "t", "ttl_seconds": 1}), "name"),
    ];
    for (body, field) in bad_rules {
        let problem = p.json(&t, "POST", &rules, Some(body.clone()), 422).await;
        let fields: Vec<&str> =
            problem["errors"].as_array().expect("errors").iter().map(|e| e["field"].as_str().expect("f")).collect();
        assert!(fields.contains(&field), "{body}: {fields:?}");
    }
    let rule_id = rule["id"].as_str().expect("id");
    let patched = p
        .json(
            &t,
            "PATCH",
            &format!("{rules}/{rule_id}"),
            Some(json!({"type": "query", "match": "select * from orders"})),
            200,
        )
        .await;
    assert_eq!(patched["type"], "query");
    p.json(&t, "DELETE", &format!("/v1/caches/{id}"), None, 204).await;
    p.json(&t, "GET", &format!("{rules}/{rule_id}"), None, 404).await;
}

async fn databases_are_pending_until_a_data_plane_exists_and_regions_are_checked(engine: Engine) {
    let p = partner(engine, &[("TESSERA_REGIONS", "us-east-1,eu-central-1")]).await;
    let t = p.token("databases:read databases:write").await;
    let db =
        p.json(&t, "POST", "/v1/databases", Some(json!({"name": "sessions", "region": "eu-central-1"})), 201).await;
    assert_eq!(db["state"], "pending");
    assert_eq!(db["endpoint"], Value::Null);
    assert_eq!(db["port"], Value::Null);
    assert_eq!(db["tls"], false, "TLS is opt-in while the data plane cannot offer it");
    assert!(db["password"].as_str().expect("password").len() >= 22);
    let listed = p.json(&t, "GET", "/v1/databases", None, 200).await;
    assert_eq!(listed["items"][0]["id"], db["id"]);
    let problem = p.json(&t, "POST", "/v1/databases", Some(json!({"name": "x", "region": "mars-1"})), 422).await;
    let message = problem["errors"][0]["message"].as_str().expect("message");
    assert!(message.contains("us-east-1") && message.contains("eu-central-1"), "{message}");
    p.json(&t, "POST", "/v1/databases", Some(json!({"name": "sessions", "region": "us-east-1"})), 409).await;
    p.json(&t, "DELETE", &format!("/v1/databases/{}", db["id"].as_str().expect("id")), None, 204).await;
    p.json(&t, "GET", &format!("/v1/databases/{}", db["id"].as_str().expect("id")), None, 404).await;
}

async fn lists_paginate_with_opaque_cursors(engine: Engine) {
    let p = partner(engine, &[]).await;
    let t = p.token(ALL_SCOPES).await;
    for i in 0..7 {
        p.json(&t, "POST", "/v1/databases", Some(json!({"name": format!("db-{i}"), "region": "us-east-1"})), 201).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/databases?limit=3&cursor={c}"),
            None => "/v1/databases?limit=3".into(),
        };
        let page = p.json(&t, "GET", &path, None, 200).await;
        pages += 1;
        for item in page["items"].as_array().expect("items") {
            seen.push(item["name"].as_str().expect("name").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 7, "every database exactly once: {seen:?}");
    assert_eq!(
        p.json(&t, "GET", "/v1/databases", None, 200).await["items"].as_array().expect("items").len(),
        7,
        "default limit 20"
    );
    for bad in ["limit=0", "limit=101", "limit=ten", "cursor=not-a-cursor"] {
        let problem = p.json(&t, "GET", &format!("/v1/databases?{bad}"), None, 422).await;
        assert!(problem["errors"][0]["field"].is_string(), "{bad}");
    }
    // The caller and the page are read together, but the caller is judged first: a malformed
    // page query tells a caller without a live credential, or without the scope, nothing more.
    let caches_only = p.token("caches:read").await;
    let revoked = p.token(ALL_SCOPES).await;
    assert_eq!(post_as(&p.app, "/oauth2/revoke", &p.client, &[("token", &revoked)]).await.status(), 200);
    for path in ["/v1/databases?limit=0", "/v1/caches?cursor=not-a-cursor", "/v1/caches"] {
        p.json("tes_at_0000000000000000000000000000000000000000000000000", "GET", path, None, 401).await;
        p.json(&revoked, "GET", path, None, 401).await;
    }
    p.json(&caches_only, "GET", "/v1/databases?limit=0", None, 403).await;
    p.json(&caches_only, "GET", "/v1/databases", None, 403).await;
    p.json(&caches_only, "GET", "/v1/caches?limit=0", None, 422).await;
    assert_eq!(p.json(&caches_only, "GET", "/v1/caches", None, 200).await["items"], json!([]));
}

async fn idempotency_keys_replay_the_first_response(engine: Engine) {
    let p = partner(engine, &[]).await;
    let t = p.token(ALL_SCOPES).await;
    let http = reqwest::Client::new();
    let send = |key: &str, body: Value| {
        http.post(p.app.url("/v1/databases")).bearer_auth(&t).header("idempotency-key", key).json(&body).send()
    };
    let body = json!({"name": "once", "region": "us-east-1"});
    let first = send("retry-1", body.clone()).await.expect("POST");
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.expect("json");
    let second = send("retry-1", body.clone()).await.expect("POST");
    assert_eq!(second.status(), 201);
    assert_eq!(second.json::<Value>().await.expect("json"), first, "the same response, not a second database");
    let list = p.json(&t, "GET", "/v1/databases", None, 200).await;
    assert_eq!(list["items"].as_array().expect("items").len(), 1);
    let different = send("retry-1", json!({"name": "other", "region": "us-east-1"})).await.expect("POST");
    assert_eq!(different.status(), 422);
    let problem: Value = different.json().await.expect("json");
    assert_eq!(problem["type"], "https://tessera.dev/problems/idempotency-key-reused");

    // Concurrent retries with one key still make one database.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (url, token) = (p.app.url("/v1/databases"), t.clone());
        set.spawn(async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("idempotency-key", "burst")
                .json(&json!({"name": "burst", "region": "us-east-1"}))
                .send()
                .await
                .expect("POST");
            (r.status().as_u16(), r.json::<Value>().await.expect("json")["id"].clone())
        });
    }
    let results = set.join_all().await;
    assert!(results.iter().all(|(s, _)| *s == 201), "{results:?}");
    assert!(results.iter().all(|(_, id)| *id == results[0].1), "{results:?}");
    assert_eq!(p.json(&t, "GET", "/v1/databases", None, 200).await["items"].as_array().expect("items").len(), 2);

    // The janitor forgets responses after a day: the key then makes something new.
    let store = tessera::store::Store::connect(&p.app.db.url).await.expect("store");
    let later = tessera::time::now() + tessera::ops::janitor::IDEMPOTENCY_WINDOW + 60;
    store
        .write_counting(vec![tessera::store::idempotency::delete_older_than(
            later - tessera::ops::janitor::IDEMPOTENCY_WINDOW,
            500,
        )])
        .await
        .expect("forget");
    let again = send("retry-1", json!({"name": "other", "region": "us-east-1"})).await.expect("POST");
    assert_eq!(again.status(), 201, "a forgotten key is free again");
}

async fn api_keys_outlive_their_access_token_and_die_with_the_grant(engine: Engine) {
    let p = partner(engine, &[("TESSERA_ACCESS_TOKEN_TTL", "3")]).await;
    let t = p.tokens("databases:read databases:write").await;
    let at = t["access_token"].as_str().expect("at").to_owned();
    let key = p.json(&at, "POST", "/v1/api-keys", Some(json!({"name": "partner backend"})), 201).await;
    let secret = key["api_key"].as_str().expect("key").to_owned();
    assert!(secret.starts_with("tes_ak_"));
    assert_eq!(key["scopes"], json!(["databases:read", "databases:write"]));
    assert!(key["workspace_id"].as_str().expect("ws").starts_with("ws_"));
    let listed = p.json(&at, "GET", "/v1/api-keys", None, 200).await;
    assert_eq!(listed["items"][0]["id"], key["id"]);
    assert!(!listed.to_string().contains(&secret), "lists never show the key");

    // An API key cannot mint API keys, and needs its scopes like a token.
    let r = p.call(&secret, "POST", "/v1/api-keys", Some(json!({"name": "nested"}))).await;
    assert_eq!(r.status(), 403);
    assert_eq!(p.call(&secret, "GET", "/v1/caches", None).await.status(), 403);

    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(p.call(&at, "GET", "/v1/databases", None).await.status(), 401, "the access token expired");
    let db =
        p.json(&secret, "POST", "/v1/databases", Some(json!({"name": "via-key", "region": "us-east-1"})), 201).await;
    assert_eq!(db["state"], "pending");
    p.json(&secret, "GET", "/v1/workspace", None, 200).await;

    // Revoking the grant (here: the refresh token) kills the key at once.
    assert_eq!(
        post_as(&p.app, "/oauth2/revoke", &p.client, &[("token", t["refresh_token"].as_str().expect("rt"))])
            .await
            .status(),
        200
    );
    assert_eq!(p.call(&secret, "GET", "/v1/databases", None).await.status(), 401);

    // A key revoked through the API dies too.
    let t2 = p.token("databases:read").await;
    let key2 = p.json(&t2, "POST", "/v1/api-keys", Some(json!({"name": "short-lived"})), 201).await;
    let secret2 = key2["api_key"].as_str().expect("key").to_owned();
    p.json(&secret2, "GET", "/v1/databases", None, 200).await;
    p.json(&t2, "DELETE", &format!("/v1/api-keys/{}", key2["id"].as_str().expect("id")), None, 204).await;
    assert_eq!(p.call(&secret2, "GET", "/v1/databases", None).await.status(), 401);
    p.json(&t2, "DELETE", "/v1/api-keys/key_unknown", None, 404).await;

    // A token narrowed at refresh mints a key no wider than itself.
    let wide = p.tokens("databases:read databases:write").await;
    let r = refresh(&p.app, &p.client, wide["refresh_token"].as_str().expect("rt"), Some("databases:read")).await;
    let narrow: Value = r.json().await.expect("json");
    let narrow = narrow["access_token"].as_str().expect("at").to_owned();
    let key3 = p.json(&narrow, "POST", "/v1/api-keys", Some(json!({"name": "narrow"})), 201).await;
    assert_eq!(key3["scopes"], json!(["databases:read"]));
    // And a partner can revoke its key at the OAuth revocation endpoint too (RFC 7009).
    let secret3 = key3["api_key"].as_str().expect("key").to_owned();
    p.json(&secret3, "GET", "/v1/databases", None, 200).await;
    assert_eq!(post_as(&p.app, "/oauth2/revoke", &p.client, &[("token", &secret3)]).await.status(), 200);
    assert_eq!(p.call(&secret3, "GET", "/v1/databases", None).await.status(), 401);
    p.json(&t2, "POST", "/v1/api-keys", Some(json!({"name": ""})), 422).await;
}

async fn malformed_bodies_get_problem_json_4xx(engine: Engine) {
    let p = partner(engine, &[]).await;
    let t = p.token(ALL_SCOPES).await;
    let http = reqwest::Client::new();
    let post = |content_type: &'static str, body: String| {
        http.post(p.app.url("/v1/caches")).bearer_auth(&t).header("content-type", content_type).body(body).send()
    };
    let cases = [
        ("application/json", "{not json".to_owned(), 400),
        ("application/json", "".to_owned(), 400),
        ("text/plain", cache_body("x").to_string(), 415),
        ("application/json", "[1, 2]".to_owned(), 422),
        ("application/json", format!("{}{}", "[".repeat(200), "]".repeat(200)), 400),
        ("application/json", json!({"name": 5, "origin": {}}).to_string(), 422),
    ];
    for (content_type, body, status) in cases {
        let r = post(content_type, body.clone()).await.expect("POST");
        assert_eq!(r.status().as_u16(), status, "{content_type} {}", &body[..body.len().min(40)]);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    assert!(p.json(&t, "GET", "/v1/caches", None, 200).await["items"].as_array().expect("items").is_empty());
}

async fn the_openapi_document_covers_every_route(engine: Engine) {
    let p = partner(engine, &[]).await;
    let doc: Value = reqwest::get(p.app.url("/openapi.json")).await.expect("GET").json().await.expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    let expected = [
        ("get", "/v1/workspace"),
        ("get", "/v1/caches"),
        ("post", "/v1/caches"),
        ("get", "/v1/caches/{id}"),
        ("patch", "/v1/caches/{id}"),
        ("delete", "/v1/caches/{id}"),
        ("post", "/v1/caches/{id}/purge"),
        ("get", "/v1/caches/{id}/rules"),
        ("post", "/v1/caches/{id}/rules"),
        ("get", "/v1/caches/{id}/rules/{rule_id}"),
        ("patch", "/v1/caches/{id}/rules/{rule_id}"),
        ("delete", "/v1/caches/{id}/rules/{rule_id}"),
        ("get", "/v1/databases"),
        ("post", "/v1/databases"),
        ("get", "/v1/databases/{id}"),
        ("delete", "/v1/databases/{id}"),
        ("get", "/v1/api-keys"),
        ("post", "/v1/api-keys"),
        ("delete", "/v1/api-keys/{id}"),
    ];
    let paths = doc["paths"].as_object().expect("paths");
    let documented: usize = paths.values().map(|item| item.as_object().map_or(0, |o| o.len())).sum();
    for (method, path) in expected {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is missing from /openapi.json");
        assert!(operation["security"].is_array(), "{method} {path} declares its bearer security");
    }
    assert_eq!(documented, expected.len(), "every documented operation is expected, and vice versa");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    for schema in ["Cache", "Rule", "Database", "CreatedApiKey", "Problem"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    // Every route the server answers under /v1 is in the document: an undocumented path 404s.
    let t = p.token(ALL_SCOPES).await;
    assert_eq!(p.call(&t, "GET", "/v1/not-a-route", None).await.status(), 404);
}
