//! A group commit's write transactions as few statements: transactions with the same steps go
//! together as one statement, each step of each a data-modifying `WITH` query.
//!
//! Per statement, a PostgreSQL backend starts and ends an executor, and answers over its socket,
//! which on a loopback connection runs the whole TCP path of the reply (a quarter of a backend's
//! CPU with a statement per step). Together, transactions pay that once per batch.
//!
//! PostgreSQL runs the queries of one statement on one snapshot: none sees the rows another
//! changed, and of two that update one row only one takes effect. That is why a transaction's
//! steps must not depend on each other ([`Store::write_all`](crate::store::Store::write_all)),
//! and why a claim that another transaction in the batch won is refused by its guard, as if it
//! had come second.

use std::ops::Range;

use crate::store::query::{Expect, Step, Value};

/// One statement of a group commit: the transactions at `jobs` (places in the group).
#[derive(Debug)]
pub struct Batch {
    pub sql: String,
    pub params: Vec<Value>,
    pub jobs: Range<usize>,
}

/// Whether two transactions have the same steps, and so may share a statement.
pub fn same_kind(a: &[Step], b: &[Step]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.sql == b.sql && a.expect == b.expect)
}

/// Reorders `group` so that transactions of one kind stand together, kinds in the order they
/// first came and each kind's in the order they came.
pub fn kinds_together<T>(group: &mut Vec<T>, steps: impl Fn(&T) -> &[Step]) {
    let kinds: Vec<usize> = (0..group.len())
        .map(|i| (0..=i).find(|&j| same_kind(steps(&group[j]), steps(&group[i]))).unwrap_or(i))
        .collect();
    let mut keyed: Vec<(usize, T)> = kinds.into_iter().zip(group.drain(..)).collect();
    keyed.sort_by_key(|(kind, _)| *kind);
    group.extend(keyed.into_iter().map(|(_, item)| item));
}

/// The statements for `group`, whose transactions of the same kind stand together. Each run of
/// one kind goes in batches of a power of two transactions, largest first, so that a connection
/// prepares at most seven statements per kind (group commits carry at most 64).
pub fn batches(group: &[&[Step]]) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut start = 0;
    while start < group.len() {
        let run = group[start..].iter().take_while(|steps| same_kind(steps, group[start])).count();
        let mut left = run;
        while left > 0 {
            let size = 1 << left.ilog2();
            let jobs = start..start + size;
            batches.push(batch(&group[jobs.clone()], jobs));
            start += size;
            left -= size;
        }
    }
    batches
}

/// `WITH j0s0 AS (... RETURNING 1), j0s1 AS (...), j1s0 AS (...), ... SELECT <rows j0>, <rows j1>`:
/// one row answering, for each transaction, how many rows its steps changed. A claim's count
/// goes through `tessera_claimed` (migration 0011), which raises, naming the transaction's
/// place in the batch, unless it is one.
fn batch(transactions: &[&[Step]], jobs: Range<usize>) -> Batch {
    let mut sql = String::from("WITH ");
    let mut params = Vec::new();
    let mut answers = Vec::with_capacity(transactions.len());
    for (place, steps) in transactions.iter().enumerate() {
        let mut changed = Vec::with_capacity(steps.len());
        for (n, step) in steps.iter().enumerate() {
            debug_assert!(!step.sql.contains("RETURNING"), "a step returns nothing of its own");
            if place > 0 || n > 0 {
                sql.push_str(", ");
            }
            let name = format!("j{place}s{n}");
            sql.push_str(&format!("{name} AS ({} RETURNING 1)", renumbered(&step.sql, params.len())));
            params.extend(step.params.iter().cloned());
            changed.push(match step.expect {
                Expect::Anything => format!("(SELECT count(*) FROM {name})"),
                Expect::OneRow => format!("tessera_claimed((SELECT count(*) FROM {name}), {place})"),
            });
        }
        answers.push(changed.join(" + "));
    }
    sql.push_str(" SELECT ");
    sql.push_str(&answers.join(", "));
    Batch { sql, params, jobs }
}

/// `sql` with each parameter `$n` renamed `$(n + offset)`. Step SQL has no other `$`: no string
/// literals and no dollar quoting.
pub fn renumbered(sql: &str, offset: usize) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + offset).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values;

    fn claim() -> Step {
        Step::claim("UPDATE codes SET used_at = $1 WHERE key = $2 AND used_at IS NULL", values![7, "k"])
    }

    fn insert() -> Step {
        Step::new("INSERT INTO tokens (key, at) VALUES ($1, $2)", values!["t", 7])
    }

    #[test]
    fn parameters_are_renumbered_past_those_before_them() {
        assert_eq!(renumbered("a = $1 AND b = $2 OR c <= $10", 3), "a = $4 AND b = $5 OR c <= $13");
        assert_eq!(renumbered("a = $1", 0), "a = $1");
    }

    #[test]
    fn transactions_of_one_kind_share_statements_in_powers_of_two() {
        let exchange = vec![claim(), insert()];
        let other = vec![insert()];
        let group: Vec<&[Step]> = [&exchange; 7].into_iter().map(Vec::as_slice).chain([other.as_slice()]).collect();
        let jobs: Vec<_> = batches(&group).into_iter().map(|b| b.jobs).collect();
        assert_eq!(jobs, [0..4, 4..6, 6..7, 7..8]);
    }

    #[test]
    fn kinds_stand_together_in_the_order_they_came() {
        let (exchange, other) = (vec![claim(), insert()], vec![insert()]);
        let mut group = vec![(1, &exchange), (2, &other), (3, &exchange), (4, &other), (5, &exchange)];
        kinds_together(&mut group, |(_, steps)| steps.as_slice());
        assert_eq!(group.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 3, 5, 2, 4]);
    }

    #[test]
    fn a_batch_answers_each_transactions_changed_rows_and_guards_each_claim_with_its_place() {
        let exchange = vec![claim(), insert()];
        let batch = batch(&[&exchange, &exchange], 4..6);
        assert_eq!(
            batch.sql,
            "WITH j0s0 AS (UPDATE codes SET used_at = $1 WHERE key = $2 AND used_at IS NULL RETURNING 1), \
             j0s1 AS (INSERT INTO tokens (key, at) VALUES ($3, $4) RETURNING 1), \
             j1s0 AS (UPDATE codes SET used_at = $5 WHERE key = $6 AND used_at IS NULL RETURNING 1), \
             j1s1 AS (INSERT INTO tokens (key, at) VALUES ($7, $8) RETURNING 1) \
             SELECT tessera_claimed((SELECT count(*) FROM j0s0), 0) + (SELECT count(*) FROM j0s1), \
             tessera_claimed((SELECT count(*) FROM j1s0), 1) + (SELECT count(*) FROM j1s1)"
        );
        assert_eq!(batch.params, [values![7, "k", "t", 7], values![7, "k", "t", 7]].concat());
        assert_eq!(batch.jobs, 4..6);
    }
}
