//! The data plane with the real `redis-server`: a database created through the API becomes a
//! running Redis that a real client reaches with the returned endpoint, port and password.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::oauth::*;
use crate::helpers::{Engine, TestApp, TestDatabase};
use crate::on_both_engines;

on_both_engines!(
    a_database_becomes_a_private_redis_that_survives_a_crash_and_goes_away_when_deleted,
    failures_end_in_failed_with_a_reason,
    a_restarted_agent_adopts_its_servers,
    two_agents_provision_each_database_exactly_once,
    a_workspace_with_running_databases_is_not_deleted_until_they_are,
);

/// A port range of `size` ports that nothing else in this test run uses.
fn port_range(size: u16) -> (u16, u16) {
    loop {
        let start = 20_000 + (rand_u16() % 20_000);
        if (start..start + size).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return (start, start + size - 1);
        }
    }
}

fn rand_u16() -> u16 {
    tessera::credentials::random_token().bytes().fold(0u16, |acc, b| acc.wrapping_mul(31).wrapping_add(u16::from(b)))
}

pub async fn with_data_plane(
    engine: Engine,
    ports: (u16, u16),
    extra: &[(&str, &str)],
) -> (TestApp, Client, String, std::path::PathBuf) {
    let db = TestDatabase::create(engine).await;
    let data_dir = db.dir().join("redis");
    let ports_text = format!("{}-{}", ports.0, ports.1);
    let data_text = data_dir.display().to_string();
    let agent = format!("agent-{}", tessera::credentials::random_token());
    let mut env = vec![
        ("TESSERA_PROVISIONER", "redis"),
        ("TESSERA_REDIS_PORTS", ports_text.as_str()),
        ("TESSERA_REDIS_DATA_DIR", data_text.as_str()),
        ("TESSERA_AGENT_ID", agent.as_str()),
    ];
    env.extend_from_slice(extra);
    let app = TestApp::spawn_on(db, &env).await;
    let browser = app.signed_in_user("user@example.com").await;
    let client = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let code = obtain_code(&app, &browser, &client, &[("scope", "databases:read databases:write")]).await;
    let token = tokens(&app, &client, &code).await["access_token"].as_str().expect("token").to_owned();
    (app, client, token, data_dir)
}

async fn call(app: &TestApp, token: &str, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
    let mut request = reqwest::Client::new().request(method.parse().expect("method"), app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

/// Polls the database until it leaves pending/provisioning (or 404s when `gone`).
pub async fn wait_for_state(app: &TestApp, token: &str, id: &str, wanted: &str) -> Value {
    for _ in 0..200 {
        let r = call(app, token, "GET", &format!("/v1/databases/{id}"), None).await;
        if wanted == "gone" && r.status() == 404 {
            return Value::Null;
        }
        let body: Value = r.json().await.expect("json");
        if body["state"] == wanted {
            return body;
        }
        assert!(body["state"] != "failed" || wanted == "failed", "failed: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("database {id} never reached {wanted}");
}

async fn redis_connection(
    endpoint: &str,
    port: u16,
    password: &str,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://:{password}@{endpoint}:{port}/"))?;
    client.get_multiplexed_async_connection().await
}

async fn a_database_becomes_a_private_redis_that_survives_a_crash_and_goes_away_when_deleted(engine: Engine) {
    let (app, _client, token, data_dir) = with_data_plane(engine, port_range(5), &[]).await;
    let a = call(&app, &token, "POST", "/v1/databases", Some(json!({"name": "first", "region": "us-east-1"}))).await;
    assert_eq!(a.status(), 201);
    let a: Value = a.json().await.expect("json");
    assert!(a["state"] == "pending" || a["state"] == "provisioning");
    assert!(a["endpoint"].is_null(), "no invented endpoint");
    let b: Value = call(&app, &token, "POST", "/v1/databases", Some(json!({"name": "second", "region": "us-east-1"})))
        .await
        .json()
        .await
        .expect("json");

    let a = wait_for_state(&app, &token, a["id"].as_str().expect("id"), "active").await;
    let b = wait_for_state(&app, &token, b["id"].as_str().expect("id"), "active").await;
    let (endpoint, port, password) = (
        a["endpoint"].as_str().expect("endpoint"),
        a["port"].as_u64().expect("port") as u16,
        a["password"].as_str().expect("pw"),
    );
    assert_ne!(a["port"], b["port"]);

    let mut conn = redis_connection(endpoint, port, password).await.expect("connect with the returned password");
    let _: () = redis::cmd("SET").arg("greeting").arg("hello").query_async(&mut conn).await.expect("SET");
    let value: String = redis::cmd("GET").arg("greeting").query_async(&mut conn).await.expect("GET");
    assert_eq!(value, "hello");
    assert!(redis_connection(endpoint, port, "wrong-password").await.is_err(), "a wrong password is refused");
    let config: redis::RedisResult<Value> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("requirepass")
        .query_async(&mut conn)
        .await
        .map(|_: redis::Value| Value::Null);
    assert!(config.is_err(), "CONFIG is not available to the database's user");
    let mut other = redis_connection(
        b["endpoint"].as_str().expect("e"),
        b["port"].as_u64().expect("p") as u16,
        b["password"].as_str().expect("pw"),
    )
    .await
    .expect("connect b");
    let missing: Option<String> = redis::cmd("GET").arg("greeting").query_async(&mut other).await.expect("GET");
    assert_eq!(missing, None, "databases do not see each other's keys");

    // The console shows the state, endpoint, port and a ready-to-copy redis-cli command.
    let owner = crate::helpers::Browser::new(&app.base);
    owner.log_in("user@example.com", crate::helpers::PASSWORD).await;
    let ws = a["workspace_id"].as_str().expect("ws");
    let page = owner.get_html(&format!("/workspaces/{ws}/resources")).await;
    assert!(page.contains(&format!("redis-cli -h {endpoint} -p {port} -a {password}")), "{page}");
    assert!(page.contains(">active<"));
    assert!(!page.contains("No data plane is configured"));

    // Kill the server: the agent brings it back, with its data.
    tokio::time::sleep(Duration::from_millis(1200)).await; // appendfsync everysec
    let id = a["id"].as_str().expect("id");
    let pid = std::fs::read_to_string(data_dir.join(id).join("redis.pid")).expect("pid file");
    assert!(std::process::Command::new("kill").arg("-9").arg(pid.trim()).status().expect("kill").success());
    let mut back = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(mut c) = redis_connection(endpoint, port, password).await {
            if let Ok(v) = redis::cmd("GET").arg("greeting").query_async::<Option<String>>(&mut c).await {
                back = v;
                break;
            }
        }
    }
    assert_eq!(back.as_deref(), Some("hello"), "restarted with its data");

    // Delete: the port closes and the data goes.
    assert_eq!(call(&app, &token, "DELETE", &format!("/v1/databases/{id}"), None).await.status(), 204);
    wait_for_state(&app, &token, id, "gone").await;
    assert!(std::net::TcpStream::connect((endpoint, port)).is_err(), "port closed");
    assert!(!data_dir.join(id).exists(), "data removed");
    assert!(data_dir.join(b["id"].as_str().expect("id")).exists(), "the other database is untouched");
    let b_id = b["id"].as_str().expect("id");
    call(&app, &token, "DELETE", &format!("/v1/databases/{b_id}"), None).await;
    wait_for_state(&app, &token, b_id, "gone").await;
}

async fn failures_end_in_failed_with_a_reason(engine: Engine) {
    // One port, already taken by someone else: the range is exhausted.
    let ports = port_range(1);
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", ports.0)).expect("bind");
    let (app, _client, token, _dir) = with_data_plane(engine, ports, &[]).await;
    let db: Value =
        call(&app, &token, "POST", "/v1/databases", Some(json!({"name": "nowhere", "region": "us-east-1"})))
            .await
            .json()
            .await
            .expect("json");
    let failed = wait_for_state(&app, &token, db["id"].as_str().expect("id"), "failed").await;
    assert!(failed["state_reason"].as_str().expect("reason").contains("no free port"), "{failed}");
    assert!(failed["endpoint"].is_null());

    // TLS is not offered by this data plane: said plainly rather than pretended.
    let tls: Value = call(
        &app,
        &token,
        "POST",
        "/v1/databases",
        Some(json!({"name": "secure", "region": "us-east-1", "tls": true})),
    )
    .await
    .json()
    .await
    .expect("json");
    let failed = wait_for_state(&app, &token, tls["id"].as_str().expect("id"), "failed").await;
    assert!(failed["state_reason"].as_str().expect("reason").contains("TLS"), "{failed}");
    // A failed database can be deleted.
    let id = tls["id"].as_str().expect("id");
    assert_eq!(call(&app, &token, "DELETE", &format!("/v1/databases/{id}"), None).await.status(), 204);
    wait_for_state(&app, &token, id, "gone").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_data_plane_databases_stay_pending_and_say_why() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let browser = app.signed_in_user("user@example.com").await;
    let client = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let code = obtain_code(&app, &browser, &client, &[("scope", "databases:write databases:read")]).await;
    let token = tokens(&app, &client, &code).await["access_token"].as_str().expect("t").to_owned();
    let db: Value =
        call(&app, &token, "POST", "/v1/databases", Some(json!({"name": "waiting", "region": "us-east-1"})))
            .await
            .json()
            .await
            .expect("json");
    assert_eq!(db["state"], "pending");
    assert!(db["state_reason"].as_str().expect("reason").contains("no data plane is configured"));
}

#[test]
fn bad_data_plane_settings_stop_start_up() {
    let dir = tempfile::tempdir().expect("dir");
    for (key, value, named) in [
        ("TESSERA_PROVISIONER", "docker", "provisioner"),
        ("TESSERA_REDIS_PORTS", "9000-8000", "redis_ports"),
        ("TESSERA_REDIS_MAXMEMORY", "lots", "redis_maxmemory"),
        ("TESSERA_REDIS_SERVER", "/nonexistent/redis-server", "redis_server"),
        ("TESSERA_REDIS_BIND", "everywhere", "redis_bind"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("serve")
            .current_dir(dir.path())
            .env("TESSERA_PROVISIONER", if key == "TESSERA_PROVISIONER" { value } else { "redis" })
            .env(key, value)
            .output()
            .expect("run tessera");
        assert_eq!(out.status.code(), Some(1), "{key}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(named),
            "{key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

async fn a_restarted_agent_adopts_its_servers(engine: Engine) {
    let ports = port_range(3);
    let (app, _client, token, data_dir) = with_data_plane(engine, ports, &[("TESSERA_AGENT_ID", "steady-host")]).await;
    let db: Value = call(&app, &token, "POST", "/v1/databases", Some(json!({"name": "kept", "region": "us-east-1"})))
        .await
        .json()
        .await
        .expect("json");
    let id = db["id"].as_str().expect("id").to_owned();
    let db = wait_for_state(&app, &token, &id, "active").await;
    let (endpoint, port, password) = (
        db["endpoint"].as_str().expect("e").to_owned(),
        db["port"].as_u64().expect("p") as u16,
        db["password"].as_str().expect("pw").to_owned(),
    );
    let mut conn = redis_connection(&endpoint, port, &password).await.expect("connect");
    let _: () = redis::cmd("SET").arg("k").arg("v").query_async(&mut conn).await.expect("SET");

    // The agent (here: tessera serve) stops; its database keeps serving.
    let settings_env = [
        ("TESSERA_PROVISIONER", "redis".to_owned()),
        ("TESSERA_REDIS_PORTS", format!("{}-{}", ports.0, ports.1)),
        ("TESSERA_REDIS_DATA_DIR", data_dir.display().to_string()),
        ("TESSERA_AGENT_ID", "steady-host".to_owned()),
    ];
    let database = app.stop().await;
    let v: String = redis::cmd("GET").arg("k").query_async(&mut conn).await.expect("still serving");
    assert_eq!(v, "v");

    // A new agent under the same id adopts it, and restarts it when it dies.
    let env: Vec<(&str, &str)> = settings_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestApp::spawn_on(database, &env).await;
    let pid = std::fs::read_to_string(data_dir.join(&id).join("redis.pid")).expect("pid");
    assert!(std::process::Command::new("kill").arg("-9").arg(pid.trim()).status().expect("kill").success());
    let mut back = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(mut c) = redis_connection(&endpoint, port, &password).await {
            if redis::cmd("PING").query_async::<String>(&mut c).await.is_ok() {
                back = true;
                break;
            }
        }
    }
    assert!(back, "the adopted server was restarted by the new agent");
    assert_eq!(call(&app, &token, "DELETE", &format!("/v1/databases/{id}"), None).await.status(), 204);
    wait_for_state(&app, &token, &id, "gone").await;
}

async fn two_agents_provision_each_database_exactly_once(engine: Engine) {
    let ports_a = port_range(8);
    let (app, _client, token, dir_a) = with_data_plane(engine, ports_a, &[("TESSERA_AGENT_ID", "host-a")]).await;
    // A second agent: the real `tessera agent` command on the same database, with its own ports and directory.
    let ports_b = loop {
        let r = port_range(8);
        if r.1 < ports_a.0 || r.0 > ports_a.1 {
            break r;
        }
    };
    let dir_b = app.db.dir().join("redis-b");
    let mut agent_b = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("agent")
        .env("TESSERA_DATABASE_URL", &app.db.url)
        .env("TESSERA_PROVISIONER", "redis")
        .env("TESSERA_REDIS_PORTS", format!("{}-{}", ports_b.0, ports_b.1))
        .env("TESSERA_REDIS_DATA_DIR", &dir_b)
        .env("TESSERA_AGENT_ID", "host-b")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start tessera agent");

    let mut ids = Vec::new();
    for i in 0..6 {
        let db: Value = call(
            &app,
            &token,
            "POST",
            "/v1/databases",
            Some(json!({"name": format!("shared-{i}"), "region": "us-east-1"})),
        )
        .await
        .json()
        .await
        .expect("json");
        ids.push(db["id"].as_str().expect("id").to_owned());
    }
    let mut on_a = 0;
    for id in &ids {
        let db = wait_for_state(&app, &token, id, "active").await;
        let port = db["port"].as_u64().expect("port") as u16;
        let (in_a, in_b) = (dir_a.join(id).exists(), dir_b.join(id).exists());
        assert!(in_a ^ in_b, "{id} was provisioned by exactly one agent (a: {in_a}, b: {in_b})");
        let range = if in_a { ports_a } else { ports_b };
        assert!((range.0..=range.1).contains(&port), "{id} runs on its agent's port range");
        on_a += usize::from(in_a);
    }
    eprintln!("agent a provisioned {on_a} of {}, agent b the rest", ids.len());
    for id in &ids {
        call(&app, &token, "DELETE", &format!("/v1/databases/{id}"), None).await;
    }
    for id in &ids {
        wait_for_state(&app, &token, id, "gone").await;
    }
    let _ = agent_b.kill();
    let _ = agent_b.wait();
}

async fn a_workspace_with_running_databases_is_not_deleted_until_they_are(engine: Engine) {
    let (app, _client, _token, data_dir) = with_data_plane(engine, port_range(2), &[]).await;
    let owner = crate::helpers::Browser::new(&app.base);
    owner.log_in("user@example.com", crate::helpers::PASSWORD).await;
    let r = owner.submit("/", "/workspaces", &[("name", "Team")]).await;
    let ws = crate::helpers::location(&r).trim_start_matches("/workspaces/").to_owned();
    let page = format!("/workspaces/{ws}/resources");
    assert_eq!(
        owner
            .submit(&page, &format!("{page}/databases"), &[("name", "team-db"), ("region", "us-east-1")])
            .await
            .status(),
        303
    );
    let html = owner.get_html(&page).await;
    let at = html.find("data-database-id=\"").expect("row") + "data-database-id=\"".len();
    let id = html[at..at + html[at..].find('"').expect("end")].to_owned();
    for _ in 0..100 {
        if owner.get_html(&page).await.contains(">active<") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(data_dir.join(&id).exists(), "provisioned");

    // Deleting the workspace now would orphan the server: refused, nothing changes.
    let confirm = format!("/workspaces/{ws}/delete");
    let r = owner.submit(&confirm, &confirm, &[]).await;
    assert_eq!(r.status(), 409);
    assert!(r.text().await.expect("body").contains("provisioned database"));
    assert_eq!(owner.get(&page).await.status(), 200);

    // Once the database is gone (server stopped, data removed), the workspace can go.
    assert_eq!(owner.submit(&page, &format!("{page}/databases/{id}/delete"), &[]).await.status(), 303);
    for _ in 0..100 {
        if !owner.get_html(&page).await.contains(&id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!data_dir.join(&id).exists(), "data removed");
    assert_eq!(owner.submit(&confirm, &confirm, &[]).await.status(), 303);
    assert_eq!(owner.get(&page).await.status(), 404);
}
