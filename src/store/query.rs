//! Queries that run on either engine from one SQL text: parameters as [`Value`]s, rows as
//! [`Record`]s, and write transactions as lists of [`Step`]s, run by each engine's fast path
//! ([`super::embedded`] for SQLite, [`super::postgres`] for PostgreSQL).

use deadpool_postgres::tokio_postgres;

use super::{FastPath, Store, StoreError};

/// A statement parameter. SQL text uses `$1`, `$2`, ... on both engines (SQLite reads `$1` as a
/// named parameter numbered by first appearance, which is its position).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Int(i64),
    /// NULL in a text column.
    Null,
    /// NULL in an integer column: PostgreSQL types every parameter, and a text NULL bound to an
    /// integer column is an error there.
    NullInt,
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::Text(text)
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Value {
        Value::Int(number)
    }
}

impl From<Option<String>> for Value {
    fn from(text: Option<String>) -> Value {
        text.map_or(Value::Null, Value::Text)
    }
}

impl From<Option<&str>> for Value {
    fn from(text: Option<&str>) -> Value {
        text.map_or(Value::Null, Into::into)
    }
}

impl From<Option<i64>> for Value {
    fn from(number: Option<i64>) -> Value {
        number.map_or(Value::NullInt, Value::Int)
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Value::Int(number) => ToSqlOutput::Borrowed(ValueRef::Integer(*number)),
            Value::Null | Value::NullInt => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

/// `[Value::from(a), Value::from(b)]`, for reads (`&values![a, b]`) and steps.
#[macro_export]
macro_rules! values {
    ($($value:expr),* $(,)?) => { [$($crate::store::query::Value::from($value)),*] };
}

/// What a step of a write transaction must change for the transaction to go ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Anything,
    /// Exactly one row, or the whole transaction is undone: a claim ("mark this code used if
    /// nobody has") that lost a race.
    OneRow,
}

/// One statement of a write transaction.
#[derive(Clone, Debug)]
pub struct Step {
    pub sql: String,
    pub params: Vec<Value>,
    pub expect: Expect,
}

impl Step {
    pub fn new(sql: impl Into<String>, params: impl Into<Vec<Value>>) -> Step {
        Step { sql: sql.into(), params: params.into(), expect: Expect::Anything }
    }

    /// This step must change exactly one row (see [`Expect::OneRow`]).
    pub fn claim(sql: impl Into<String>, params: impl Into<Vec<Value>>) -> Step {
        Step { sql: sql.into(), params: params.into(), expect: Expect::OneRow }
    }
}

/// A single-row read not yet run, so that two of them can go to the database together
/// ([`Store::fetch_optional_pair`]).
#[derive(Debug)]
pub struct Read<T> {
    pub sql: std::borrow::Cow<'static, str>,
    pub params: Vec<Value>,
    row: std::marker::PhantomData<fn() -> T>,
}

impl<T: Record> Read<T> {
    pub fn new(sql: impl Into<std::borrow::Cow<'static, str>>, params: impl Into<Vec<Value>>) -> Read<T> {
        Read { sql: sql.into(), params: params.into(), row: std::marker::PhantomData }
    }
}

/// A row type both engines' fast paths can produce, reading its fields by position.
pub trait Record: Send + Sized {
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
    /// The fields from the columns at `first` and after (a PostgreSQL row may carry two
    /// records side by side: see [`Store::fetch_optional_pair`]).
    fn from_postgres(row: &tokio_postgres::Row, first: usize) -> Result<Self, tokio_postgres::Error>;
}

/// Implements [`Record`] by reading the fields from the columns in the order they are listed,
/// which must be the query's column order. Reading by position rather than by name spares a name
/// lookup per field and row (5% of a bearer GET's CPU on SQLite); debug builds (the tests) check
/// that every position holds the column of the field's name.
#[macro_export]
macro_rules! record {
    ($type:ty { $($field:ident),* $(,)? }) => {
        impl $crate::store::query::Record for $type {
            fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                let mut column = 0..;
                Ok(Self {
                    $($field: {
                        let at = column.next().unwrap_or_default();
                        debug_assert_eq!(row.as_ref().column_name(at).ok(), Some(stringify!($field)));
                        row.get(at)?
                    }),*
                })
            }

            fn from_postgres(
                row: &deadpool_postgres::tokio_postgres::Row,
                first: usize,
            ) -> Result<Self, deadpool_postgres::tokio_postgres::Error> {
                let mut column = first..;
                Ok(Self {
                    $($field: {
                        let at = column.next().unwrap_or_default();
                        debug_assert_eq!(row.columns().get(at).map(|c| c.name()), Some(stringify!($field)));
                        row.try_get(at)?
                    }),*
                })
            }
        }
    };
}

impl Store {
    /// The first row of a read, if any.
    pub async fn fetch_optional<T: Record>(&self, sql: &str, params: &[Value]) -> Result<Option<T>, StoreError> {
        match &self.fast {
            FastPath::Embedded(embedded) => Ok(embedded.read(|conn| {
                let mut statement = conn.prepare_cached(sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(params.iter()))?;
                rows.next()?.map(T::from_sqlite).transpose()
            })?),
            FastPath::Postgres(postgres) => postgres.fetch_optional(sql, params).await,
        }
    }

    /// Two reads that do not depend on each other, as one request: on SQLite in one read
    /// transaction (the first statement stays open while the second runs), on PostgreSQL as one
    /// statement. Each read's first column must not be NULL in a row it finds.
    pub async fn fetch_optional_pair<A: Record, B: Record>(
        &self,
        first: &Read<A>,
        second: &Read<B>,
    ) -> Result<(Option<A>, Option<B>), StoreError> {
        match &self.fast {
            FastPath::Embedded(embedded) => Ok(embedded.read(|conn| {
                let mut statement = conn.prepare_cached(&first.sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(first.params.iter()))?;
                let a = rows.next()?.map(A::from_sqlite).transpose()?;
                let mut statement = conn.prepare_cached(&second.sql)?;
                let b = statement
                    .query(rusqlite::params_from_iter(second.params.iter()))?
                    .next()?
                    .map(B::from_sqlite)
                    .transpose()?;
                drop(rows);
                Ok((a, b))
            })?),
            FastPath::Postgres(postgres) => postgres.fetch_optional_pair(first, second).await,
        }
    }

    /// A read whose parameters come from the row another read finds (the caller behind a
    /// credential, then a page of what belongs to the caller's workspace), as one request where
    /// the engine allows: on SQLite in one read transaction (the first statement stays open while
    /// the second runs), so both see one snapshot and take the read locks once; on PostgreSQL one
    /// after the other. `None`, without the second read, when the first finds nothing.
    pub async fn fetch_optional_then_all<A: Record, B: Record>(
        &self,
        first: &Read<A>,
        then: impl FnOnce(&A) -> Read<B>,
    ) -> Result<Option<(A, Vec<B>)>, StoreError> {
        match &self.fast {
            FastPath::Embedded(embedded) => Ok(embedded.read(|conn| {
                let mut statement = conn.prepare_cached(&first.sql)?;
                let mut rows = statement.query(rusqlite::params_from_iter(first.params.iter()))?;
                let Some(a) = rows.next()?.map(A::from_sqlite).transpose()? else {
                    return Ok(None);
                };
                let second = then(&a);
                let mut statement = conn.prepare_cached(&second.sql)?;
                let all = statement
                    .query_map(rusqlite::params_from_iter(second.params.iter()), B::from_sqlite)?
                    .collect::<rusqlite::Result<Vec<B>>>()?;
                drop(rows);
                Ok(Some((a, all)))
            })?),
            FastPath::Postgres(postgres) => {
                let Some(a) = postgres.fetch_optional(&first.sql, &first.params).await? else {
                    return Ok(None);
                };
                let second = then(&a);
                let all = postgres.fetch_all(&second.sql, &second.params).await?;
                Ok(Some((a, all)))
            }
        }
    }

    /// Every row of a read.
    pub async fn fetch_all<T: Record>(&self, sql: &str, params: &[Value]) -> Result<Vec<T>, StoreError> {
        match &self.fast {
            FastPath::Embedded(embedded) => Ok(embedded.read(|conn| {
                let mut statement = conn.prepare_cached(sql)?;
                let rows = statement.query_map(rusqlite::params_from_iter(params.iter()), T::from_sqlite)?;
                rows.collect()
            })?),
            FastPath::Postgres(postgres) => postgres.fetch_all(sql, params).await,
        }
    }

    /// Runs `steps` in one transaction, durably committed before this returns. `Ok(false)`: a
    /// step's [`Expect::OneRow`] guard failed and nothing was changed.
    ///
    /// The steps must not depend on each other: no step may read or change a row another step
    /// writes. PostgreSQL runs them as one statement, together with other transactions of the
    /// same steps, all on one snapshot (see `postgres::batched`); where two of those transactions
    /// update one row, only one update takes effect, so a step that must not be lost so must be a
    /// claim, whose guard then refuses the transaction that came second.
    pub async fn write_all(&self, steps: Vec<Step>) -> Result<bool, StoreError> {
        Ok(self.write(steps).await?.is_some())
    }

    /// Runs `steps` (which have no guards) in one transaction: the number of rows they changed.
    pub async fn write_counting(&self, steps: Vec<Step>) -> Result<u64, StoreError> {
        Ok(self.write(steps).await?.unwrap_or(0))
    }

    /// Runs `steps` (which have no guards) in a transaction beside the requests' writes rather
    /// than among them: the number of rows they changed. For the janitor, whose deletions in a
    /// PostgreSQL group commit would hold up every token request of the group while they ran.
    /// SQLite has one writer, so there they join the group commits as any write does.
    pub async fn write_apart(&self, steps: Vec<Step>) -> Result<u64, StoreError> {
        match &self.fast {
            FastPath::Embedded(_) => self.write_counting(steps).await,
            FastPath::Postgres(_) => {
                let mut tx = self.begin().await?;
                let mut changed = 0;
                for step in &steps {
                    changed += step.run(&mut tx).await?;
                }
                tx.commit().await?;
                Ok(changed)
            }
        }
    }

    async fn write(&self, steps: Vec<Step>) -> Result<Option<u64>, StoreError> {
        match &self.fast {
            FastPath::Embedded(embedded) => Ok(embedded.write(steps).await?),
            FastPath::Postgres(postgres) => postgres.write(steps).await,
        }
    }
}

impl Step {
    /// Runs this step alone inside a transaction the caller holds: the number of rows it changed.
    /// Its guard is the caller's to check.
    pub async fn run(&self, tx: &mut super::Tx) -> Result<u64, StoreError> {
        let mut query = sqlx::query(&self.sql);
        for param in &self.params {
            query = match param {
                Value::Text(text) => query.bind(text.as_str()),
                Value::Int(number) => query.bind(*number),
                Value::Null => query.bind(Option::<String>::None),
                Value::NullInt => query.bind(Option::<i64>::None),
            };
        }
        Ok(query.execute(&mut **tx).await?.rows_affected())
    }
}
