//! Preparing inputs the way partners and users make them: users and an app through the operator
//! CLI; sessions through `/login`; codes through `/oauth2/auth`, the consent page and its form;
//! tokens through `/oauth2/token`; API keys and caches through the resource API.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};

use crate::http::{self, bearer, first_option, hidden_value, query_param, Browser, Conn, Header};
use crate::server::{admin, Engine};

pub const PASSWORD: &str = "bench password 0123";
pub const REDIRECT: &str = "https://partner.example/callback";
pub const SCOPES: [&str; 6] =
    ["caches:read", "caches:write", "cacheRules:read", "cacheRules:write", "databases:read", "databases:write"];
/// RFC 7636 appendix B: every code of the run carries this challenge, every exchange this verifier.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub struct Client {
    pub id: String,
    pub secret: String,
}

impl Client {
    pub fn basic(&self) -> Header {
        http::basic_auth(&self.id, &self.secret)
    }
}

pub fn email(user: usize) -> String {
    format!("bench-{user}@example.com")
}

/// Users (each with a personal workspace) and one confidential app, through `tessera admin`.
pub fn accounts(bin: &Path, database_url: &str, users: usize) -> anyhow::Result<Client> {
    for user in 0..users {
        let email = email(user);
        let name = format!("Bench User {user}");
        admin(bin, database_url, &["create-user", "--email", &email, "--password", PASSWORD, "--name", &name])?;
    }
    let owner = email(0);
    let mut args =
        vec!["create-app", "--owner-user", owner.as_str(), "--name", "Bench Partner", "--redirect-uri", REDIRECT];
    for scope in SCOPES {
        args.extend(["--scope", scope]);
    }
    let app = admin(bin, database_url, &args)?;
    let id = app["client_id"].as_str().ok_or_else(|| anyhow!("create-app printed no client_id"))?;
    let secret = app["client_secret"].as_str().ok_or_else(|| anyhow!("create-app printed no client_secret"))?;
    Ok(Client { id: id.to_owned(), secret: secret.to_owned() })
}

/// One signed-in session per user: the cookies a browser holds after logging in.
pub async fn sessions(addr: SocketAddr, users: usize) -> anyhow::Result<Vec<BTreeMap<String, String>>> {
    let mut jars = Vec::new();
    for user in 0..users {
        let mut browser = Browser::open(addr, BTreeMap::new()).await?;
        browser.log_in(&email(user), PASSWORD).await?;
        jars.push(browser.cookies);
    }
    Ok(jars)
}

/// The browser part of the flow for one code: authorize, load the consent page, allow.
async fn obtain_code(browser: &mut Browser, client_id: &str, state: &str) -> anyhow::Result<String> {
    let scope = SCOPES.join(" ");
    let query = http::form(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", &scope),
        ("state", state),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    let path = format!("/oauth2/auth?{}", String::from_utf8_lossy(&query));
    let reply = browser.get(&path).await?;
    let consent = reply.location();
    if reply.status != 303 || !consent.starts_with("/oauth2/consent?") {
        bail!("GET /oauth2/auth answered {} (location {consent:?})", reply.describe());
    }
    let page = browser.get(&consent).await?;
    if page.status != 200 {
        bail!("GET /oauth2/consent answered {}", page.describe());
    }
    let html = page.text();
    let csrf = hidden_value(&html, "csrf_token").ok_or_else(|| anyhow!("the consent page has no CSRF token"))?;
    let challenge =
        hidden_value(&html, "consent_challenge").ok_or_else(|| anyhow!("the consent page has no challenge"))?;
    let workspace = first_option(&html).ok_or_else(|| anyhow!("the consent page offers no workspace"))?;
    let reply = browser
        .post_form(
            "/oauth2/consent",
            &[
                ("csrf_token", &csrf),
                ("consent_challenge", &challenge),
                ("workspace_id", &workspace),
                ("decision", "allow"),
            ],
        )
        .await?;
    let to = reply.location();
    if reply.status != 303 || !to.starts_with(REDIRECT) {
        bail!("POST /oauth2/consent answered {} (location {to:?})", reply.describe());
    }
    query_param(&to, "code").ok_or_else(|| anyhow!("no code in {to}"))
}

/// `count` codes, obtained by `tasks` browsers in parallel; code `i` belongs to user `i % users`.
pub async fn codes(
    addr: SocketAddr,
    client_id: &str,
    sessions: &[BTreeMap<String, String>],
    count: usize,
    tasks: usize,
) -> anyhow::Result<Vec<String>> {
    let tasks = tasks.clamp(1, count.max(1));
    let client_id: Arc<str> = Arc::from(client_id);
    let mut handles = Vec::new();
    for task in 0..tasks {
        let client_id = client_id.clone();
        let jars: Vec<_> = sessions.to_vec();
        handles.push(tokio::spawn(async move {
            let mut browsers = BTreeMap::new();
            let mut out = Vec::new();
            for i in (task..count).step_by(tasks) {
                let user = i % jars.len();
                if let std::collections::btree_map::Entry::Vacant(slot) = browsers.entry(user) {
                    slot.insert(Browser::open(addr, jars[user].clone()).await?);
                }
                let browser = browsers.get_mut(&user).ok_or_else(|| anyhow!("no browser"))?;
                out.push((i, obtain_code(browser, &client_id, &format!("bench-{i}")).await?));
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = Vec::with_capacity(count);
    for handle in handles {
        all.extend(handle.await??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, code)| code).collect())
}

pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

/// Exchanges codes (client_secret_basic + PKCE), `tasks` at a time, keeping their order.
pub async fn exchange_all(
    addr: SocketAddr,
    client: &Client,
    codes: Vec<String>,
    tasks: usize,
) -> anyhow::Result<Vec<Tokens>> {
    let tasks = tasks.clamp(1, codes.len().max(1));
    let codes = Arc::new(codes);
    let basic = client.basic();
    let mut handles = Vec::new();
    for task in 0..tasks {
        let codes = codes.clone();
        let basic = basic.clone();
        handles.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await?;
            let mut out = Vec::new();
            for i in (task..codes.len()).step_by(tasks) {
                let reply =
                    conn.post("/oauth2/token", &[http::form_type(), basic.clone()], &exchange_body(&codes[i])).await?;
                if reply.status != 200 {
                    bail!("exchanging a code answered {}", reply.describe());
                }
                let json = reply.json()?;
                let field = |name: &str| {
                    json[name].as_str().map(str::to_owned).ok_or_else(|| anyhow!("the token response has no {name}"))
                };
                out.push((i, Tokens { access: field("access_token")?, refresh: field("refresh_token")? }));
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, t)| t).collect())
}

pub fn exchange_body(code: &str) -> Vec<u8> {
    http::form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ])
}

/// Mints one developer API key with each access token (`POST /v1/api-keys`).
pub async fn api_keys(addr: SocketAddr, access_tokens: &[String]) -> anyhow::Result<Vec<String>> {
    let mut conn = Conn::open(addr).await?;
    let mut keys = Vec::new();
    for (i, token) in access_tokens.iter().enumerate() {
        let body = serde_json::json!({ "name": format!("bench key {i}") }).to_string();
        let reply = conn.post("/v1/api-keys", &[http::json_type(), bearer(token)], body.as_bytes()).await?;
        if reply.status != 201 {
            bail!("minting an API key answered {}", reply.describe());
        }
        let key = reply.json()?["api_key"].as_str().map(str::to_owned);
        keys.push(key.context("the API key response has no api_key")?);
    }
    Ok(keys)
}

/// A few caches in a workspace, so that listing them returns a page with items.
pub async fn caches(addr: SocketAddr, access_token: &str, count: usize) -> anyhow::Result<()> {
    let mut conn = Conn::open(addr).await?;
    for i in 0..count {
        let body = serde_json::json!({
            "name": format!("bench-cache-{i}"),
            "description": "made by tessera-bench",
            "origin": { "database_type": "postgres", "host": "origin.example.com", "port": 5432 },
        })
        .to_string();
        let reply = conn.post("/v1/caches", &[http::json_type(), bearer(access_token)], body.as_bytes()).await?;
        if reply.status != 201 {
            bail!("creating a cache answered {}", reply.describe());
        }
    }
    Ok(())
}

/// Grows the access-token table by `rows` rows written straight into the database, all under one
/// prepared grant: the table a long-running deployment carries, for the growth case of
/// docs/performance.md. Keys are shaped like the server's (an issue-time part that sorts in
/// issue order, then a random hash), older than any token the server issues; the oldest `expired`
/// of them have expired, and are a backlog the janitor then works off during the measurements.
///
/// On PostgreSQL the table is then vacuumed and analyzed and a checkpoint taken: a table that grew
/// to this size over months was vacuumed by autovacuum and checkpointed along the way, while a
/// bulk load leaves all of that to fall due inside the measurement windows.
pub async fn filler_tokens(engine: Engine, database_url: &str, rows: u64, expired: u64) -> anyhow::Result<()> {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url).await.context("cannot open the database")?;
    // Eight digits of row number stand in for the issue time: they sort before every real
    // token key, whose issue-time part begins with a letter after its leading zero.
    let (token_key, random_hash) = match engine {
        Engine::Sqlite => {
            // Room for the table's pages while they are written; the server has its own caches.
            conn.execute("PRAGMA cache_size = -262144").await?;
            conn.execute("PRAGMA busy_timeout = 30000").await?;
            ("printf('%08d', $4 + i) || lower(hex(randomblob(32)))", "lower(hex(randomblob(32)))")
        }
        Engine::Postgres => (
            "lpad(($4 + i)::text, 8, '0') || md5(random()::text) || md5(random()::text)",
            "md5(random()::text) || md5(random()::text)",
        ),
    };
    let numbers = match engine {
        Engine::Sqlite => {
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) SELECT i FROM n"
        }
        Engine::Postgres => "SELECT i FROM generate_series(1, $1) AS i",
    };
    let sql = format!(
        "INSERT INTO access_tokens (token_hash, grant_id, refresh_token_hash, scopes, created_at, expires_at)
         SELECT {token_key}, $2, {random_hash}, 'caches:read', $3 - 7200,
                CASE WHEN $4 + i <= $5 THEN $3 - 3600 ELSE $3 + 86400 END
           FROM ({numbers}) AS numbers"
    );
    let (grant,): (String,) = sqlx::query_as("SELECT grant_id FROM access_tokens LIMIT 1").fetch_one(&mut conn).await?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let began = std::time::Instant::now();
    let mut written = 0;
    while written < rows {
        let chunk = (rows - written).min(250_000);
        sqlx::query(&sql)
            .bind(chunk as i64)
            .bind(&grant)
            .bind(now)
            .bind(written as i64)
            .bind(expired as i64)
            .execute(&mut conn)
            .await?;
        written += chunk;
        eprintln!("   filler tokens: {written} of {rows} written ({:.0} s)", began.elapsed().as_secs_f64());
    }
    if engine == Engine::Postgres {
        conn.execute("VACUUM (ANALYZE) access_tokens").await?;
        conn.execute("CHECKPOINT").await?;
    }
    let _ = conn.close().await;
    Ok(())
}
