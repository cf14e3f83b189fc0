//! Storage: one schema on two engines, SQLite (the embedded default) and PostgreSQL.
//!
//! The engine is chosen once, from the database URL, when the [`Store`] connects; every query is
//! written once in the SQL both engines share (`$1` placeholders, integer seconds for times). The
//! requests partners make most take each engine's fast path ([`embedded`] for SQLite, [`postgres`]
//! for PostgreSQL) through [`query`]; the rest runs through sqlx's `Any` driver. One file per
//! aggregate holds its queries.

pub mod api_keys;
pub mod apps;
pub mod audit;
pub mod caches;
pub mod callers;
pub mod databases;
pub mod embedded;
pub mod grants;
pub mod idempotency;
pub mod login_failures;
pub mod postgres;
pub mod query;
pub mod sessions;
pub mod tokens;
pub mod users;
pub mod workspaces;

use std::str::FromStr;
use std::sync::{Arc, Once};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Connection, Executor};

pub type Tx = sqlx::Transaction<'static, Any>;
pub use sqlx::AnyConnection as Conn;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(#[from] deadpool_postgres::tokio_postgres::Error),
    #[error("database unavailable: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A statement given parameters it does not take (a bug): refused before it is sent.
    #[error("parameters do not fit the statement: {0}")]
    Mismatch(String),
    /// A read of one row that found several (a bug: its query does not select by a key).
    #[error("a single-row read found more than one row")]
    NotOneRow,
}

impl StoreError {
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Database(e) => e.as_database_error().is_some_and(|d| d.is_unique_violation()),
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error().map(|e| e.extended_code),
                Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
            ),
            StoreError::Postgres(e) => {
                e.code() == Some(&deadpool_postgres::tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            StoreError::Pool(_)
            | StoreError::Unavailable(_)
            | StoreError::Migration(_)
            | StoreError::Mismatch(_)
            | StoreError::NotOneRow => false,
        }
    }
}

/// The shared handle to the database.
///
/// On SQLite all writes go through a single connection, so write transactions queue in-process
/// instead of failing with `SQLITE_BUSY` when two of them try to upgrade their locks; reads use
/// their own pool and, thanks to WAL, never wait for writers. On PostgreSQL both are one pool.
/// The hot paths bypass both through the engine's [`FastPath`]; on SQLite its committer and the
/// sqlx writer take SQLite's write lock in turn (`BEGIN IMMEDIATE`, busy timeout).
#[derive(Clone, Debug)]
pub struct Store {
    reader: AnyPool,
    writer: AnyPool,
    fast: FastPath,
}

/// Each engine's own driver for the queries of [`query`].
#[derive(Clone, Debug)]
enum FastPath {
    Embedded(Arc<embedded::Embedded>),
    Postgres(Arc<postgres::Postgres>),
}

/// Connections of sqlx's PostgreSQL pool (the fast path keeps its own few: see [`postgres`]).
const POSTGRES_CONNECTIONS: u32 = 16;

/// How long a pooled PostgreSQL connection may sit idle before it is checked on its way out: one
/// back within the last second was alive then; one idle for longer may have been closed by the
/// server (a restart, an idle timeout) in a way the client has not noticed yet.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);
/// How long a request waits for a PostgreSQL connection before it gets 503.
const WAIT_FOR_CONNECTION: Duration = Duration::from_secs(3);

impl Store {
    pub async fn connect(database_url: &str) -> Result<Store, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        if database_url.starts_with("sqlite:") {
            let url = sqlite_url(database_url);
            let options = AnyConnectOptions::from_str(&url)?;
            let pool = |max| {
                AnyPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(|conn, _meta| {
                        Box::pin(async move {
                            // Foreign keys enforce the grant relations; WAL lets readers run beside the
                            // writer; the busy timeout covers other processes (such as `tessera admin`).
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            conn.execute("PRAGMA busy_timeout = 5000").await?;
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            Ok(())
                        })
                    })
                    // When SQLite itself rolls a transaction back (disk full, I/O error), sqlx's
                    // ROLLBACK on drop fails and leaves the connection counting a transaction that no
                    // longer exists; every later `BEGIN` on it would fail. Such a connection is
                    // closed instead of reused (a dropped transaction whose ROLLBACK is still queued
                    // may be closed too: that costs one reconnect on an error path).
                    .after_release(|conn, _meta| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
            };
            let writer = pool(1).connect_with(options.clone()).await?;
            let reader = pool(8).connect_with(options).await?;
            let file = sqlx::sqlite::SqliteConnectOptions::from_str(&url)?;
            let embedded = embedded::Embedded::open(file.get_filename())?;
            Ok(Store { reader, writer, fast: FastPath::Embedded(Arc::new(embedded)) })
        } else {
            let options = AnyConnectOptions::from_str(database_url)?;
            let pool = AnyPoolOptions::new()
                .max_connections(POSTGRES_CONNECTIONS)
                .acquire_timeout(WAIT_FOR_CONNECTION)
                // sqlx pings every connection it hands out (a round trip per statement) besides
                // the one it makes when a connection comes back. A connection back within the
                // last second was alive then, so only one idle for longer is pinged: that still
                // catches connections PostgreSQL closed while they sat idle (a restart, an idle
                // timeout).
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > PING_WHEN_IDLE_FOR {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(options)
                .await?;
            let fast = postgres::Postgres::new(database_url)?;
            Ok(Store { reader: pool.clone(), writer: pool, fast: FastPath::Postgres(Arc::new(fast)) })
        }
    }

    pub fn engine(&self) -> Engine {
        match self.fast {
            FastPath::Embedded(_) => Engine::Sqlite,
            FastPath::Postgres(_) => Engine::Postgres,
        }
    }

    /// Applies every pending migration of this engine.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.engine() {
            Engine::Sqlite => &SQLITE_MIGRATIONS,
            Engine::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.writer).await?;
        Ok(())
    }

    /// Whether the database answers, for `/readyz`.
    pub async fn ping(&self) -> bool {
        let attempt = async {
            let mut conn = self.reader.acquire().await?;
            conn.ping().await
        };
        matches!(tokio::time::timeout(Duration::from_secs(2), attempt).await, Ok(Ok(())))
    }

    /// Whether the database accepts a write, for `/readyz`: a full disk, a read-only file or a
    /// read-only PostgreSQL still answer [`ping`](Store::ping), but cannot serve most requests.
    pub async fn accepts_writes(&self, now: i64) -> bool {
        let attempt = sqlx::query(
            "INSERT INTO readiness (id, checked_at) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
        )
        .bind(now)
        .execute(&self.writer);
        matches!(tokio::time::timeout(Duration::from_secs(2), attempt).await, Ok(Ok(_)))
    }

    /// The pool for reads that need no transaction.
    pub fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// Starts a transaction for writes that belong together.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        match self.engine() {
            // Take the write lock up front: a deferred transaction that read first could not
            // upgrade once the embedded committer has written since (SQLITE_BUSY_SNAPSHOT).
            Engine::Sqlite => Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?),
            Engine::Postgres => Ok(self.writer.begin().await?),
        }
    }

    pub async fn close(&self) {
        match &self.fast {
            FastPath::Embedded(embedded) => embedded.close(),
            FastPath::Postgres(postgres) => postgres.close(),
        }
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// `sqlite://tessera.db` creates the file if it is missing.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

impl Store {
    /// The pool for single-statement writes that need no explicit transaction.
    pub fn writer(&self) -> &AnyPool {
        &self.writer
    }
}

/// Keyset pagination: rows after (`after_time`, `after_id`) in (created_at, id) order.
#[derive(Clone, Debug)]
pub struct Page {
    pub after_time: i64,
    pub after_id: String,
    pub limit: i64,
}

impl Page {
    /// The statement that reads a page of `table`'s rows of one workspace, with
    /// [`Page::params`]: one row more than the page holds, which tells whether a next one exists.
    pub fn of_workspace_sql(table: &str, columns: &str) -> String {
        format!(
            "SELECT {columns} FROM {table} WHERE workspace_id = $1 AND (created_at > $2 OR (created_at = $2 AND id > $3))
              ORDER BY created_at, id LIMIT $4"
        )
    }

    pub fn params(&self, workspace_id: &str) -> Vec<query::Value> {
        crate::values![workspace_id, self.after_time, self.after_id.as_str(), self.limit + 1].into()
    }
}

/// Whether an error means the database cannot be reached or written right now (PostgreSQL down,
/// SQLite busy, read-only or full), so the request should fail fast with 503 and `Retry-After`
/// rather than 500: the condition is the operator's to fix and clients should retry.
pub fn is_unavailable(error: &anyhow::Error) -> bool {
    let sqlite_error = error
        .downcast_ref::<StoreError>()
        .and_then(|e| match e {
            StoreError::Sqlite(e) => Some(e),
            _ => None,
        })
        .or_else(|| error.downcast_ref::<rusqlite::Error>());
    if let Some(code) = sqlite_error.and_then(|e| e.sqlite_error()).map(|e| e.extended_code) {
        return is_unavailable_sqlite(code);
    }
    let store_error = error.downcast_ref::<StoreError>();
    match store_error {
        Some(StoreError::Postgres(e)) => return is_unavailable_postgres(e),
        Some(StoreError::Pool(e)) => {
            return match e {
                deadpool_postgres::PoolError::Backend(e) => is_unavailable_postgres(e),
                _ => true,
            }
        }
        Some(StoreError::Unavailable(_)) => return true,
        _ => {}
    }
    let sqlx_error = store_error
        .and_then(|e| match e {
            StoreError::Database(e) => Some(e),
            _ => None,
        })
        .or_else(|| error.downcast_ref::<sqlx::Error>());
    match sqlx_error {
        Some(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_)) => true,
        Some(sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed) => true,
        Some(sqlx::Error::Database(db)) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            // SQLite's codes are numbers of up to four digits; SQLSTATEs always have five.
            let sqlite_code = code.parse::<i32>().ok().filter(|_| code.len() < 5);
            is_unavailable_sqlstate(&code) || sqlite_code.is_some_and(is_unavailable_sqlite)
        }
        _ => false,
    }
}

/// PostgreSQL: connection exceptions (08xxx), shutdown or no connections allowed (57P0x, 55000
/// at connect), a missing database (3D000), read-only (25006).
fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P0") || code == "55000" || code == "3D000" || code == "25006"
}

/// A closed connection, one that could not be made or broke (an I/O error), or a server that
/// refuses work for the reasons of [`is_unavailable_sqlstate`].
fn is_unavailable_postgres(error: &deadpool_postgres::tokio_postgres::Error) -> bool {
    match error.code() {
        Some(code) => is_unavailable_sqlstate(code.code()),
        None => {
            error.is_closed() || std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
        }
    }
}

/// SQLite: BUSY (5), READONLY (8), IOERR (10), FULL (13), CANTOPEN (14), extended codes too, and
/// MISUSE (21) from a store that is shutting down.
fn is_unavailable_sqlite(code: i32) -> bool {
    matches!(code & 0xff, 5 | 8 | 10 | 13 | 14) || code == 21
}

pub const RETRY_AFTER_SECONDS: &str = "5";
