//! Crash safety: `tessera serve` is killed with SIGKILL in the middle of code exchanges, refresh
//! rotations and API writes, then started again on the same database.
//!
//! Whatever reached the client must still be true afterwards (every token and API key it was
//! given works), nothing may be used twice (codes, refresh tokens, idempotency keys), and no
//! multi-row change may be half there (each was one transaction).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Row;

use crate::helpers::oauth::*;
use crate::helpers::{encode, Engine, TestApp};
use crate::on_both_engines;

on_both_engines!(sigkill_mid_load_loses_nothing_that_was_answered_and_doubles_nothing);

/// Codes made before the load; the exchanger spreads them over `LOAD`.
const CODES: usize = 30;
/// How long the load runs before the SIGKILL.
const LOAD: Duration = Duration::from_millis(1500);

/// What the clients saw during the load.
#[derive(Default)]
struct Ledger {
    /// Codes whose exchange answered 200 (used once; a second use must fail).
    codes_used: Vec<String>,
    /// Codes whose exchange got no answer: used at most once, whatever happened.
    codes_unknown: Vec<String>,
    /// Access tokens and API keys handed to the client: all must work after the restart.
    access_tokens: Vec<String>,
    api_keys: Vec<String>,
    /// Refresh tokens handed out and not yet presented.
    refresh_live: VecDeque<String>,
    /// Refresh tokens whose rotation answered 200: dead for good.
    refresh_rotated: Vec<String>,
    /// Refresh tokens presented without an answer: usable at most once more.
    refresh_unknown: Vec<String>,
    /// Idempotency key -> the database id in the answer, if an answer came.
    idempotency: Vec<(String, Option<String>)>,
    /// Answers that are wrong whatever the timing (a 5xx, or a refusal of a valid request).
    unexpected: Vec<String>,
}

type Shared = Arc<Mutex<Ledger>>;

fn http() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client")
}

/// POSTs a token-endpoint form with client_secret_basic; `None` when no answer arrived.
async fn token_call(base: &str, client: &Client, fields: &[(&str, &str)]) -> Option<(u16, Value)> {
    let r = http()
        .post(format!("{base}/oauth2/token"))
        .basic_auth(&client.id, client.secret.as_deref())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(fields))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.ok()?))
}

async fn exchange_code(base: &str, client: &Client, code: &str) -> Option<(u16, Value)> {
    let fields =
        [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT), ("code_verifier", VERIFIER)];
    token_call(base, client, &fields).await
}

async fn refresh_token(base: &str, client: &Client, token: &str) -> Option<(u16, Value)> {
    token_call(base, client, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await
}

async fn create_database(base: &str, token: &str, key: &str) -> Option<(u16, Value)> {
    let r = http()
        .post(format!("{base}/v1/databases"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({"name": key, "region": "us-east-1"}))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.ok()?))
}

async fn create_api_key(base: &str, token: &str, name: &str) -> Option<(u16, Value)> {
    let r =
        http().post(format!("{base}/v1/api-keys")).bearer_auth(token).json(&json!({"name": name})).send().await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.ok()?))
}

fn text(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_else(|| panic!("{field} in {v}")).to_owned()
}

/// Records a token response that reached the client.
fn delivered_tokens(ledger: &Shared, body: &Value) {
    let mut l = ledger.lock().unwrap();
    l.access_tokens.push(text(body, "access_token"));
    l.refresh_live.push_back(text(body, "refresh_token"));
}

async fn exchanger(base: String, client: Arc<Client>, codes: Vec<String>, ledger: Shared) {
    let pause = LOAD / codes.len() as u32;
    for code in codes {
        match exchange_code(&base, &client, &code).await {
            Some((200, body)) => {
                delivered_tokens(&ledger, &body);
                ledger.lock().unwrap().codes_used.push(code);
            }
            Some((status, body)) => {
                ledger.lock().unwrap().unexpected.push(format!("code exchange answered {status}: {body}"));
            }
            None => {
                // The server is gone (or going): the answer never came. Stop here.
                ledger.lock().unwrap().codes_unknown.push(code);
                return;
            }
        }
        tokio::time::sleep(pause).await;
    }
}

async fn refresher(base: String, client: Arc<Client>, ledger: Shared, stop: Arc<tokio::sync::Notify>) {
    loop {
        let next = ledger.lock().unwrap().refresh_live.pop_front();
        let Some(token) = next else {
            tokio::select! {
                _ = stop.notified() => return,
                _ = tokio::time::sleep(Duration::from_millis(5)) => continue,
            }
        };
        let answer = tokio::select! {
            _ = stop.notified() => {
                // Sent before the kill, answered never: it may or may not have been rotated.
                ledger.lock().unwrap().refresh_unknown.push(token);
                return;
            }
            answer = refresh_token(&base, &client, &token) => answer,
        };
        match answer {
            Some((200, body)) => {
                delivered_tokens(&ledger, &body);
                ledger.lock().unwrap().refresh_rotated.push(token);
            }
            Some((status, body)) => {
                ledger.lock().unwrap().unexpected.push(format!("refresh answered {status}: {body}"));
            }
            None => {
                ledger.lock().unwrap().refresh_unknown.push(token);
                return;
            }
        }
    }
}

async fn api_writer(id: usize, base: String, token: String, ledger: Shared, stop: Arc<tokio::sync::Notify>) {
    for n in 0.. {
        if n % 4 == 3 {
            let name = format!("writer {id} key {n}");
            let answer = tokio::select! {
                _ = stop.notified() => return,
                answer = create_api_key(&base, &token, &name) => answer,
            };
            match answer {
                Some((201, body)) => ledger.lock().unwrap().api_keys.push(text(&body, "api_key")),
                Some((status, body)) => {
                    ledger.lock().unwrap().unexpected.push(format!("POST /v1/api-keys answered {status}: {body}"));
                }
                None => return,
            }
            continue;
        }
        let key = format!("w{id}-{n}");
        ledger.lock().unwrap().idempotency.push((key.clone(), None));
        let answer = tokio::select! {
            _ = stop.notified() => return,
            answer = create_database(&base, &token, &key) => answer,
        };
        let mut l = ledger.lock().unwrap();
        match answer {
            Some((201, body)) => {
                let slot = l.idempotency.iter_mut().find(|(k, _)| *k == key).expect("recorded");
                slot.1 = Some(text(&body, "id"));
            }
            Some((status, body)) => l.unexpected.push(format!("POST /v1/databases answered {status}: {body}")),
            None => return,
        }
    }
}

async fn sigkill_mid_load_loses_nothing_that_was_answered_and_doubles_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let browser = app.signed_in_user("user@example.com").await;
    let client = Arc::new(register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false));
    // Every code comes from its own consent, so its own grant: replays below revoke one grant each.
    let mut codes = Vec::new();
    for _ in 0..CODES + 1 {
        codes.push(obtain_code(&app, &browser, &client, &[("scope", ALL_SCOPES)]).await);
    }
    let writer_code = codes.pop().expect("a code for the writers");
    let writer = tokens(&app, &client, &writer_code).await;
    let writer_token = text(&writer, "access_token");

    let server = app.spawn_process_beside().await;
    let ledger: Shared = Arc::new(Mutex::new(Ledger::default()));
    {
        let mut l = ledger.lock().unwrap();
        l.codes_used.push(writer_code);
        l.access_tokens.push(writer_token.clone());
        l.refresh_live.push_back(text(&writer, "refresh_token"));
    }
    let stop = Arc::new(tokio::sync::Notify::new());
    let mut load = tokio::task::JoinSet::new();
    load.spawn(exchanger(server.base.clone(), client.clone(), codes, ledger.clone()));
    for _ in 0..2 {
        load.spawn(refresher(server.base.clone(), client.clone(), ledger.clone(), stop.clone()));
    }
    for id in 0..2 {
        load.spawn(api_writer(id, server.base.clone(), writer_token.clone(), ledger.clone(), stop.clone()));
    }
    tokio::time::sleep(LOAD).await;
    server.kill();
    // Let the clients see their connections die, then stop them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.notify_waiters();
    // notify_waiters only wakes tasks already waiting; keep nudging until all have ended.
    while !load.is_empty() {
        stop.notify_waiters();
        let _ = tokio::time::timeout(Duration::from_millis(50), load.join_next()).await;
    }

    let restarted = app.spawn_process_beside().await;
    let base = restarted.base.clone();
    let l = Arc::try_unwrap(ledger).ok().expect("tasks ended").into_inner().unwrap();
    assert!(l.unexpected.is_empty(), "wrong answers during the load: {:#?}", l.unexpected);
    eprintln!(
        "{engine:?}: {} codes exchanged ({} unanswered), {} refreshes ({} unanswered), {} idempotent writes \
         ({} answered), {} API keys before the SIGKILL",
        l.codes_used.len(),
        l.codes_unknown.len(),
        l.refresh_rotated.len(),
        l.refresh_unknown.len(),
        l.idempotency.len(),
        l.idempotency.iter().filter(|(_, id)| id.is_some()).count(),
        l.api_keys.len()
    );
    assert!(l.codes_used.len() > 3 && l.refresh_rotated.len() > 3, "the load did too little to test anything");

    // 1. Every access token and API key whose response arrived works.
    for token in l.access_tokens.iter().chain(&l.api_keys) {
        assert_eq!(api_status(&restarted, token).await, 200, "{} lost in the crash", &token[..10]);
    }

    // 2. No half-written rows: each issue is one refresh and one access token together, each one
    //    comes from exactly one spent code or rotated refresh token, and each database made under
    //    an idempotency key has the key's stored answer and the other way round.
    let store = tessera::store::Store::connect(&app.db.url).await.expect("store");
    let db = store.writer();
    let per_grant = sqlx::query(
        "SELECT g.id,
            (SELECT COUNT(*) FROM access_tokens a WHERE a.grant_id = g.id) AS access,
            (SELECT COUNT(*) FROM refresh_tokens r WHERE r.grant_id = g.id) AS refresh,
            (SELECT COUNT(*) FROM refresh_tokens r WHERE r.grant_id = g.id AND r.rotated_at IS NOT NULL) AS rotated,
            (SELECT COUNT(*) FROM authorization_codes c WHERE c.grant_id = g.id AND c.used_at IS NOT NULL) AS spent
         FROM grants g",
    )
    .fetch_all(db)
    .await
    .expect("per-grant counts");
    for row in &per_grant {
        let (grant, access, refresh, rotated, spent): (String, i64, i64, i64, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        assert_eq!(access, refresh, "{grant}: access and refresh tokens are issued together");
        assert_eq!(refresh, spent + rotated, "{grant}: every token pair comes from one spent code or rotation");
        assert!(spent <= 1, "{grant}: one code per consent");
    }
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM access_tokens a WHERE NOT EXISTS (SELECT 1 FROM grants g WHERE g.id = a.grant_id)
            OR NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.token_hash = a.refresh_token_hash)",
    )
    .fetch_one(db)
    .await
    .expect("orphans");
    assert_eq!(orphans, 0, "access tokens without their grant or refresh token");
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT key, body FROM idempotency_keys").fetch_all(db).await.expect("idempotency keys");
    let databases: Vec<(String, String)> =
        sqlx::query_as("SELECT id, name FROM databases").fetch_all(db).await.expect("databases");
    let by_name: HashMap<&str, &str> = databases.iter().map(|(id, name)| (name.as_str(), id.as_str())).collect();
    assert_eq!(by_name.len(), databases.len(), "one database per name");
    assert_eq!(stored.len(), databases.len(), "each database has its idempotency record and vice versa");
    for (key, body) in &stored {
        let body: Value = serde_json::from_str(body).expect("stored answer");
        assert_eq!(by_name.get(key.as_str()).copied(), body["id"].as_str(), "{key}: stored answer names its database");
    }

    // 3. Every idempotency key replays its answer, or (never answered) makes at most one database.
    for (key, id) in &l.idempotency {
        let (status, body) = create_database(&base, &writer_token, key).await.expect("answer");
        assert_eq!(status, 201, "{key}: {body}");
        if let Some(id) = id {
            assert_eq!(body["id"].as_str(), Some(id.as_str()), "{key} replays the first answer");
        }
        let (again, body_again) = create_database(&base, &writer_token, key).await.expect("answer");
        assert_eq!((again, &body_again["id"]), (201, &body["id"]), "{key} replays");
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM databases").fetch_one(db).await.expect("count");
    assert_eq!(count as usize, l.idempotency.len(), "exactly one database per idempotency key");

    // 4. Refresh tokens the client holds rotate once after the restart.
    let mut spent_refresh = l.refresh_rotated.clone();
    for token in &l.refresh_live {
        let (status, body) = refresh_token(&base, &client, token).await.expect("answer");
        assert_eq!(status, 200, "a held refresh token was lost: {body}");
        spent_refresh.push(token.clone());
    }

    // 5. Nothing is used twice. Unanswered ones may have been used before the crash or not, but
    //    never both then and now: at most one of two more attempts succeeds, and not if it was.
    for code in &l.codes_unknown {
        let a = exchange_code(&base, &client, code).await.expect("answer").0;
        let b = exchange_code(&base, &client, code).await.expect("answer").0;
        assert!(b != 200 && [200, 400].contains(&a), "{code}: {a} then {b}");
    }
    for token in &l.refresh_unknown {
        let a = refresh_token(&base, &client, token).await.expect("answer").0;
        let b = refresh_token(&base, &client, token).await.expect("answer").0;
        assert!(b != 200 && [200, 400].contains(&a), "refresh: {a} then {b}");
    }
    for code in &l.codes_used {
        let (status, body) = exchange_code(&base, &client, code).await.expect("answer");
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "a code worked twice");
    }
    for token in &spent_refresh {
        let (status, body) = refresh_token(&base, &client, token).await.expect("answer");
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "a refresh token worked twice");
    }
    drop(restarted);
}
