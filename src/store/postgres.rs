//! The PostgreSQL engine's fast path: tokio-postgres connections in a deadpool pool, for the
//! reads and write transactions partners make most (everything behind [`Store::fetch_optional`],
//! [`Store::fetch_all`] and [`Store::write_all`](super::Store::write_all)).
//!
//! sqlx, which serves the rest, costs a round trip per statement on top of the statement itself:
//! its pool sends a `Sync` and waits for the answer each time a connection comes back, and it
//! cannot pipeline. Here a connection comes back to the pool without a word to the server
//! (tokio-postgres keeps the protocol in step even when a request is abandoned halfway; one idle
//! for longer than a second is checked before it is handed out again), and a write transaction
//! is one round trip: `BEGIN`, its statements and `COMMIT` pipelined, a claim among them guarded
//! so that its failure aborts the transaction (see [`Postgres::write`]). A token issue is one
//! round trip for its transaction instead of one per statement plus three.
//!
//! A transaction abandoned halfway (the client went away while it waited) must not leave its
//! connection in the pool inside an open transaction: [`OpenTransaction`] closes such a
//! connection instead, and PostgreSQL rolls the transaction back.
//!
//! [`Store::fetch_optional`]: super::Store::fetch_optional
//! [`Store::fetch_all`]: super::Store::fetch_all

use std::str::FromStr;

use deadpool_postgres::tokio_postgres::types::{IsNull, ToSql, Type};
use deadpool_postgres::tokio_postgres::{self, NoTls, Statement};
use deadpool_postgres::{ClientWrapper, ManagerConfig, RecyclingMethod};
use tokio_postgres::types::to_sql_checked;

use super::query::{Expect, Read, Record, Step, Value};
use super::{StoreError, PING_WHEN_IDLE_FOR, WAIT_FOR_CONNECTION};

type Pool = deadpool::managed::Pool<Manager>;
type Connection = deadpool::managed::Object<Manager>;

pub struct Postgres {
    pool: Pool,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").field("pool", &self.pool.status()).finish()
    }
}

impl Postgres {
    /// A pool of up to `max_connections` connections to `url`, opened as they are needed.
    pub fn new(url: &str, max_connections: usize) -> Result<Postgres, StoreError> {
        let config = tokio_postgres::Config::from_str(url)?;
        let manager = deadpool_postgres::Manager::from_config(
            config,
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(Manager(manager))
            .max_size(max_connections)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(WAIT_FOR_CONNECTION))
            .create_timeout(Some(WAIT_FOR_CONNECTION))
            .recycle_timeout(Some(WAIT_FOR_CONNECTION))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Postgres { pool })
    }

    pub async fn fetch_optional<T: Record>(&self, sql: &str, params: &[Value]) -> Result<Option<T>, StoreError> {
        let connection = self.connection().await?;
        let statement = prepare(&connection, sql, params).await?;
        let row = connection.query_opt(&statement, &as_params(params)).await?;
        Ok(row.as_ref().map(T::from_postgres).transpose()?)
    }

    /// Both reads on one connection, sent before either answer is awaited.
    pub async fn fetch_optional_pair<A: Record, B: Record>(
        &self,
        first: &Read<A>,
        second: &Read<B>,
    ) -> Result<(Option<A>, Option<B>), StoreError> {
        let connection = self.connection().await?;
        let statement_a = prepare(&connection, &first.sql, &first.params).await?;
        let statement_b = prepare(&connection, &second.sql, &second.params).await?;
        let (params_a, params_b) = (as_params(&first.params), as_params(&second.params));
        let (a, b) =
            tokio::join!(connection.query_opt(&statement_a, &params_a), connection.query_opt(&statement_b, &params_b));
        Ok((a?.as_ref().map(A::from_postgres).transpose()?, b?.as_ref().map(B::from_postgres).transpose()?))
    }

    pub async fn fetch_all<T: Record>(&self, sql: &str, params: &[Value]) -> Result<Vec<T>, StoreError> {
        let connection = self.connection().await?;
        let statement = prepare(&connection, sql, params).await?;
        let rows = connection.query(&statement, &as_params(params)).await?;
        Ok(rows.iter().map(T::from_postgres).collect::<Result<_, _>>()?)
    }

    /// Runs `steps` as one transaction: the rows they changed, or `None` if a step's
    /// [`Expect::OneRow`] guard failed and the transaction was rolled back.
    ///
    /// `BEGIN`, every step and `COMMIT` travel in one round trip. A claim is sent wrapped in
    /// `tessera_claimed` (migration 0010), which raises when it changed no row: the error aborts
    /// the transaction, PostgreSQL refuses the statements behind it, and the `COMMIT` rolls back.
    pub async fn write(&self, steps: &[Step]) -> Result<Option<u64>, StoreError> {
        let connection = self.connection().await?;
        let mut statements = Vec::with_capacity(steps.len());
        for step in steps {
            let statement = match step.expect {
                Expect::Anything => prepare(&connection, &step.sql, &step.params).await?,
                Expect::OneRow => prepare(&connection, &guarded_claim(&step.sql), &step.params).await?,
            };
            statements.push(statement);
        }
        let begin = connection.prepare_cached("BEGIN").await?;
        let commit = connection.prepare_cached("COMMIT").await?;

        let transaction = OpenTransaction(Some(connection));
        let client = transaction.client()?;
        let params: Vec<_> = steps.iter().map(|s| as_params(&s.params)).collect();
        let mut requests = Vec::with_capacity(steps.len() + 2);
        requests.push(client.execute(&begin, &[]));
        for (statement, params) in statements.iter().zip(&params) {
            requests.push(client.execute(statement, params));
        }
        requests.push(client.execute(&commit, &[]));
        // Pipelined: each request is sent when first polled, in this order, before any answer.
        let mut answers = futures_util::future::join_all(requests).await.into_iter();
        let began = answers.next().unwrap_or(Ok(0));
        let mut changed = 0;
        let mut outcome = began.map(|_| Some(0)).map_err(StoreError::from);
        for answer in answers.by_ref().take(steps.len()) {
            match (answer, &outcome) {
                (Ok(rows), Ok(Some(_))) => changed += rows,
                // Every statement behind a failed one is refused; the first failure tells why.
                (_, Ok(None) | Err(_)) => {}
                (Err(e), Ok(Some(_))) if e.code().is_some_and(|c| c.code() == CLAIM_REFUSED) => outcome = Ok(None),
                (Err(e), Ok(Some(_))) => outcome = Err(e.into()),
            }
        }
        // The answer to the COMMIT: it committed, or (after a failure) rolled back.
        let committed = answers.next().unwrap_or(Ok(0));
        transaction.ended(match outcome {
            Ok(Some(_)) => committed.map(|_| Some(changed)).map_err(Into::into),
            refused_or_failed => refused_or_failed,
        })
    }

    async fn connection(&self) -> Result<Connection, StoreError> {
        Ok(self.pool.get().await?)
    }

    pub fn close(&self) {
        self.pool.close();
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
    fn ended<T>(mut self, outcome: Result<T, StoreError>) -> Result<T, StoreError> {
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

/// A claim (an `UPDATE` or `INSERT` that must change exactly one row) as a statement that fails
/// unless it did.
fn guarded_claim(sql: &str) -> String {
    debug_assert!(!sql.contains("RETURNING"), "a claim returns nothing of its own");
    format!("WITH claimed AS ({sql} RETURNING 1) SELECT tessera_claimed(count(*)) FROM claimed")
}

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
