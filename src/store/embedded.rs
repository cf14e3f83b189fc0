//! The embedded engine's fast path: SQLite reached directly (rusqlite) instead of through sqlx's
//! per-connection worker thread, for the lookups and token issues partners make most.
//!
//! Reads run inline on the calling task. A lookup by key on a WAL database takes a few
//! microseconds, less than handing the statement to another thread and waking the task again
//! costs, and WAL readers never wait for writers.
//!
//! Writes go to one committer thread. It takes every write waiting at that moment, runs each in
//! its own savepoint inside one `BEGIN IMMEDIATE` transaction, and answers them only after the
//! single `COMMIT` returned (`synchronous = FULL`: the WAL is on disk). That is group commit: one
//! fsync for many token issues, no response before its rows are durable, and a write that fails
//! its guard or its statements is undone alone without touching its neighbours.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{ffi, Connection, OpenFlags};
use tokio::sync::oneshot;

use super::query::{Expect, Step};

/// How many idle read connections are kept; more are opened when needed and closed after.
const IDLE_READERS: usize = 16;
/// At most this many writes share one transaction, so one batch cannot grow without bound.
const MAX_BATCH: usize = 512;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const STATEMENT_CACHE: usize = 64;
/// Database pages are read through a memory map instead of a read() copy each: a reader's page
/// cache starts empty whenever another connection has written since its last read, which on a
/// busy server is nearly every read. The map only reserves address space.
const MMAP_BYTES: i64 = 1 << 30;

#[derive(Debug)]
pub struct Embedded {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    committer: Mutex<Option<mpsc::Sender<WriteJob>>>,
}

impl Embedded {
    /// Opens the database file that sqlx already created and migrated, and starts the committer.
    pub fn open(path: &Path) -> rusqlite::Result<Embedded> {
        let writer = connect(path)?;
        let (sender, jobs) = mpsc::channel();
        std::thread::Builder::new()
            .name("tessera-sqlite-commit".into())
            .spawn(move || commit_loop(writer, jobs))
            .map_err(|e| failure(ffi::SQLITE_CANTOPEN, format!("cannot start the committer thread: {e}")))?;
        Ok(Embedded { path: path.to_owned(), readers: Mutex::new(Vec::new()), committer: Mutex::new(Some(sender)) })
    }

    /// Runs `read` on an idle read connection (opening one if none is idle).
    pub fn read<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let idle = lock(&self.readers).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = connect(&self.path)?;
                conn.pragma_update(None, "query_only", true)?;
                conn
            }
        };
        let result = read(&conn);
        let mut readers = lock(&self.readers);
        if readers.len() < IDLE_READERS {
            readers.push(conn);
        }
        result
    }

    /// Runs `steps` as one transaction in the next group commit: the rows they changed, or
    /// `None` if a step's [`Expect::OneRow`] guard failed and none of the steps took effect.
    pub async fn write(&self, steps: Vec<Step>) -> rusqlite::Result<Option<u64>> {
        let (reply, answer) = oneshot::channel();
        let sender = lock(&self.committer).clone();
        let Some(sender) = sender else { return Err(closed()) };
        sender.send(WriteJob { steps, outcome: None, reply }).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Stops the committer once the writes already queued are done, and closes idle readers.
    pub fn close(&self) {
        lock(&self.committer).take();
        lock(&self.readers).clear();
    }
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // The same settings as the sqlx connections: foreign keys enforce the grant relations, and
    // FULL makes every commit durable before it returns.
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
    Ok(conn)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave a Vec of connections or an Option half-changed.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct WriteJob {
    steps: Vec<Step>,
    outcome: Option<rusqlite::Result<Option<u64>>>,
    reply: oneshot::Sender<rusqlite::Result<Option<u64>>>,
}

impl WriteJob {
    /// Runs the steps inside the open transaction; an `Err` is a copy of the job's own error,
    /// which the job keeps to answer with.
    fn run(&mut self, conn: &Connection) -> Result<(), rusqlite::Error> {
        let outcome = run_in_savepoint(conn, &self.steps);
        let result = match &outcome {
            Ok(_) => Ok(()),
            Err(e) => Err(duplicate(e)),
        };
        self.outcome = Some(outcome);
        result
    }

    /// Answers the waiting request once the batch's fate is known.
    fn finish(self, batch: Result<(), &rusqlite::Error>) {
        let answer = match (self.outcome, batch) {
            (Some(Err(own)), _) => Err(own),
            (_, Err(batch)) => Err(duplicate(batch)),
            (Some(Ok(done)), Ok(())) => Ok(done),
            (None, Ok(())) => Err(failure(ffi::SQLITE_ABORT, "the write did not run".into())),
        };
        // The request may have gone away (client disconnected): its rows are committed regardless.
        let _ = self.reply.send(answer);
    }
}

fn run_in_savepoint(conn: &Connection, steps: &[Step]) -> rusqlite::Result<Option<u64>> {
    conn.execute_batch("SAVEPOINT job")?;
    let applied = (|| {
        let mut total = 0;
        for step in steps {
            let mut statement = conn.prepare_cached(&step.sql)?;
            let changed = statement.execute(rusqlite::params_from_iter(step.params.iter()))?;
            if step.expect == Expect::OneRow && changed != 1 {
                return Ok(None);
            }
            total += changed as u64;
        }
        Ok(Some(total))
    })();
    if conn.is_autocommit() {
        // SQLite already rolled the whole transaction back (disk full, I/O error).
        return applied;
    }
    match applied {
        Ok(Some(_)) => conn.execute_batch("RELEASE job")?,
        Ok(None) | Err(_) => conn.execute_batch("ROLLBACK TO job; RELEASE job")?,
    }
    applied
}

fn commit_loop(conn: Connection, jobs: mpsc::Receiver<WriteJob>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&conn, batch);
    }
}

fn commit_batch(conn: &Connection, mut batch: Vec<WriteJob>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return batch.into_iter().for_each(|job| job.finish(Err(&e)));
    }
    for index in 0..batch.len() {
        let result = batch[index].run(conn);
        if let Err(e) = result {
            if conn.is_autocommit() {
                // The transaction is gone, and with it every earlier job's changes.
                return batch.into_iter().for_each(|job| job.finish(Err(&e)));
            }
        }
    }
    let commit = conn.execute_batch("COMMIT");
    if commit.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let commit = commit.as_ref().map(|_| ());
    batch.into_iter().for_each(|job| job.finish(commit));
}

fn failure(code: std::os::raw::c_int, message: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(message))
}

fn closed() -> rusqlite::Error {
    failure(ffi::SQLITE_MISUSE, "the database is closed".into())
}

/// rusqlite's errors are not `Clone`; one failed commit answers many requests.
fn duplicate(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => rusqlite::Error::SqliteFailure(*code, message.clone()),
        other => failure(ffi::SQLITE_ERROR, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values;

    fn database() -> (tempfile::TempDir, Embedded) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let setup = Connection::open(&path).expect("open");
        setup
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE codes (hash TEXT PRIMARY KEY, used INTEGER);
                 CREATE TABLE tokens (hash TEXT PRIMARY KEY, code TEXT NOT NULL REFERENCES codes(hash));",
            )
            .expect("schema");
        (dir, Embedded::open(&path).expect("embedded"))
    }

    fn exchange(code: &str, token: &str) -> Vec<Step> {
        vec![
            Step::claim("UPDATE codes SET used = 1 WHERE hash = $1 AND used = 0", values![code]),
            Step::new("INSERT INTO tokens (hash, code) VALUES ($1, $2)", values![token, code]),
        ]
    }

    fn count(db: &Embedded, sql: &str) -> i64 {
        db.read(|conn| conn.query_row(sql, [], |row| row.get(0))).expect("count")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_claims_of_one_row_let_exactly_one_through() {
        let (_dir, db) = database();
        let db = std::sync::Arc::new(db);
        let codes: Vec<Step> = (0..20)
            .map(|i| Step::new("INSERT INTO codes (hash, used) VALUES ($1, 0)", values![format!("c{i}")]))
            .collect();
        assert_eq!(db.write(codes).await.expect("codes"), Some(20));

        // Every code is claimed by five writers at once; they share group commits.
        let mut writers = tokio::task::JoinSet::new();
        for i in 0..20 {
            for attempt in 0..5 {
                let db = db.clone();
                writers.spawn(async move { db.write(exchange(&format!("c{i}"), &format!("t{i}-{attempt}"))).await });
            }
        }
        let outcomes: Vec<_> = writers.join_all().await.into_iter().map(|r| r.expect("write")).collect();
        assert_eq!(outcomes.iter().filter(|o| o.is_some()).count(), 20, "{outcomes:?}");
        assert_eq!(count(&db, "SELECT count(*) FROM tokens"), 20, "a losing claim leaves no token behind");
        assert_eq!(count(&db, "SELECT count(DISTINCT code) FROM tokens"), 20);
    }

    #[tokio::test]
    async fn a_failing_write_is_undone_alone_and_the_rest_are_durable() {
        let (dir, db) = database();
        let setup = vec![Step::new("INSERT INTO codes (hash, used) VALUES ('a', 0), ('b', 0)", [])];
        db.write(setup).await.expect("codes");
        let db = std::sync::Arc::new(db);
        // The second write's claim succeeds but its insert breaks the foreign key: both of its
        // steps are undone, while the writes around it in the same batch commit.
        let (first, broken, last) = tokio::join!(
            db.write(exchange("a", "t1")),
            db.write(vec![
                Step::claim("UPDATE codes SET used = 1 WHERE hash = 'b' AND used = 0", []),
                Step::new("INSERT INTO tokens (hash, code) VALUES ('t2', 'missing')", []),
            ]),
            db.write(vec![Step::new("INSERT INTO codes (hash, used) VALUES ('c', 0)", [])]),
        );
        assert_eq!(first.expect("first"), Some(2));
        assert!(broken.is_err(), "{broken:?}");
        assert_eq!(last.expect("last"), Some(1));
        db.close();

        // A fresh connection sees exactly the committed writes.
        let check = Connection::open(dir.path().join("t.db")).expect("open");
        let used: i64 = check.query_row("SELECT used FROM codes WHERE hash = 'b'", [], |r| r.get(0)).expect("b");
        assert_eq!(used, 0, "the broken write's claim was rolled back");
        let tokens: i64 = check.query_row("SELECT count(*) FROM tokens", [], |r| r.get(0)).expect("tokens");
        assert_eq!(tokens, 1);
        let codes: i64 = check.query_row("SELECT count(*) FROM codes", [], |r| r.get(0)).expect("codes");
        assert_eq!(codes, 3);
    }

    #[tokio::test]
    async fn a_closed_store_refuses_writes_instead_of_hanging() {
        let (_dir, db) = database();
        db.close();
        let refused = db.write(vec![Step::new("INSERT INTO codes (hash, used) VALUES ('x', 0)", [])]).await;
        assert!(refused.is_err());
    }
}
