//! Health, readiness, security headers, request ids and start-up configuration errors.

use crate::helpers::{Engine, TestApp};
use crate::on_both_engines;

on_both_engines!(
    health_and_readiness_answer,
    every_response_carries_security_headers_and_a_request_id,
    writes_committed_together_succeed_or_fail_each_alone,
    two_reads_made_as_one_each_find_their_row_or_nothing,
    reads_of_many_requests_at_once_each_find_their_own_row,
);

/// A token request reads the client's app and the presented code or token as one request (one
/// statement on PostgreSQL, the two reads side by side in one row): each read finds its own row
/// or nothing, whatever the other finds.
async fn two_reads_made_as_one_each_find_their_row_or_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let _owner = app.signed_in_user("owner@example.com").await;
    let client =
        crate::helpers::oauth::register(&app, "owner@example.com", &["https://a.example/cb"], "caches:read", false);
    let store = tessera::store::Store::connect(&app.db.url).await.expect("store");
    let lookup = tessera::store::apps::lookup;
    let ids = |(a, b): (Option<tessera::store::apps::AppRow>, Option<tessera::store::apps::AppRow>)| {
        (a.map(|row| row.client_id), b.map(|row| row.client_id))
    };
    let known = Some(client.id.clone());
    for (first, second, expected) in [
        (client.id.as_str(), client.id.as_str(), (known.clone(), known.clone())),
        (client.id.as_str(), "nobody", (known.clone(), None)),
        ("nobody", client.id.as_str(), (None, known.clone())),
        ("nobody", "nobody either", (None, None)),
    ] {
        let found = store.fetch_optional_pair(&lookup(first), &lookup(second)).await.expect("the reads");
        assert_eq!(ids(found), expected, "reading {first} and {second}");
    }
    store.close().await;
}

/// Reads of concurrent requests go to PostgreSQL together, those of one statement as one
/// statement: each still finds its own row or nothing, whatever the reads beside it find.
async fn reads_of_many_requests_at_once_each_find_their_own_row(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let _owner = app.signed_in_user("owner@example.com").await;
    let ids: Vec<String> = (0..4)
        .map(|_| {
            let client = crate::helpers::oauth::register(
                &app,
                "owner@example.com",
                &["https://a.example/cb"],
                "caches:read",
                false,
            );
            client.id
        })
        .collect();
    let store = tessera::store::Store::connect(&app.db.url).await.expect("store");
    let lookup = tessera::store::apps::lookup;
    // Every fifth asks for an app that does not exist.
    let asked = |i: usize| ids.get(i % 5).cloned().unwrap_or_else(|| format!("nobody-{i}"));
    let known = |id: &str| ids.iter().any(|known| known == id);
    let reads = (0..200).map(|i| {
        let (store, first, second) = (&store, asked(i), asked(i / 3 + 1));
        async move {
            let single = tessera::store::apps::find(store, &first).await.expect("a read");
            let pair = store.fetch_optional_pair(&lookup(&first), &lookup(&second)).await.expect("a pair of reads");
            (
                first,
                second,
                single.map(|row| row.client_id),
                pair.0.map(|row| row.client_id),
                pair.1.map(|row| row.client_id),
            )
        }
    });
    for (first, second, single, pair_first, pair_second) in futures_util::future::join_all(reads).await {
        let expect = |id: &str| known(id).then(|| id.to_owned());
        assert_eq!(single, expect(&first), "reading {first}");
        assert_eq!((pair_first, pair_second), (expect(&first), expect(&second)), "reading {first} and {second}");
    }
    store.close().await;
}

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

/// PostgreSQL refusing connections (as when it is down): requests fail fast with 503 and
/// `Retry-After`, `/readyz` says not ready, and Tessera recovers by itself when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_answers_503_with_retry_after_and_tessera_recovers() {
    use crate::helpers::oauth::{obtain_code, register, tokens, ALL_SCOPES, REDIRECT};
    use sqlx::{Connection, Executor};
    if !crate::helpers::postgres_available().await {
        return;
    }
    let app = TestApp::spawn(Engine::Postgres).await;
    let browser = app.signed_in_user("user@example.com").await;
    let client = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let t = tokens(&app, &client, &obtain_code(&app, &browser, &client, &[]).await).await;
    let token = t["access_token"].as_str().expect("at").to_owned();
    let name = postgres_database_name(&app);
    let mut admin = sqlx::PgConnection::connect(&crate::helpers::postgres_admin_url()).await.expect("admin");
    let http = reqwest::Client::new();

    admin.execute(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false").as_str()).await.expect("refuse");
    admin
        .execute(format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'").as_str())
        .await
        .expect("terminate");
    let started = std::time::Instant::now();
    let ready = http.get(app.url("/readyz")).send().await.expect("GET");
    assert_eq!(ready.status(), 503);
    let api = http.get(app.url("/v1/workspace")).bearer_auth(&token).send().await.expect("GET");
    assert_eq!(api.status(), 503);
    assert_eq!(api.headers()["retry-after"], "5");
    assert_eq!(api.headers()["content-type"], "application/problem+json");
    let refresh = crate::helpers::oauth::refresh(&app, &client, t["refresh_token"].as_str().expect("rt"), None).await;
    assert_eq!(refresh.status(), 503);
    assert!(refresh.headers().contains_key("retry-after"));
    let body: serde_json::Value = refresh.json().await.expect("json");
    assert_eq!(body["error"], "temporarily_unavailable");
    let page = browser.get("/").await;
    assert_eq!(page.status(), 503);
    assert!(page.text().await.expect("body").contains("Temporarily unavailable"));
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "failed fast: {:?}", started.elapsed());

    admin.execute(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true").as_str()).await.expect("allow");
    let mut recovered = false;
    for _ in 0..50 {
        if http.get(app.url("/v1/workspace")).bearer_auth(&token).send().await.expect("GET").status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(recovered, "Tessera reconnects by itself");
    assert_eq!(http.get(app.url("/readyz")).send().await.expect("GET").status(), 200);
    let _ = admin.close().await;
}

/// The name of the PostgreSQL database a test server runs on.
fn postgres_database_name(app: &TestApp) -> String {
    url::Url::parse(&app.db.url).expect("url").path().trim_start_matches('/').to_owned()
}

/// PostgreSQL closing Tessera's pooled connections while they sit idle (a restart, an idle
/// timeout, an operator ending sessions): the next requests get fresh connections, none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_postgres_connections_closed_while_idle_are_replaced_unnoticed() {
    use sqlx::Connection;
    if !crate::helpers::postgres_available().await {
        return;
    }
    let app = TestApp::spawn(Engine::Postgres).await;
    let browser = app.signed_in_user("user@example.com").await;
    let name = postgres_database_name(&app);
    let mut admin = sqlx::PgConnection::connect(&crate::helpers::postgres_admin_url()).await.expect("admin");
    let home_pages_at_once = || {
        let mut pages = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let browser = browser.on(&app.base);
            pages.spawn(async move { browser.get("/").await.status() });
        }
        pages.join_all()
    };
    for round in 0..2 {
        // Warm several pooled connections, then end them all while they are idle.
        assert!(home_pages_at_once().await.iter().all(|s| *s == 200), "round {round}: warm-up");
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&name)
        .fetch_all(&mut admin)
        .await
        .expect("terminate");
        assert!(!ended.is_empty(), "round {round}: Tessera held connections");
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        for status in home_pages_at_once().await {
            assert_eq!(status, 200, "round {round}: a request met a connection PostgreSQL had closed");
        }
    }
    let _ = admin.close().await;
}

/// Both engines commit the write transactions waiting at a moment as one group. Each still
/// succeeds or fails alone: a claim that lost its race, or a statement that broke a unique
/// constraint, undoes its own transaction and no other; every transaction that succeeds is there
/// whole; and a claim refused only because of a transaction beside it that failed in the end
/// is not refused.
async fn writes_committed_together_succeed_or_fail_each_alone(engine: Engine) {
    use std::future::Future;
    use std::pin::Pin;
    use tessera::store::query::Step;
    use tessera::store::StoreError;
    use tessera::values;
    type Write<'a> = Pin<Box<dyn Future<Output = Result<bool, StoreError>> + Send + 'a>>;

    let db = crate::helpers::TestDatabase::create(engine).await;
    let store = tessera::store::Store::connect(&db.url).await.expect("store");
    store.migrate().await.expect("migrate");
    for table in
        ["CREATE TABLE prizes (id BIGINT PRIMARY KEY, winner BIGINT)", "CREATE TABLE entries (entry TEXT PRIMARY KEY)"]
    {
        sqlx::query(table).execute(store.writer()).await.expect("a table");
    }
    let taken = Step::new("INSERT INTO entries (entry) VALUES ('taken')", values![]);
    store.write_counting(vec![taken]).await.expect("an entry");
    let prizes = (0..20).chain([100]).map(|id| Step::new("INSERT INTO prizes (id) VALUES ($1)", values![id]));
    store.write_counting(prizes.collect()).await.expect("prizes");

    let claim = |contender: i64, prize: i64| {
        Step::claim("UPDATE prizes SET winner = $1 WHERE id = $2 AND winner IS NULL", values![contender, prize])
    };
    let enter = |entry: String| Step::new("INSERT INTO entries (entry) VALUES ($1)", values![entry]);
    // Sixty contenders, three for each of prizes 0-19, claim it and record their entry. One told
    // it lost must find the prize taken at once: a failure is not answered before the
    // transaction it met has committed.
    let contend = |contender: i64| -> Write<'_> {
        let store = &store;
        Box::pin(async move {
            let won = store.write_all(vec![claim(contender, contender % 20), enter(contender.to_string())]).await?;
            if !won {
                let winner: Option<i64> = sqlx::query_scalar("SELECT winner FROM prizes WHERE id = $1")
                    .bind(contender % 20)
                    .fetch_one(store.reader())
                    .await?;
                assert!(winner.is_some(), "contender {contender} lost prize {} to nobody", contender % 20);
            }
            Ok(won)
        })
    };
    // Ten spoilers give every prize to -1, then record an entry that exists.
    let spoil = || -> Write<'_> {
        Box::pin(store.write_all(vec![Step::new("UPDATE prizes SET winner = -1", values![]), enter("taken".into())]))
    };
    // The doomed one claims prize 100, then records an entry that exists; the heir, right behind
    // it, claims prize 100 too, and must not be refused for a claim that never commits.
    let mut doomed_and_heir: Option<[Write<'_>; 2]> = Some([
        Box::pin(store.write_all(vec![claim(-2, 100), enter("taken".into())])),
        Box::pin(store.write_all(vec![claim(1000, 100)])),
    ]);

    let mut writes: Vec<Write<'_>> = Vec::new();
    for contender in 0..60 {
        writes.push(contend(contender));
        if contender % 6 == 5 {
            writes.push(spoil());
        }
        if contender == 30 {
            writes.extend(doomed_and_heir.take().into_iter().flatten());
        }
    }
    let outcomes = tokio::time::timeout(std::time::Duration::from_secs(30), futures_util::future::join_all(writes))
        .await
        .expect("every write is answered");

    let mut winners = Vec::new();
    let mut outcomes = outcomes.into_iter();
    for contender in 0..60 {
        if outcomes.next().expect("a contender's answer").expect("a contender's write") {
            winners.push(contender);
        }
        if contender % 6 == 5 {
            let error = outcomes.next().expect("a spoiler's answer").expect_err("a spoiler's write fails");
            assert!(error.is_unique_violation(), "{error}");
        }
        if contender == 30 {
            // It breaks the constraint, or it loses prize 100 to the heir if the heir was
            // committed first: it never wins.
            match outcomes.next().expect("the doomed one's answer") {
                Ok(won) => assert!(!won, "the doomed write cannot commit"),
                Err(error) => assert!(error.is_unique_violation(), "{error}"),
            }
            assert!(outcomes.next().expect("the heir's answer").expect("the heir's write"), "the heir won prize 100");
        }
    }
    assert_eq!(winners.len(), 20, "one winner per prize: {winners:?}");
    let won: Vec<(i64, i64)> =
        sqlx::query_as("SELECT id, winner FROM prizes ORDER BY id").fetch_all(store.reader()).await.expect("prizes");
    let mut expected: Vec<(i64, i64)> = winners.iter().map(|&w| (w % 20, w)).chain([(100, 1000)]).collect();
    expected.sort();
    assert_eq!(won, expected, "each prize to the contender told it won, prize 100 to the heir");
    let mut entries: Vec<String> =
        sqlx::query_scalar("SELECT entry FROM entries").fetch_all(store.reader()).await.expect("entries");
    entries.sort();
    let mut expected: Vec<String> = winners.iter().map(|w| w.to_string()).chain(["taken".to_owned()]).collect();
    expected.sort();
    assert_eq!(entries, expected, "exactly the winners' entries, besides the one there before");
    store.close().await;
}

/// A write whose caller gave up while PostgreSQL still worked on it (the client went away
/// mid-request) commits whole or not at all, in its own transaction: it must not stay open on a
/// pooled connection, where the next request would read its uncommitted rows and commit them
/// with its own, and it must not take a later write down with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_write_abandoned_halfway_commits_whole_and_leaves_no_open_transaction_behind() {
    use tessera::store::query::Step;
    use tessera::values;
    if !crate::helpers::postgres_available().await {
        return;
    }
    let app = TestApp::spawn(Engine::Postgres).await;
    let _owner = app.signed_in_user("owner@example.com").await;
    let client = crate::helpers::oauth::register(
        &app,
        "owner@example.com",
        &["https://partner.example/cb"],
        "caches:read",
        false,
    );
    let other =
        crate::helpers::oauth::register(&app, "owner@example.com", &["https://other.example/cb"], "caches:read", false);
    let store = tessera::store::Store::connect(&app.db.url).await.expect("store");
    let app_row = |client_id: String| {
        let store = &store;
        async move {
            let app = tessera::store::apps::find(store, &client_id).await.expect("read").expect("the app");
            (app.name, app.updated_at)
        }
    };
    let (name, updated_at) = app_row(other.id.clone()).await;

    // The claim holds its statement, and so its transaction, open for half a second, with a
    // step of another row beside it and COMMIT behind it; the request is dropped after 100 ms.
    let slow_rename = Step::claim(
        "WITH pause AS (SELECT pg_sleep(0.5)) UPDATE oauth_apps SET name = 'abandoned'
          WHERE client_id = $1 AND EXISTS (SELECT 1 FROM pause)",
        values![client.id.as_str()],
    );
    let touch = || {
        Step::new("UPDATE oauth_apps SET updated_at = updated_at + 1 WHERE client_id = $1", values![other.id.as_str()])
    };
    let abandoned =
        tokio::time::timeout(std::time::Duration::from_millis(100), store.write_all(vec![slow_rename, touch()])).await;
    assert!(abandoned.is_err(), "the write was abandoned while PostgreSQL slept");
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;

    for _ in 0..4 {
        assert_eq!(app_row(client.id.clone()).await.0, "abandoned", "the abandoned write's claim");
        assert_eq!(app_row(other.id.clone()).await, (name.clone(), updated_at + 1), "its other step, once");
    }
    assert_eq!(store.write_counting(vec![touch()]).await.expect("a later write"), 1);
    assert_eq!(app_row(other.id.clone()).await, (name, updated_at + 2), "the later write, once");
    store.close().await;
}

/// A small tmpfs mounted over a directory for one test, unmounted when dropped. Mounting needs
/// root (CAP_SYS_ADMIN); without it the test that asks is skipped with a note.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(path: &std::path::Path, size: &str) -> Option<SmallDisk> {
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tessera-test", &path.display().to_string()])
            .output()
            .ok()?;
        if out.status.success() {
            Some(SmallDisk { path: path.to_owned() })
        } else {
            eprintln!("skipping the disk-full test: cannot mount a tmpfs ({})", String::from_utf8_lossy(&out.stderr));
            None
        }
    }

    /// Writes to a file until the disk is full (again, if something freed space since); removing
    /// it frees the disk.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&filler).expect("open the filler");
        for chunk in [1024 * 1024, 64 * 1024, 4096, 512, 1] {
            let bytes = vec![0u8; chunk];
            while file.write_all(&bytes).and_then(|()| file.flush()).is_ok() {}
        }
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.path).status();
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// SQLite on a full disk: writes answer 503 with `Retry-After` (`temporarily_unavailable` on the
/// OAuth endpoints, problem+json on the API, a page in the console), never 500; reads still work;
/// `/readyz` says the database is not writable; and once space is freed Tessera recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_sqlite_answers_503_for_writes_and_tessera_recovers() {
    use crate::helpers::oauth::{obtain_code, refresh, register, tokens, ALL_SCOPES, REDIRECT};
    use crate::helpers::TestDatabase;
    use serde_json::{json, Value};

    let db = TestDatabase::create(Engine::Sqlite).await;
    let Some(disk) = SmallDisk::mount(db.dir(), "8m") else { return };
    let app = TestApp::spawn_on(db, &[]).await;
    let browser = app.signed_in_user("user@example.com").await;
    let client = register(&app, "user@example.com", &[REDIRECT], ALL_SCOPES, false);
    let code = obtain_code(&app, &browser, &client, &[("scope", ALL_SCOPES)]).await;
    let t = tokens(&app, &client, &code).await;
    let token = t["access_token"].as_str().expect("at").to_owned();
    let refresh_token = t["refresh_token"].as_str().expect("rt").to_owned();
    let http = reqwest::Client::new();
    let cache = |name: &str| json!({"name": name, "origin": {"database_type": "postgres", "host": "db.example.com", "port": 5432}});
    let create = |name: &str| http.post(app.url("/v1/caches")).bearer_auth(&token).json(&cache(name)).send();

    let filler = disk.fill();
    let ready = http.get(app.url("/readyz")).send().await.expect("GET");
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.json::<Value>().await.expect("json")["status"], "database not writable");

    let r = create("while-full").await.expect("POST");
    assert_eq!(r.status(), 503, "an API write");
    assert_eq!(r.headers()["retry-after"], "5");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    disk.fill();
    let r = refresh(&app, &client, &refresh_token, None).await;
    assert_eq!(r.status(), 503, "a token request");
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(r.json::<Value>().await.expect("json")["error"], "temporarily_unavailable");
    // A small write may still find room in SQLite's own files; what must never happen is a 500.
    disk.fill();
    let r = browser.submit("/", "/workspaces", &[("name", "Full disk")]).await;
    assert!(r.status() == 303 || r.status() == 503, "a console write: {}", r.status());
    if r.status() == 503 {
        assert!(r.headers().contains_key("retry-after"));
        assert!(r.text().await.expect("page").contains("Temporarily unavailable"));
    }

    let r = http.get(app.url("/v1/workspace")).bearer_auth(&token).send().await.expect("GET");
    assert_eq!(r.status(), 200, "reads still work");
    let r = http.get(app.url("/v1/caches")).bearer_auth(&token).send().await.expect("GET");
    assert_eq!(r.status(), 200, "reads still work");

    std::fs::remove_file(filler).expect("free the disk");
    let mut recovered = false;
    for _ in 0..50 {
        if http.get(app.url("/readyz")).send().await.expect("GET").status() == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(recovered, "ready again once the disk has room");
    assert_eq!(create("after-full").await.expect("POST").status(), 201);
    let r = refresh(&app, &client, &refresh_token, None).await;
    assert_eq!(r.status(), 200, "the refresh token that failed to rotate still works");
    drop(app);
    drop(disk);
}
