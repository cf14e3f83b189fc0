//! Single-row reads of concurrent requests, shared: those waiting when a round of reads begins go
//! to the database together, and reads of the same statement as one statement
//! ([`batched::lateral`]), one executor run for all of them.
//!
//! A lookup by key costs a PostgreSQL backend far more in starting and ending its executor and
//! answering than in finding the row: sixteen lookups as one statement cost it about a seventh of
//! what sixteen statements do. A read that arrives while no round is under way goes at once, as
//! its own statement, so a lone request waits for nothing.

use std::ops::Range;
use std::sync::Arc;

use deadpool_postgres::tokio_postgres::{Row, Statement};
use tokio::sync::{mpsc, oneshot, Mutex};

use super::{as_params, batched, fits, prepare, SharedReaders};
use crate::store::query::Value;
use crate::store::StoreError;

/// How many rounds of reads may be under way at once: while one is answered, the next is sent,
/// so that the backend finds it waiting.
const ROUNDS_IN_FLIGHT: usize = 4;
/// The most reads one round carries.
const MOST_PER_ROUND: usize = 64;

/// A row a read found, and the column its own columns begin at.
pub struct Found {
    pub row: Row,
    pub first: usize,
}

struct ReadJob {
    sql: String,
    params: Vec<Value>,
    answer: Answer,
}

pub struct SharedReads {
    jobs: mpsc::UnboundedSender<ReadJob>,
}

impl SharedReads {
    /// Must be called within a tokio runtime, on which the rounds run.
    pub fn start(readers: Arc<SharedReaders>) -> SharedReads {
        let (jobs, waiting) = mpsc::unbounded_channel();
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..ROUNDS_IN_FLIGHT {
            tokio::spawn(read_rounds(readers.clone(), waiting.clone()));
        }
        SharedReads { jobs }
    }

    /// The one row `sql` finds with `params`, if any; more than one is an error.
    pub async fn read(&self, sql: String, params: Vec<Value>) -> Result<Option<Found>, StoreError> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(ReadJob { sql, params, answer })
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        answered.await.map_err(|_| StoreError::Unavailable("the store closed during the read".into()))?
    }
}

/// One of the [`ROUNDS_IN_FLIGHT`] loops: takes every read waiting (at least one, at most
/// [`MOST_PER_ROUND`]) and answers them, until the store is dropped.
async fn read_rounds(readers: Arc<SharedReaders>, waiting: Arc<Mutex<mpsc::UnboundedReceiver<ReadJob>>>) {
    let mut round = Vec::with_capacity(MOST_PER_ROUND);
    loop {
        if waiting.lock().await.recv_many(&mut round, MOST_PER_ROUND).await == 0 {
            return;
        }
        round.retain(|job| !job.answer.is_closed());
        batched::kinds_together(&mut round, |a, b| a.sql == b.sql);
        let left = read_round(&readers, std::mem::take(&mut round), true).await;
        // Reads whose shared statement failed run again alone, each for its own answer.
        if !left.is_empty() {
            read_round(&readers, left, false).await;
        }
    }
}

/// One statement of a round: the reads at `jobs`, shared when `shared`.
struct Query {
    jobs: Range<usize>,
    shared: bool,
    statement: Statement,
    params: Vec<Value>,
}

type Answer = oneshot::Sender<Result<Option<Found>, StoreError>>;

/// Sends the round's reads, those of one statement together where `together`, pipelined on one
/// connection, and answers them. Returns the reads whose shared statement failed, unanswered.
async fn read_round(readers: &SharedReaders, round: Vec<ReadJob>, together: bool) -> Vec<ReadJob> {
    let (reads, mut answers): (Vec<_>, Vec<_>) =
        round.into_iter().map(|job| ((job.sql, job.params), Some(job.answer))).unzip();
    let connection = match readers.next().await {
        Ok(connection) => connection,
        Err(e) => {
            let reason = e.to_string();
            for answer in answers.into_iter().flatten() {
                let _ = answer.send(Err(StoreError::Unavailable(reason.clone())));
            }
            return Vec::new();
        }
    };

    let mut queries = Vec::new();
    let mut start = 0;
    while start < reads.len() {
        let sql = &reads[start].0;
        let run = if together { reads[start..].iter().take_while(|(other, _)| other == sql).count() } else { 1 };
        for jobs in batched::in_powers_of_two(start, run) {
            let params: Vec<Vec<Value>> = reads[jobs.clone()].iter().map(|(_, params)| params.clone()).collect();
            match batched::lateral(sql, &params).filter(|_| jobs.len() > 1) {
                Some((shared, params)) => queries.push((jobs, true, shared, params)),
                None => queries
                    .extend(jobs.zip(params).map(|(place, params)| (place..place + 1, false, sql.clone(), params))),
            }
        }
        start += run;
    }

    let mut left = Vec::new();
    let mut prepared = Vec::with_capacity(queries.len());
    for (jobs, shared, sql, params) in queries {
        match prepare(&connection, &sql, &params).await {
            Ok(statement) if fits(&statement, &params) => prepared.push(Query { jobs, shared, statement, params }),
            Ok(_) if !shared => answer(&mut answers, jobs.start, Err(StoreError::Mismatch(sql))),
            Err(e) if !shared => answer(&mut answers, jobs.start, Err(e)),
            _ => left.push(jobs),
        }
    }
    let params: Vec<_> = prepared.iter().map(|query| as_params(&query.params)).collect();
    // Pipelined: each query is sent when first polled, in this order, before any answer.
    let results = futures_util::future::join_all(
        prepared.iter().zip(&params).map(|(query, params)| connection.query(&query.statement, params)),
    )
    .await;
    for (query, result) in prepared.iter().zip(results) {
        match (result, query.shared) {
            (Ok(rows), false) => answer(&mut answers, query.jobs.start, one_row(rows, 0)),
            (Err(e), false) => answer(&mut answers, query.jobs.start, Err(e.into())),
            (Ok(rows), true) => answer_shared(&mut answers, query.jobs.clone(), rows),
            (Err(_), true) => left.push(query.jobs.clone()),
        }
    }
    reads
        .into_iter()
        .zip(answers)
        .enumerate()
        .filter(|(place, _)| left.iter().any(|jobs| jobs.contains(place)))
        .filter_map(|(_, ((sql, params), answer))| answer.map(|answer| ReadJob { sql, params, answer }))
        .collect()
}

fn answer(answers: &mut [Option<Answer>], place: usize, answer: Result<Option<Found>, StoreError>) {
    if let Some(sender) = answers[place].take() {
        let _ = sender.send(answer);
    }
}

/// Answers the reads at `jobs` from the rows of their shared statement, each row beginning with
/// the place of the read it was found for.
fn answer_shared(answers: &mut [Option<Answer>], jobs: Range<usize>, rows: Vec<Row>) {
    let mut found: Vec<Vec<Row>> = jobs.clone().map(|_| Vec::new()).collect();
    for row in rows {
        match row.try_get::<_, i32>(0).ok().and_then(|place| usize::try_from(place).ok()) {
            Some(place) if place < found.len() => found[place].push(row),
            _ => {}
        }
    }
    for (place, rows) in jobs.zip(found) {
        answer(answers, place, one_row(rows, 1));
    }
}

/// The row a single-row read found, its own columns from `first` on; more than one is an error.
fn one_row(rows: Vec<Row>, first: usize) -> Result<Option<Found>, StoreError> {
    let mut rows = rows.into_iter();
    match (rows.next(), rows.next()) {
        (None, _) => Ok(None),
        (Some(row), None) => Ok(Some(Found { row, first })),
        (Some(_), Some(_)) => Err(StoreError::NotOneRow),
    }
}
