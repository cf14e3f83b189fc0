//! The PostgreSQL engine's fast path: tokio-postgres connections, for the reads and write
//! transactions partners make most (everything behind [`Store::fetch_optional`],
//! [`Store::fetch_all`] and [`Store::write_all`](super::Store::write_all)).
//!
//! sqlx, which serves the rest, costs a round trip per statement on top of the statement itself:
//! its pool sends a `Sync` and waits for the answer each time a connection comes back, and it
//! cannot pipeline. Here what costs PostgreSQL most per request is shared among requests:
//!
//! - **Reads** share a few long-lived connections ([`SharedReaders`]). tokio-postgres pipelines
//!   the queries of every task using a connection, so under load its backend finds the next
//!   query already waiting and answers a stream of them without sleeping between them, and
//!   tessera reads many answers with one system call.
//! - **Write transactions** are committed in groups ([`GroupCommitter`]): those waiting when a
//!   commit begins travel as one transaction in one round trip, `BEGIN`, their statements and
//!   `COMMIT` pipelined, so one WAL flush and one wake-up serve them all. Transactions of the
//!   same steps share one statement ([`batched`]), so a group of token requests is one executor
//!   run and one reply. Each still commits or fails alone: a claim among them is guarded so that
//!   its failure aborts the group, which is then run again without the transaction that failed;
//!   that one runs again alone afterwards.
//!
//! A group that a request abandons halfway runs to its end on its own task, so no connection
//! goes back to the pool inside an open transaction; should the task itself be dropped (the
//! runtime shutting down), [`OpenTransaction`] closes its connection instead, and PostgreSQL
//! rolls the transaction back.
//!
//! [`Store::fetch_optional`]: super::Store::fetch_optional
//! [`Store::fetch_all`]: super::Store::fetch_all

use std::collections::HashMap;
use std::ops::Range;
use std::str::FromStr;
use std::sync::Arc;

use deadpool_postgres::tokio_postgres::types::{IsNull, ToSql, Type};
use deadpool_postgres::tokio_postgres::{self, NoTls, Statement};
use deadpool_postgres::{ClientWrapper, ManagerConfig, RecyclingMethod};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::to_sql_checked;

use super::query::{Read, Record, Step, Value};
use super::{is_unavailable_sqlstate, StoreError, PING_WHEN_IDLE_FOR, WAIT_FOR_CONNECTION};

mod batched;
mod reads;

type Pool = deadpool::managed::Pool<Manager>;
type Connection = deadpool::managed::Object<Manager>;

pub struct Postgres {
    pool: Pool,
    readers: Arc<SharedReaders>,
    reads: reads::SharedReads,
    committer: GroupCommitter,
    pairs: std::sync::Mutex<PairedReads>,
}

/// The statements of [`Postgres::fetch_optional_pair`], by the SQL of the first read, then of
/// the second: a few pairs of reads, each made once rather than per request.
type PairedReads = HashMap<String, HashMap<String, PairedRead>>;

#[derive(Clone)]
struct PairedRead {
    sql: String,
    /// Where the second read's columns begin, after the first's.
    second_at: usize,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").field("pool", &self.pool.status()).finish()
    }
}

impl Postgres {
    /// The shared read connections and the group committer's for `url`, opened as they are
    /// needed. Must be called within a tokio runtime, on which the committer runs.
    pub fn new(url: &str) -> Result<Postgres, StoreError> {
        let config = tokio_postgres::Config::from_str(url)?;
        let shared = shared_readers();
        let config = by_key(config);
        let readers = Arc::new(SharedReaders::new(new_pool(&config, 2 * shared)?, shared));
        let reads = reads::SharedReads::start(readers.clone());
        let pool = new_pool(&config, COMMITS_IN_FLIGHT)?;
        let committer = GroupCommitter::start(pool.clone());
        Ok(Postgres { pool, readers, reads, committer, pairs: Default::default() })
    }

    /// The one row `sql` finds, read together with the reads of other requests ([`reads`]).
    pub async fn fetch_optional<T: Record>(&self, sql: &str, params: &[Value]) -> Result<Option<T>, StoreError> {
        let found = self.reads.read(sql.to_owned(), params.to_vec()).await?;
        Ok(found.map(|found| T::from_postgres(&found.row, found.first)).transpose()?)
    }

    /// Both reads as one statement, the columns of the first then the second's side by side in
    /// one row: one executor run and one reply instead of two. A read that finds nothing leaves
    /// its columns NULL, the first of them too, which a row it finds never has.
    pub async fn fetch_optional_pair<A: Record, B: Record>(
        &self,
        first: &Read<A>,
        second: &Read<B>,
    ) -> Result<(Option<A>, Option<B>), StoreError> {
        let pair = self.pair(&first.sql, &second.sql, &first.params).await?;
        let params = [first.params.as_slice(), second.params.as_slice()].concat();
        let Some(reads::Found { row, first }) = self.reads.read(pair.sql, params).await? else {
            return Ok((None, None));
        };
        let second_at = first + pair.second_at;
        let a = found(&row, first)?.then(|| A::from_postgres(&row, first)).transpose()?;
        let b = found(&row, second_at)?.then(|| B::from_postgres(&row, second_at)).transpose()?;
        Ok((a, b))
    }

    /// The statement reading `first` and `second` side by side, made once per pair of reads.
    async fn pair(&self, first: &str, second: &str, first_params: &[Value]) -> Result<PairedRead, StoreError> {
        let known = |pairs: &PairedReads| pairs.get(first).and_then(|seconds| seconds.get(second)).cloned();
        if let Some(pair) = known(&self.pairs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)) {
            return Ok(pair);
        }
        // Where the second read's columns begin: the first read's own statement tells.
        let connection = self.readers.next().await?;
        let second_at = prepare(&connection, first, first_params).await?.columns().len();
        let sql = format!(
            "SELECT * FROM (SELECT) AS one LEFT JOIN ({first}) AS a ON true LEFT JOIN ({}) AS b ON true",
            batched::renumbered(second, first_params.len())
        );
        let pair = PairedRead { sql, second_at };
        let mut pairs = self.pairs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pairs.entry(first.to_owned()).or_default().insert(second.to_owned(), pair.clone());
        Ok(pair)
    }

    pub async fn fetch_all<T: Record>(&self, sql: &str, params: &[Value]) -> Result<Vec<T>, StoreError> {
        let connection = self.readers.next().await?;
        let statement = prepare(&connection, sql, params).await?;
        let rows = connection.query(&statement, &as_params(params)).await?;
        Ok(rows.iter().map(|row| T::from_postgres(row, 0)).collect::<Result<_, _>>()?)
    }

    /// Runs `steps` as one transaction, durably committed before this returns: the rows they
    /// changed, or `None` if a step's [`Expect::OneRow`] guard failed and nothing was changed.
    ///
    /// The transaction joins the others waiting at that moment in one group commit (see
    /// [`GroupCommitter`]).
    pub async fn write(&self, steps: Vec<Step>) -> Result<Option<u64>, StoreError> {
        self.committer.write(steps).await
    }

    pub fn close(&self) {
        self.pool.close();
        self.readers.close();
    }
}

/// `config` for the fast path's connections, whose statements join a batch's parameters, a few
/// dozen rows at most, to tables by their keys ([`batched`]). An index lookup per row is always
/// the plan for that; the planner, which keeps a prepared statement's generic plan, may have made
/// it while a table was nearly empty and chosen to scan and hash the table, which then costs more
/// with every row the table gains.
fn by_key(mut config: tokio_postgres::Config) -> tokio_postgres::Config {
    let given = config.get_options().unwrap_or_default();
    let options = format!("{given} -c enable_hashjoin=off -c enable_mergejoin=off -c enable_seqscan=off");
    config.options(options.trim_start());
    config
}

fn new_pool(config: &tokio_postgres::Config, max_size: usize) -> Result<Pool, StoreError> {
    let manager = deadpool_postgres::Manager::from_config(
        config.clone(),
        NoTls,
        ManagerConfig { recycling_method: RecyclingMethod::Fast },
    );
    Pool::builder(Manager(manager))
        .max_size(max_size)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(WAIT_FOR_CONNECTION))
        .create_timeout(Some(WAIT_FOR_CONNECTION))
        .recycle_timeout(Some(WAIT_FOR_CONNECTION))
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// How many connections the reads share: one per two CPUs tessera may run on, at least one.
/// One backend answers a pipelined stream of lookups faster than several answer them by turns
/// (on one or two CPUs, one connection carried 28-30k introspections a second against 20-23k
/// for two and 16k for a connection per request), and two CPUs of tessera's keep one busy.
fn shared_readers() -> usize {
    std::thread::available_parallelism().map_or(1, |cpus| cpus.get() / 2).max(1)
}

/// A few connections every read shares, each carrying many requests at once: tokio-postgres
/// pipelines the queries of all its users, so a backend finds the next query waiting when it
/// finishes one and answers a stream of them without sleeping in between.
struct SharedReaders {
    pool: Pool,
    slots: Vec<tokio::sync::Mutex<Option<Arc<Connection>>>>,
    next: std::sync::atomic::AtomicUsize,
}

impl SharedReaders {
    /// `count` shared connections from `pool`, which has room for a replacement of each.
    fn new(pool: Pool, count: usize) -> SharedReaders {
        let slots = (0..count).map(|_| tokio::sync::Mutex::new(None)).collect();
        SharedReaders { pool, slots, next: std::sync::atomic::AtomicUsize::new(0) }
    }

    /// The next connection in turn, opened (again) if it is not open. Requests wanting one
    /// while it opens wait for it rather than opening their own.
    async fn next(&self) -> Result<Arc<Connection>, StoreError> {
        let turn = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.slots.len();
        // Bounded: while PostgreSQL cannot be reached, each opening in turn may take that long.
        let mut slot = tokio::time::timeout(WAIT_FOR_CONNECTION, self.slots[turn].lock())
            .await
            .map_err(|_| StoreError::Unavailable("timed out waiting for a read connection".into()))?;
        match slot.as_ref() {
            Some(connection) if !connection.is_closed() => Ok(connection.clone()),
            _ => {
                // A closed one goes back to the pool when its last query has failed, and is
                // thrown away there.
                let fresh = Arc::new(self.pool.get().await?);
                *slot = Some(fresh.clone());
                Ok(fresh)
            }
        }
    }

    fn close(&self) {
        for slot in &self.slots {
            if let Ok(mut slot) = slot.try_lock() {
                slot.take();
            }
        }
        self.pool.close();
    }
}

/// How many group commits may be under way at once, each on a connection of its own. One: two
/// were no faster here (refresh 5.9-6.4k against 5.7-6.6k a second), and two groups of one
/// process could deadlock on each other's rows, each holding many.
const COMMITS_IN_FLIGHT: usize = 1;
/// The most transactions one group commit carries.
const MOST_PER_COMMIT: usize = 64;
/// How often a group commit is tried again after PostgreSQL aborted it to break a deadlock or a
/// serialization conflict with another process's.
const CONFLICT_RETRIES: usize = 3;

/// Runs the write transactions of all requests as group commits: the transactions waiting when a
/// commit begins go to PostgreSQL as one transaction, pipelined in one round trip, so a busy
/// server pays one `BEGIN`, one `COMMIT`, one WAL flush and one backend wake-up for many requests
/// instead of for each.
///
/// Each request's transaction still commits or fails alone. When a statement fails (a claim lost
/// its race, a unique name was taken), PostgreSQL rolls the whole group back; the transaction it
/// belonged to (all those of its statement, when the error does not say which) is set aside, the
/// others run again without it, and then it runs alone (see [`commit_group`]). No request is
/// answered before the commit that holds its rows, or the rows its failure may have met, has
/// returned.
struct GroupCommitter {
    jobs: mpsc::UnboundedSender<WriteJob>,
}

struct WriteJob {
    steps: Vec<Step>,
    answer: oneshot::Sender<Result<Option<u64>, StoreError>>,
}

/// How a group commit ended.
enum GroupOutcome {
    /// Committed: the rows each transaction changed, in order.
    Committed(Vec<u64>),
    /// A transaction at these places failed on its own account (a claim refused: `Ok(None)`, or
    /// an error such as a unique violation) and the group was rolled back. `answer` is its
    /// answer when there is one place.
    Refused { jobs: Range<usize>, answer: Result<Option<u64>, StoreError> },
    /// PostgreSQL aborted the group to break a deadlock or a serialization conflict.
    Conflict(StoreError),
    /// The group could not run (no connection, the connection broke, the database refuses writes).
    Failed(StoreError),
}

impl GroupCommitter {
    fn start(pool: Pool) -> GroupCommitter {
        let (jobs, waiting) = mpsc::unbounded_channel();
        let waiting = Arc::new(tokio::sync::Mutex::new(waiting));
        for _ in 0..COMMITS_IN_FLIGHT {
            tokio::spawn(commit_groups(pool.clone(), waiting.clone()));
        }
        GroupCommitter { jobs }
    }

    async fn write(&self, steps: Vec<Step>) -> Result<Option<u64>, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(WriteJob { steps, answer })
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        answered.await.map_err(|_| StoreError::Unavailable("the store closed during the write".into()))?
    }
}

/// One of the [`COMMITS_IN_FLIGHT`] loops: takes every transaction waiting (at least one, at most
/// [`MOST_PER_COMMIT`]) and commits them as a group, until the store is dropped. Once a group has
/// begun, it runs to its end even if a request in it goes away meanwhile.
async fn commit_groups(pool: Pool, waiting: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<WriteJob>>>) {
    let mut group = Vec::with_capacity(MOST_PER_COMMIT);
    loop {
        if waiting.lock().await.recv_many(&mut group, MOST_PER_COMMIT).await == 0 {
            return;
        }
        // A request that went away before its transaction began leaves nothing to do.
        group.retain(|job| !job.answer.is_closed());
        batched::kinds_together(&mut group, |a, b| batched::same_kind(&a.steps, &b.steps));
        commit_group(&pool, &mut group).await;
    }
}

/// Commits `group` and answers every transaction in it.
///
/// A transaction that fails beside others is set aside and the rest run again without it. Its
/// failure may have come from another transaction of the group (a claim on the same row, the
/// same unique name) that in the end does not commit, so once the rest is committed it runs
/// again alone, and that answer is final. So no failure is answered before the transactions it
/// may have met are committed, as no success is before its own commit.
async fn commit_group(pool: &Pool, group: &mut Vec<WriteJob>) {
    let mut set_aside = Vec::new();
    commit_together(pool, group, &mut set_aside).await;
    for job in set_aside {
        commit_together(pool, &mut vec![job], &mut Vec::new()).await;
    }
}

/// Commits `group` without the transactions that fail in it (moved to `set_aside`; a
/// transaction alone is answered with its failure instead), answering the rest.
async fn commit_together(pool: &Pool, group: &mut Vec<WriteJob>, set_aside: &mut Vec<WriteJob>) {
    let mut conflicts = 0;
    while !group.is_empty() {
        let outcome = match pool.get().await {
            Ok(connection) => run_group(connection, group).await,
            Err(e) => GroupOutcome::Failed(e.into()),
        };
        match outcome {
            GroupOutcome::Committed(changed) => {
                for (job, rows) in group.drain(..).zip(changed) {
                    let _ = job.answer.send(Ok(Some(rows)));
                }
            }
            GroupOutcome::Refused { answer, .. } if group.len() == 1 => {
                let _ = group.remove(0).answer.send(answer);
            }
            GroupOutcome::Refused { jobs, .. } => set_aside.extend(group.drain(jobs)),
            GroupOutcome::Conflict(_) if conflicts < CONFLICT_RETRIES => conflicts += 1,
            GroupOutcome::Conflict(error) | GroupOutcome::Failed(error) => {
                let reason = error.to_string();
                let mut jobs = group.drain(..);
                if let Some(first) = jobs.next() {
                    let _ = first.answer.send(Err(error));
                }
                for job in jobs {
                    let _ = job.answer.send(Err(StoreError::Unavailable(reason.clone())));
                }
            }
        }
    }
}

/// `BEGIN`, the transactions of `group` as a few statements (see [`batched`]) and `COMMIT`, in
/// one round trip. A claim's guard raises when it changed no row: the error aborts the group,
/// PostgreSQL refuses the statements behind it, and the `COMMIT` rolls back.
async fn run_group(connection: Connection, group: &[WriteJob]) -> GroupOutcome {
    let transactions: Vec<&[Step]> = group.iter().map(|job| job.steps.as_slice()).collect();
    let batches = batched::batches(&transactions);
    let mut statements = Vec::with_capacity(batches.len());
    for batch in &batches {
        match prepare(&connection, &batch.sql, &batch.params).await {
            // tokio-postgres refuses parameters that do not fit their statement without
            // sending it, but sends what follows: checked here, before anything is sent, so
            // that a group never commits without one of its statements.
            Ok(statement) if !fits(&statement, &batch.params) => {
                let mismatch = StoreError::Mismatch(batch.sql.clone());
                return GroupOutcome::Refused { jobs: batch.jobs.clone(), answer: Err(mismatch) };
            }
            Ok(statement) => statements.push(statement),
            Err(e) if connection.is_closed() => return GroupOutcome::Failed(e),
            Err(e) => return GroupOutcome::Refused { jobs: batch.jobs.clone(), answer: Err(e) },
        }
    }
    let (begin, commit) = match (connection.prepare_cached("BEGIN").await, connection.prepare_cached("COMMIT").await) {
        (Ok(begin), Ok(commit)) => (begin, commit),
        (Err(e), _) | (_, Err(e)) => return GroupOutcome::Failed(e.into()),
    };

    let transaction = OpenTransaction(Some(connection));
    let Ok(client) = transaction.client() else {
        return GroupOutcome::Failed(StoreError::Unavailable("the transaction has ended".into()));
    };
    let params: Vec<_> = batches.iter().map(|batch| as_params(&batch.params)).collect();
    let mut requests = Vec::with_capacity(statements.len() + 2);
    requests.push(client.query(&begin, &[]));
    for (statement, params) in statements.iter().zip(&params) {
        requests.push(client.query(statement, params));
    }
    requests.push(client.query(&commit, &[]));
    // Pipelined: each request is sent when first polled, in this order, before any answer.
    let mut answers = futures_util::future::join_all(requests).await.into_iter();
    if let Some(Err(e)) = answers.next() {
        return transaction.ended(GroupOutcome::Failed(e.into()));
    }
    let mut changed = vec![0; group.len()];
    for (batch, answer) in batches.iter().zip(answers.by_ref()) {
        // A row per transaction, in order: the rows its steps changed.
        let counted = answer.and_then(|rows| {
            debug_assert_eq!(rows.len(), batch.jobs.len(), "{}", batch.sql);
            rows.iter().zip(batch.jobs.clone()).try_for_each(|(row, place)| {
                changed[place] = u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0);
                Ok(())
            })
        });
        // The first failure tells why; every statement behind it was refused, and the COMMIT
        // rolled the group back.
        if let Err(e) = counted {
            return transaction.ended(failed_in_group(batch.jobs.clone(), e));
        }
    }
    // The answer to the COMMIT.
    transaction.ended(match answers.next() {
        Some(Ok(_)) => GroupOutcome::Committed(changed),
        Some(Err(e)) => GroupOutcome::Failed(e.into()),
        None => GroupOutcome::Failed(StoreError::Unavailable("no answer to COMMIT".into())),
    })
}

/// Whether `params` are as many as `statement` takes, each of the type it was prepared with.
fn fits(statement: &Statement, params: &[Value]) -> bool {
    statement.params().len() == params.len()
        && statement.params().iter().zip(params).all(|(ty, value)| *ty == value.postgres_type())
}

/// What the failure of the statement carrying the transactions at `jobs` means for the group. A
/// claim's guard names the transaction it failed for; any other failure (a unique name taken, say)
/// might be any of them.
fn failed_in_group(jobs: Range<usize>, error: tokio_postgres::Error) -> GroupOutcome {
    use tokio_postgres::error::SqlState;
    match error.code() {
        Some(code) if code.code() == CLAIM_REFUSED => {
            let place = error.as_db_error().and_then(|e| e.detail()).and_then(|place| place.parse::<usize>().ok());
            match place.map(|place| jobs.start + place).filter(|job| jobs.contains(job)) {
                Some(job) => GroupOutcome::Refused { jobs: job..job + 1, answer: Ok(None) },
                None => GroupOutcome::Refused { jobs, answer: Ok(None) },
            }
        }
        Some(&SqlState::T_R_DEADLOCK_DETECTED | &SqlState::T_R_SERIALIZATION_FAILURE) => {
            GroupOutcome::Conflict(error.into())
        }
        Some(code) if is_unavailable_sqlstate(code.code()) => GroupOutcome::Failed(error.into()),
        Some(_) => GroupOutcome::Refused { jobs, answer: Err(error.into()) },
        None => GroupOutcome::Failed(error.into()),
    }
}

/// A connection inside a transaction this module began. Dropped before [`ended`] (the request was
/// abandoned while it waited), it is taken out of the pool and closed, which rolls back.
///
/// [`ended`]: OpenTransaction::ended
struct OpenTransaction(Option<Connection>);

impl OpenTransaction {
    /// The connection, which is only given up when the transaction has ended.
    fn client(&self) -> Result<&ClientWrapper, StoreError> {
        self.0.as_deref().ok_or_else(|| StoreError::Unavailable("the transaction has ended".into()))
    }

    /// The transaction committed or rolled back: the connection may go back to the pool.
    fn ended<T>(mut self, outcome: T) -> T {
        drop(self.0.take());
        outcome
    }
}

impl Drop for OpenTransaction {
    fn drop(&mut self) {
        if let Some(connection) = self.0.take() {
            drop(Connection::take(connection));
        }
    }
}

/// The SQLSTATE `tessera_claimed` raises for a claim that changed no row.
const CLAIM_REFUSED: &str = "TS001";

/// The statement for `sql`, prepared once per connection with its parameters typed as the
/// values say (`TEXT` or `BIGINT`), as sqlx declares them on the other paths.
async fn prepare(connection: &ClientWrapper, sql: &str, params: &[Value]) -> Result<Statement, StoreError> {
    let types: Vec<Type> = params.iter().map(Value::postgres_type).collect();
    Ok(connection.prepare_typed_cached(sql, &types).await?)
}

fn as_params(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Value {
    fn postgres_type(&self) -> Type {
        match self {
            Value::Text(_) | Value::Null => Type::TEXT,
            Value::Int(_) | Value::NullInt => Type::INT8,
        }
    }
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if *ty != self.postgres_type() {
            return Err(format!("a {:?} parameter was bound where {ty} was expected", self.postgres_type()).into());
        }
        match self {
            Value::Text(text) => text.as_str().to_sql(ty, out),
            Value::Int(number) => number.to_sql(ty, out),
            Value::Null | Value::NullInt => Ok(IsNull::Yes),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::TEXT | Type::INT8)
    }

    to_sql_checked!();
}

/// Whether the column at `at` of `row` holds a value, whatever its type.
fn found(row: &tokio_postgres::Row, at: usize) -> Result<bool, tokio_postgres::Error> {
    struct Found(bool);
    impl<'a> tokio_postgres::types::FromSql<'a> for Found {
        fn from_sql(_: &Type, _: &'a [u8]) -> Result<Found, Box<dyn std::error::Error + Sync + Send>> {
            Ok(Found(true))
        }
        fn from_sql_null(_: &Type) -> Result<Found, Box<dyn std::error::Error + Sync + Send>> {
            Ok(Found(false))
        }
        fn accepts(_: &Type) -> bool {
            true
        }
    }
    Ok(row.try_get::<_, Found>(at)?.0)
}

/// deadpool-postgres's manager, checking a connection that sat idle before handing it out.
struct Manager(deadpool_postgres::Manager);

impl deadpool::managed::Manager for Manager {
    type Type = ClientWrapper;
    type Error = tokio_postgres::Error;

    async fn create(&self) -> Result<ClientWrapper, tokio_postgres::Error> {
        self.0.create().await
    }

    async fn recycle(
        &self,
        client: &mut ClientWrapper,
        metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<tokio_postgres::Error> {
        self.0.recycle(client, metrics).await?;
        if metrics.last_used() > PING_WHEN_IDLE_FOR {
            client.simple_query("").await?;
        }
        Ok(())
    }

    fn detach(&self, client: &mut ClientWrapper) {
        self.0.detach(client);
    }
}
