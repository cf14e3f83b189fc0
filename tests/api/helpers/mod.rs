//! The test harness: the real server on a random port, against a fresh database of either
//! engine, and clients that speak HTTP to it like a browser or a script would.

#![allow(dead_code)]

pub mod browser;

use std::collections::HashMap;
use std::process::Output;

pub mod oauth;

use reqwest::redirect::Policy;
use tempfile::TempDir;
use tessera::app::AppState;
use tessera::config::{Overrides, Settings};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Runs each listed test once on SQLite and once on PostgreSQL.
///
/// Without PostgreSQL the PostgreSQL half is skipped with a note, unless `CI=true`, where it fails.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Engine::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::helpers::postgres_available().await {
                        super::$name($crate::helpers::Engine::Postgres).await
                    }
                }
            )*
        }
    };
}

pub fn postgres_admin_url() -> String {
    std::env::var("TESSERA_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether PostgreSQL tests can run; under `CI=true` an unreachable server fails the test.
pub async fn postgres_available() -> bool {
    use sqlx::Connection;
    match sqlx::PgConnection::connect(&postgres_admin_url()).await {
        Ok(conn) => {
            let _ = conn.close().await;
            true
        }
        Err(e) if in_ci() => panic!("CI=true but PostgreSQL at {} is unreachable: {e}", postgres_admin_url()),
        Err(e) => {
            eprintln!(
                "skipping PostgreSQL test: {} is unreachable ({e}); set CI=true to fail instead",
                postgres_admin_url()
            );
            false
        }
    }
}

/// A fresh database: a file in a temporary directory, or a new PostgreSQL database.
pub struct TestDatabase {
    pub url: String,
    pub engine: Engine,
    dir: TempDir,
    pg_name: Option<String>,
}

impl TestDatabase {
    pub async fn create(engine: Engine) -> TestDatabase {
        let dir = tempfile::tempdir().expect("temp dir");
        match engine {
            Engine::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
                TestDatabase { url, engine, dir, pg_name: None }
            }
            Engine::Postgres => {
                use sqlx::{Connection, Executor};
                let name = format!("tessera_test_{}", tessera::credentials::random_token().to_lowercase());
                let mut conn = sqlx::PgConnection::connect(&postgres_admin_url()).await.expect("connect to PostgreSQL");
                conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create test database");
                let _ = conn.close().await;
                let admin = url::Url::parse(&postgres_admin_url()).expect("admin url");
                let mut url = admin.clone();
                url.set_path(&name);
                TestDatabase { url: url.to_string(), engine, dir, pg_name: Some(name) }
            }
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The same database for a second server: it does not drop the PostgreSQL database (the
    /// original does), so the original must outlive it.
    pub fn alias(&self) -> TestDatabase {
        TestDatabase {
            url: self.url.clone(),
            engine: self.engine,
            dir: tempfile::tempdir().expect("temp dir"),
            pg_name: None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else { return };
        // Dropping runs on its own thread and runtime: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                use sqlx::{Connection, Executor};
                if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                    let _ = conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub base: String,
    pub db: TestDatabase,
    pub settings: Settings,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    process: Option<ServerProcess>,
}

/// A `tessera serve` child process, killed when dropped.
struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl TestApp {
    pub async fn spawn(engine: Engine) -> TestApp {
        Self::spawn_with(engine, &[]).await
    }

    /// Starts the server with extra `TESSERA_*` settings.
    pub async fn spawn_with(engine: Engine, env: &[(&str, &str)]) -> TestApp {
        let db = TestDatabase::create(engine).await;
        Self::spawn_on(db, env).await
    }

    pub async fn spawn_on(db: TestDatabase, env: &[(&str, &str)]) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let address = listener.local_addr().expect("local address");
        let base = format!("http://{address}");
        let mut vars: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        vars.entry("TESSERA_ISSUER_URL".into()).or_insert_with(|| base.clone());
        let overrides =
            Overrides { database_url: Some(db.url.clone()), listen: Some(address.to_string()), ..Overrides::default() };
        let settings = Settings::load_with(&overrides, |k| vars.get(k).cloned()).expect("test settings");
        let store = tessera::app::open_store(&settings).await.expect("open the test database");
        let state = AppState::new(settings.clone(), store);
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            if let Err(e) = tessera::app::run(listener, state, shutdown).await {
                eprintln!("test server stopped with an error: {e:#}");
            }
        });
        TestApp { base, db, settings, shutdown: Some(tx), server: Some(server), process: None }
    }

    /// A second server in this test process on the same database, with its own connection
    /// pools and state: nothing is shared with `self` but the database. Drop it before `self`.
    pub async fn spawn_beside(&self) -> TestApp {
        Self::spawn_on(self.db.alias(), &[]).await
    }

    /// A second server as a separate `tessera serve` process on the same database. Drop it
    /// before `self`.
    pub async fn spawn_process_beside(&self) -> TestApp {
        // Find a free port; the tiny window before the child binds it is acceptable in tests.
        let address = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address");
        let base = format!("http://{address}");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["serve", "--listen", &address.to_string()])
            .env("TESSERA_DATABASE_URL", &self.db.url)
            .env("TESSERA_ISSUER_URL", &base)
            .env("TESSERA_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start tessera serve");
        let process = ServerProcess(child);
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(std::time::Instant::now() < deadline, "tessera serve did not become ready on {address}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let overrides = Overrides {
            database_url: Some(self.db.url.clone()),
            listen: Some(address.to_string()),
            ..Overrides::default()
        };
        let vars: HashMap<String, String> = HashMap::from([("TESSERA_ISSUER_URL".to_owned(), base.clone())]);
        let settings = Settings::load_with(&overrides, |k| vars.get(k).cloned()).expect("settings");
        TestApp { base, db: self.db.alias(), settings, shutdown: None, server: None, process: Some(process) }
    }

    /// Kills a `tessera serve` process with SIGKILL (no graceful shutdown, nothing flushed) and
    /// waits for it to be gone. The database stays, for a restart.
    pub fn kill(mut self) {
        let mut process = self.process.take().expect("kill() is for servers started as processes");
        // std's Child::kill sends SIGKILL on Unix.
        process.0.kill().expect("SIGKILL the server");
        let status = process.0.wait().expect("wait for the killed server");
        assert!(!status.success(), "the server was killed, not stopped: {status:?}");
    }

    /// Stops the server and waits for it, keeping the database for a restart.
    pub async fn stop(mut self) -> TestDatabase {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        let TestApp { db, process, .. } = self;
        drop(process);
        db
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A browser: a cookie jar, no automatic redirects.
    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    /// Runs the `tessera` binary against this app's database.
    pub fn cli(&self, args: &[&str]) -> Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .env("TESSERA_DATABASE_URL", &self.db.url)
            .env_remove("TESSERA_LISTEN")
            .output()
            .expect("run the tessera binary")
    }

    /// Creates a user through the operator CLI and returns a browser signed in as them.
    pub async fn signed_in_user(&self, email: &str) -> Browser {
        let out = self.cli(&["admin", "create-user", "--email", email, "--password", PASSWORD, "--name", "Test User"]);
        assert!(out.status.success(), "create-user failed: {}", String::from_utf8_lossy(&out.stderr));
        let browser = self.browser();
        browser.log_in(email, PASSWORD).await;
        browser
    }
}

// Dropping a TestApp drops its shutdown sender, which stops the server gracefully.

pub const PASSWORD: &str = "correct horse battery";

pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        let client = reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().expect("client");
        Browser { client, base: base.to_owned() }
    }

    /// The same browser (one cookie jar: cookies are not per port) pointed at another server.
    pub fn on(&self, base: &str) -> Browser {
        Browser { client: self.client.clone(), base: base.to_owned() }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_html(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.expect("body")
    }

    /// Posts a form as-is (the caller supplies any `csrf_token`).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let body = encode(fields);
        self.client
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    /// Loads `page` to get its CSRF token, then posts `fields` to `action` with it.
    pub async fn submit(&self, page: &str, action: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let html = self.get_html(page).await;
        let csrf = hidden_value(&html, "csrf_token").expect("the page has a CSRF token");
        let mut all = vec![("csrf_token", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(action, &all).await
    }

    pub async fn log_in(&self, email: &str, password: &str) -> reqwest::Response {
        let response =
            self.submit("/login", "/login", &[("email", email), ("password", password), ("next", "/")]).await;
        assert_eq!(response.status(), 303, "login as {email} should succeed");
        response
    }
}

pub fn encode(fields: &[(&str, &str)]) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    fields
        .iter()
        .map(|(k, v)| {
            format!("{}={}", utf8_percent_encode(k, NON_ALPHANUMERIC), utf8_percent_encode(v, NON_ALPHANUMERIC))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of the first `<input ... name="NAME" value="...">` in `html`.
pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&").replace("&#x2f;", "/").replace("&#x2F;", "/"))
}

pub fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

pub fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "command failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}
