//! Requests the fuzzers found answered differently from what `/openapi.json` documents
//! (`scripts/schemathesis.sh`), kept so that they stay fixed: each response's status code and
//! content type must be the ones the document lists for its operation.

use serde_json::{json, Value};

use crate::helpers::oauth::*;
use crate::helpers::{Engine, TestApp};
use crate::on_both_engines;

on_both_engines!(undocumented_answers_found_by_schemathesis_are_documented);

/// The content types `/openapi.json` documents for `method path` answering `status`, or a panic
/// naming what is missing.
fn documented(doc: &Value, method: &str, path: &str, status: u16) -> Vec<String> {
    let response = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(response.is_object(), "{method} {path} answered {status}, which /openapi.json does not list");
    response["content"].as_object().map(|c| c.keys().cloned().collect()).unwrap_or_default()
}

async fn check(doc: &Value, method: &str, path: &str, response: reqwest::Response, status: u16) {
    assert_eq!(response.status().as_u16(), status, "{method} {path}");
    let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
    let types = documented(doc, method, path, status);
    assert!(types.contains(&content_type), "{method} {path} {status}: {content_type} is not among {types:?}");
}

async fn undocumented_answers_found_by_schemathesis_are_documented(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("user@example.com").await;
    let client = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let code = obtain_code(&app, &browser, &client, &[("scope", ALL_SCOPES)]).await;
    let token = tokens(&app, &client, &code).await["access_token"].as_str().expect("token").to_owned();
    let doc: Value = reqwest::get(app.url("/openapi.json")).await.expect("GET").json().await.expect("json");
    let http = reqwest::Client::new();
    let cache: Value = http
        .post(app.url("/v1/caches"))
        .bearer_auth(&token)
        .json(&json!({"name": "c1", "origin": {"database_type": "postgres", "host": "db.example.com", "port": 5432}}))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    let cache_id = cache["id"].as_str().expect("id");

    // Problem bodies are application/problem+json, and were documented as application/json.
    let r = http.get(app.url("/v1/caches/cch_missing")).bearer_auth(&token).send().await.expect("GET");
    check(&doc, "get", "/v1/caches/{id}", r, 404).await;
    let r = http.get(app.url("/v1/workspace")).bearer_auth("tes_at_not-a-token").send().await.expect("GET");
    check(&doc, "get", "/v1/workspace", r, 401).await;
    let r = http.delete(app.url("/v1/api-keys/key_missing")).bearer_auth(&token).send().await.expect("DELETE");
    check(&doc, "delete", "/v1/api-keys/{id}", r, 404).await;

    // A body that is not JSON at all: 400, which was not documented.
    let r = http
        .post(app.url(&format!("/v1/caches/{cache_id}/rules")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(b"\xa4|\x19\xff\xfe".to_vec())
        .send()
        .await
        .expect("POST");
    check(&doc, "post", "/v1/caches/{id}/rules", r, 400).await;
    let r = http
        .post(app.url("/v1/caches"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(b"\x1e\xff".to_vec())
        .send()
        .await
        .expect("POST");
    check(&doc, "post", "/v1/caches", r, 400).await;

    // A malformed Idempotency-Key: 400, not documented either.
    let r = http
        .post(app.url("/v1/databases"))
        .bearer_auth(&token)
        .header("idempotency-key", "k".repeat(256))
        .json(&json!({"name": "d1", "region": "us-east-1"}))
        .send()
        .await
        .expect("POST");
    check(&doc, "post", "/v1/databases", r, 400).await;

    // A PATCH without a JSON content type: 415, undocumented.
    let r = http
        .patch(app.url(&format!("/v1/caches/{cache_id}")))
        .bearer_auth(&token)
        .body("{}")
        .send()
        .await
        .expect("PATCH");
    check(&doc, "patch", "/v1/caches/{id}", r, 415).await;

    // A query string that is not UTF-8 once decoded: 400 on the list routes.
    let r = http.get(app.url("/v1/databases?limit=%FF")).bearer_auth(&token).send().await.expect("GET");
    check(&doc, "get", "/v1/databases", r, 400).await;
}
