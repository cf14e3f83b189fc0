//! The embedded engine's fast path: SQLite reached directly (rusqlite) instead of through sqlx's
//! per-connection worker thread, for the lookups and token issues partners make most.
//!
//! Reads run inline on the calling task. A lookup by key on a WAL database takes a few
//! microseconds, less than handing the statement to another thread and waking the task again
//! costs, and WAL readers never wait for writers.
//!
//! Writes go to one committer thread. It takes every write waiting at that moment, runs them in
//! one `BEGIN IMMEDIATE` transaction, and commits them together: a write that fails its guard or
//! its statements is undone alone without touching its neighbours. A write that fails at its
//! first statement has nothing to undo (SQLite undoes a failed statement itself), and that is
//! how writes fail: their claim comes first. Only when one fails after it changed something is
//! the transaction rolled back and the batch run again with each write in its own savepoint,
//! because a savepoint copies every page its write changes into a statement journal, which cost
//! about a tenth of a token issue's instructions when every write had one.
//!
//! No write is answered before its rows are on disk, but the committer does not wait for the
//! disk itself. It commits with `synchronous = NORMAL` (the WAL is written, not yet flushed) and
//! hands the batch to a second thread, the flusher, which fsyncs the WAL file and only then
//! answers every request of the batches committed before that fsync began. Meanwhile the
//! committer already runs the next batch. Group commit with a pipelined flush: one fsync serves
//! many token issues, and the CPU work of a batch overlaps the disk wait of the one before.
//!
//! A committed batch is visible to readers a moment before it is durable. Nothing a reader can
//! learn in that moment outlives a power failure unnoticed: the new secrets have not been handed
//! to anyone yet, and a later commit that depends on the batch lands after it in the same WAL.
//! If an fsync fails, the flusher answers with the error and the committer refuses every later
//! write: after a failed fsync the kernel may have dropped the pages, so nothing written since
//! can be trusted to be durable (the process must be restarted, as PostgreSQL does).
//!
//! The committer also checkpoints the WAL (copies its pages back into the database file), but
//! only after it has handed the batch that filled the WAL to the flusher: left to SQLite, the
//! checkpoint would run inside that batch's `COMMIT`, and the batch would wait for the copy and
//! its two fsyncs before its own flush could begin. The checkpoint stays on the committer's
//! thread, between two of its commits, because only there does it find the whole WAL copied
//! when the next commit begins, which is when SQLite starts the WAL over; a checkpoint running
//! beside the commits never catches up, and the WAL grows without bound.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{ffi, Connection, OpenFlags};
use tokio::sync::oneshot;

use super::query::{Expect, Step};

/// How many idle read connections are kept; more are opened when needed and closed after.
const IDLE_READERS: usize = 16;
/// At most this many writes share one transaction, so one batch cannot grow without bound.
const MAX_BATCH: usize = 512;

/// Thread names of at most 15 bytes, all that Linux keeps of one, so that `perf`, `top` and
/// `/proc` tell the two apart.
const COMMITTER_THREAD: &str = "tessera-commit";
const FLUSHER_THREAD: &str = "tessera-flush";
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const STATEMENT_CACHE: usize = 64;
/// The committer checkpoints once the WAL holds this many frames (pages), as SQLite would.
const CHECKPOINT_FRAMES: i32 = 1000;

#[derive(Debug)]
pub struct Embedded {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    committer: Mutex<Option<mpsc::Sender<WriteJob>>>,
}

impl Embedded {
    /// Opens the database file that sqlx already created and migrated, and starts the committer
    /// and its flusher.
    pub fn open(path: &Path) -> rusqlite::Result<Embedded> {
        let writer = connect(path)?;
        let journal: String = writer.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
        let flusher = if journal.eq_ignore_ascii_case("wal") {
            let wal = WalFile::open(&wal_path(path))
                .map_err(|e| failure(ffi::SQLITE_CANTOPEN, format!("cannot open the write-ahead log: {e}")))?;
            Some(Flusher::start(Box::new(move || wal.sync()))?)
        } else {
            None
        };
        Self::start(path, writer, flusher)
    }

    fn start(path: &Path, writer: Connection, flusher: Option<Flusher>) -> rusqlite::Result<Embedded> {
        let wal_frames = if flusher.is_some() {
            // The flusher makes each batch durable before it is answered (see the module docs).
            writer.pragma_update(None, "synchronous", "NORMAL")?;
            Some(WalFrames::watch(&writer))
        } else {
            None
        };
        // Each job's savepoint keeps the pages it changes in a statement journal, so that it can
        // be undone alone. Those journals only live until the batch commits: in a file they cost
        // two write calls per page once a batch outgrows the in-memory buffer.
        writer.pragma_update(None, "temp_store", "MEMORY")?;
        let (sender, jobs) = mpsc::channel();
        std::thread::Builder::new()
            .name(COMMITTER_THREAD.into())
            .spawn(move || commit_loop(wal_frames, writer, jobs, flusher))
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
    Ok(conn)
}

fn wal_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// The WAL file, held open so that it can be fsynced without going through SQLite.
struct WalFile {
    path: PathBuf,
    file: File,
}

impl WalFile {
    fn open(path: &Path) -> std::io::Result<WalFile> {
        // SQLite created it when the database entered WAL mode; it stays while any connection is
        // open, and ours are open as long as the server runs.
        Ok(WalFile { path: path.to_owned(), file: File::open(path)? })
    }

    /// Flushes everything written to the WAL so far. Should the file at the path ever have been
    /// replaced (it is deleted only when the last connection closes), the new one is flushed too.
    fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()?;
        let held = self.file.metadata()?;
        match std::fs::metadata(&self.path) {
            Ok(current) if (current.dev(), current.ino()) == (held.dev(), held.ino()) => Ok(()),
            Ok(_) => File::open(&self.path)?.sync_data(),
            Err(e) => Err(e),
        }
    }
}

type Flush = Box<dyn FnMut() -> std::io::Result<()> + Send>;

/// The thread that makes committed batches durable and answers them.
struct Flusher {
    batches: mpsc::Sender<Vec<WriteJob>>,
    /// Cleared for good by a failed flush.
    healthy: Arc<AtomicBool>,
}

impl Flusher {
    fn start(mut flush: Flush) -> rusqlite::Result<Flusher> {
        let healthy = Arc::new(AtomicBool::new(true));
        let (batches, committed) = mpsc::channel::<Vec<WriteJob>>();
        let flag = healthy.clone();
        std::thread::Builder::new()
            .name(FLUSHER_THREAD.into())
            .spawn(move || {
                while let Ok(first) = committed.recv() {
                    // Every batch already committed is covered by the fsync that starts now.
                    let mut waiting = vec![first];
                    waiting.extend(committed.try_iter());
                    let flushed = match flush() {
                        Ok(()) => Ok(()),
                        Err(e) => {
                            flag.store(false, Ordering::SeqCst);
                            tracing::error!(error = %e, "fsync of the SQLite write-ahead log failed; refusing writes until restarted");
                            Err(failure(ffi::SQLITE_IOERR_FSYNC, format!("fsync of the write-ahead log failed: {e}")))
                        }
                    };
                    for job in waiting.into_iter().flatten() {
                        job.finish(flushed.as_ref().map(|_| ()));
                    }
                }
            })
            .map_err(|e| failure(ffi::SQLITE_CANTOPEN, format!("cannot start the flusher thread: {e}")))?;
        Ok(Flusher { batches, healthy })
    }
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
    /// Runs the steps inside the open transaction. `Ok(false)` if the job failed after it had
    /// changed something and ran without a savepoint, so that only rolling the transaction back
    /// undoes it; an `Err` is a copy of the job's own error, which the job keeps to answer with.
    fn run(&mut self, conn: &Connection, isolation: Isolation) -> Result<bool, rusqlite::Error> {
        let (outcome, undoable) = match isolation {
            Isolation::Savepoint => (run_in_savepoint(conn, &self.steps), true),
            Isolation::None => run_unguarded(conn, &self.steps),
        };
        let result = match &outcome {
            Ok(_) => Ok(undoable),
            // A failure that took the whole transaction with it is the batch's failure.
            Err(_) if !undoable && !conn.is_autocommit() => Ok(false),
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

/// How the jobs of a batch are kept apart inside its transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isolation {
    /// Each job in its own savepoint: any failure is undone alone.
    Savepoint,
    /// No savepoint: a failure at a job's first statement leaves nothing behind; any other
    /// failure sends the batch back to be run with savepoints.
    None,
}

/// Runs `steps` without a savepoint: the outcome, and whether a failure left nothing of the job
/// behind (false once an earlier statement ran, or the failing claim itself changed rows).
fn run_unguarded(conn: &Connection, steps: &[Step]) -> (rusqlite::Result<Option<u64>>, bool) {
    let mut total = 0;
    for (index, step) in steps.iter().enumerate() {
        let clean = index == 0;
        let changed = match conn
            .prepare_cached(&step.sql)
            .and_then(|mut statement| statement.execute(rusqlite::params_from_iter(step.params.iter())))
        {
            Ok(changed) => changed,
            Err(e) => return (Err(e), clean),
        };
        if step.expect == Expect::OneRow && changed != 1 {
            return (Ok(None), clean && changed == 0);
        }
        total += changed as u64;
    }
    (Ok(Some(total)), true)
}

fn run_in_savepoint(conn: &Connection, steps: &[Step]) -> rusqlite::Result<Option<u64>> {
    conn.execute_batch("SAVEPOINT job")?;
    let (applied, _) = run_unguarded(conn, steps);
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

/// `wal_frames` comes before `conn`: parameters are dropped in reverse order, so the connection,
/// whose WAL hook points at the counter, is closed before the counter goes.
fn commit_loop(
    wal_frames: Option<WalFrames>,
    conn: Connection,
    jobs: mpsc::Receiver<WriteJob>,
    flusher: Option<Flusher>,
) {
    wake_without_preempting();
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        batch.extend(jobs.try_iter().take(MAX_BATCH - 1));
        if flusher.as_ref().is_some_and(|f| !f.healthy.load(Ordering::SeqCst)) {
            let refused = failure(ffi::SQLITE_IOERR_FSYNC, "an earlier fsync of the write-ahead log failed".into());
            batch.into_iter().for_each(|job| job.finish(Err(&refused)));
            continue;
        }
        let batch = match commit_batch(&conn, batch) {
            Ok(committed) => committed,
            Err((failed, error)) => {
                failed.into_iter().for_each(|job| job.finish(Err(&error)));
                continue;
            }
        };
        match &flusher {
            // If the flusher is gone, so is any guarantee: the send fails and the jobs inside are
            // dropped, which their requests see as a closed store.
            Some(flusher) => drop(flusher.batches.send(batch)),
            None => batch.into_iter().for_each(|job| job.finish(Ok(()))),
        }
        if wal_frames.as_ref().is_some_and(|frames| frames.count() >= CHECKPOINT_FRAMES) {
            checkpoint(&conn);
        }
    }
}

/// Copies the WAL's committed pages back into the database file without waiting for readers:
/// pages a reader may still need stay in the WAL for a later checkpoint.
fn checkpoint(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get::<_, i64>(0)) {
        // Nothing is lost: the WAL keeps every page, and grows until a checkpoint succeeds.
        tracing::warn!(error = %e, "checkpoint of the SQLite write-ahead log failed");
    }
}

/// How many frames the WAL held after the committer's latest commit, as SQLite reports it to a
/// WAL hook. Installing the hook replaces SQLite's own, which checkpoints inside the commit.
struct WalFrames(Box<AtomicI32>);

impl WalFrames {
    fn watch(conn: &Connection) -> WalFrames {
        let frames = WalFrames(Box::new(AtomicI32::new(0)));
        let counter: *const AtomicI32 = &*frames.0;
        // SAFETY: the handle is the committer's open connection. The counter is boxed, so its
        // address stays put when `frames` moves, and it outlives the connection (the committer
        // closes the connection first, see commit_loop), so the hook never sees a dangling pointer.
        unsafe { ffi::sqlite3_wal_hook(conn.handle(), Some(record_wal_frames), counter.cast_mut().cast()) };
        frames
    }

    fn count(&self) -> i32 {
        self.0.load(Ordering::Relaxed)
    }
}

unsafe extern "C" fn record_wal_frames(
    counter: *mut std::ffi::c_void,
    _db: *mut ffi::sqlite3,
    _schema: *const std::ffi::c_char,
    frames: std::ffi::c_int,
) -> std::ffi::c_int {
    // SAFETY: `counter` is the AtomicI32 that WalFrames::watch registered, alive while the
    // connection is open (see there).
    unsafe { &*counter.cast::<AtomicI32>() }.store(frames, Ordering::Relaxed);
    ffi::SQLITE_OK
}

/// Puts the calling thread (the committer) in Linux's SCHED_BATCH policy, whose wake-ups do not
/// preempt the running thread. When the committer shares a CPU with the request threads, a job
/// sent to it used to preempt the sender at once, so the committer woke for every one to three
/// jobs: about 5,400 commits and 14,000 context switches a second during a refresh run, and as
/// many WAL writes of the same few pages. Now the request threads queue what they have before
/// it runs, and each commit covers more jobs (tessera-bench: 22-27% less server CPU per token
/// issue, p99 lower). It still gets its fair share of the CPU, and an idle CPU at once.
/// The flusher keeps the default policy: the next fsync should start as soon as one ends.
#[cfg(target_os = "linux")]
fn wake_without_preempting() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler reads `param` and changes only the calling thread's policy.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
        // Only a cost: commits are then smaller where the committer shares a CPU.
        tracing::debug!(error = %std::io::Error::last_os_error(), "the committer keeps the default scheduling policy");
    }
}

#[cfg(not(target_os = "linux"))]
fn wake_without_preempting() {}

/// Runs and commits one batch: the jobs to answer once durable, or every job with the error
/// that undid the whole transaction.
fn commit_batch(
    conn: &Connection,
    mut batch: Vec<WriteJob>,
) -> Result<Vec<WriteJob>, (Vec<WriteJob>, rusqlite::Error)> {
    let mut isolation = Isolation::None;
    'attempt: loop {
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            return Err((batch, e));
        }
        for index in 0..batch.len() {
            match batch[index].run(conn, isolation) {
                Ok(true) => {}
                Ok(false) => {
                    // A job failed halfway without a savepoint: start over with savepoints.
                    if let Err(e) = conn.execute_batch("ROLLBACK") {
                        return Err((batch, e));
                    }
                    batch.iter_mut().for_each(|job| job.outcome = None);
                    isolation = Isolation::Savepoint;
                    continue 'attempt;
                }
                Err(e) => {
                    if conn.is_autocommit() {
                        // The transaction is gone, and with it every earlier job's changes.
                        return Err((batch, e));
                    }
                }
            }
        }
        break;
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => Ok(batch),
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err((batch, e))
        }
    }
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

    /// The scheduling policy of every thread of this process with the given name (`/proc`'s
    /// `stat`, field 41).
    #[cfg(target_os = "linux")]
    fn policies_of_threads_named(name: &str) -> Vec<i32> {
        let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
        tasks
            .filter_map(|task| {
                let dir = task.ok()?.path();
                let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
                // The name is in parentheses and may hold spaces; the fields after it start at 3.
                let (head, fields) = stat.rsplit_once(')')?;
                (head.split_once('(')?.1 == name).then(|| fields.split_whitespace().nth(41 - 3)?.parse().ok())?
            })
            .collect()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_committer_does_not_preempt_and_the_flusher_does() {
        let (_dir, db) = database();
        // Answered only once the committer and the flusher have both run.
        db.write(vec![Step::new("INSERT INTO codes (hash, used) VALUES ('p', 0)", values![])]).await.expect("write");
        let committers = policies_of_threads_named(COMMITTER_THREAD);
        let flushers = policies_of_threads_named(FLUSHER_THREAD);
        assert!(!committers.is_empty() && !flushers.is_empty(), "{committers:?} {flushers:?}");
        // Other tests' stores may run beside this one; every committer and flusher is alike.
        assert!(committers.iter().all(|&p| p == libc::SCHED_BATCH), "committers: {committers:?}");
        assert!(flushers.iter().all(|&p| p == libc::SCHED_OTHER), "flushers: {flushers:?}");
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

    /// One batch, run directly: a write that fails after its claim changed a row sends the batch
    /// back to run with savepoints, and is then undone alone; a claim that loses at the first
    /// statement needs nothing undone.
    #[test]
    fn a_write_failing_halfway_is_undone_alone_when_its_batch_runs_again() {
        let (dir, db) = database();
        db.close();
        let conn = connect(&dir.path().join("t.db")).expect("connect");
        conn.execute_batch("INSERT INTO codes (hash, used) VALUES ('a', 0), ('b', 0), ('c', 0)").expect("codes");
        let job = |steps| {
            let (reply, answer) = oneshot::channel();
            (WriteJob { steps, outcome: None, reply }, answer)
        };
        let (first, first_answer) = job(exchange("a", "t1"));
        let (halfway, halfway_answer) = job(vec![
            Step::claim("UPDATE codes SET used = 1 WHERE hash = 'b' AND used = 0", []),
            Step::new("INSERT INTO tokens (hash, code) VALUES ('t2', 'missing')", []),
        ]);
        let (lost, lost_answer) = job(exchange("a", "t3"));
        let (last, last_answer) = job(exchange("c", "t4"));
        let Ok(committed) = commit_batch(&conn, vec![first, halfway, lost, last]) else { panic!("the batch commits") };
        committed.into_iter().for_each(|job| job.finish(Ok(())));

        assert_eq!(first_answer.blocking_recv().expect("answered").expect("first"), Some(2));
        assert!(halfway_answer.blocking_recv().expect("answered").is_err(), "the foreign key fails");
        assert_eq!(lost_answer.blocking_recv().expect("answered").expect("lost"), None, "'a' was claimed already");
        assert_eq!(last_answer.blocking_recv().expect("answered").expect("last"), Some(2));
        let used = |hash: &str| -> i64 {
            conn.query_row("SELECT used FROM codes WHERE hash = ?1", [hash], |r| r.get(0)).expect("used")
        };
        assert_eq!((used("a"), used("b"), used("c")), (1, 0, 1), "only the halfway write's claim is undone");
        let tokens: Vec<String> = conn
            .prepare("SELECT hash FROM tokens ORDER BY hash")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .expect("tokens");
        assert_eq!(tokens, ["t1", "t4"]);
    }

    fn with_flush(flush: Flush) -> (tempfile::TempDir, Embedded) {
        let (dir, db) = database();
        db.close();
        let path = dir.path().join("t.db");
        let flusher = Flusher::start(flush).expect("flusher");
        (dir, Embedded::start(&path, connect(&path).expect("writer"), Some(flusher)).expect("embedded"))
    }

    #[tokio::test]
    async fn a_write_is_answered_only_after_a_flush_that_began_after_its_commit() {
        let flushes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = flushes.clone();
        let (_dir, db) = with_flush(Box::new(move || {
            std::thread::sleep(Duration::from_millis(50));
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }));
        for round in 1..=3 {
            let written =
                db.write(vec![Step::new("INSERT INTO codes (hash, used) VALUES ($1, 0)", values![round])]).await;
            assert_eq!(written.expect("write"), Some(1));
            assert!(flushes.load(Ordering::SeqCst) >= round as usize, "answered before its flush");
        }
    }

    #[tokio::test]
    async fn a_failed_flush_fails_its_writes_and_every_later_one() {
        let (dir, db) = with_flush(Box::new(|| Err(std::io::Error::other("the disk went away"))));
        let first = db.write(vec![Step::new("INSERT INTO codes (hash, used) VALUES ('a', 0)", [])]).await;
        let code = first.expect_err("unflushed").sqlite_error_code();
        assert_eq!(code, Some(rusqlite::ErrorCode::SystemIoFailure));
        let later = db.write(vec![Step::new("INSERT INTO codes (hash, used) VALUES ('b', 0)", [])]).await;
        assert!(later.is_err(), "a write after a failed fsync must be refused: {later:?}");
        db.close();
        let check = Connection::open(dir.path().join("t.db")).expect("open");
        let b: i64 = check.query_row("SELECT count(*) FROM codes WHERE hash = 'b'", [], |r| r.get(0)).expect("b");
        assert_eq!(b, 0, "the refused write did not run");
    }

    #[test]
    fn the_wal_hook_counts_frames_and_keeps_sqlite_from_checkpointing_inside_the_commit() {
        let (dir, _db) = database();
        let file = dir.path().join("t.db");
        // Declared before the connection, so that the connection is closed first.
        #[allow(clippy::needless_late_init)]
        let frames;
        let conn = connect(&file).expect("connection");
        frames = WalFrames::watch(&conn);
        let before = std::fs::metadata(&file).expect("database file").len();
        // About 500 pages of rows and as many of their key index: over 1,000 frames in one commit,
        // after which SQLite's own hook would have checkpointed before the commit returned.
        conn.execute_batch(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
             INSERT INTO codes (hash, used) SELECT i || hex(randomblob(400)), 0 FROM n",
        )
        .expect("rows");
        assert!(frames.count() >= CHECKPOINT_FRAMES, "the hook saw the commit's frames: {}", frames.count());
        let after = std::fs::metadata(&file).expect("database file").len();
        assert_eq!(after, before, "nothing was checkpointed into the database file inside the commit");
    }

    #[tokio::test]
    async fn the_committer_checkpoints_so_the_wal_starts_over_instead_of_growing() {
        let (dir, db) = database();
        let file = dir.path().join("t.db");
        // Each write adds over 250 pages (the rows alone; their key index as many again), so 24
        // of them are at least six times the 1,000 frames after which the committer checkpoints.
        for round in 0..24 {
            let rows = format!(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
                 INSERT INTO codes (hash, used) SELECT '{round}-' || i || hex(randomblob(400)), 0 FROM n"
            );
            assert_eq!(db.write(vec![Step::new(&rows, [])]).await.expect("rows"), Some(1000));
        }
        let database_bytes = std::fs::metadata(&file).expect("database file").len();
        let wal_bytes = std::fs::metadata(wal_path(&file)).expect("WAL file").len();
        assert!(database_bytes > 16 << 20, "the rows were copied into the database file: {database_bytes} bytes");
        assert!(wal_bytes < 8 << 20, "the WAL was started over, not grown: {wal_bytes} bytes");
        assert_eq!(count(&db, "SELECT count(*) FROM codes"), 24_000);
    }

    #[tokio::test]
    async fn a_closed_store_refuses_writes_instead_of_hanging() {
        let (_dir, db) = database();
        db.close();
        let refused = db.write(vec![Step::new("INSERT INTO codes (hash, used) VALUES ('x', 0)", [])]).await;
        assert!(refused.is_err());
    }
}
