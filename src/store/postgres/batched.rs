//! A group commit's write transactions as few statements: transactions with the same steps go
//! together as one statement of data-modifying `WITH` queries. A step of a plain form (an
//! `INSERT` of one row, an `UPDATE` of a table by its parameters) is one query for all of them,
//! any other step one query per transaction.
//!
//! Per statement, a PostgreSQL backend starts and ends an executor, and answers over its socket,
//! which on a loopback connection runs the whole TCP path of the reply (a quarter of a backend's
//! CPU with a statement per step). Together, transactions pay that once per batch; per query, it
//! sets up the query's plan nodes, which a step run once for every transaction pays once.
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

/// Reorders `group` so that items `same` holds for stand together, kinds in the order they first
/// came and each kind's in the order they came.
pub fn kinds_together<T>(group: &mut Vec<T>, same: impl Fn(&T, &T) -> bool) {
    let kinds: Vec<usize> =
        (0..group.len()).map(|i| (0..=i).find(|&j| same(&group[j], &group[i])).unwrap_or(i)).collect();
    let mut keyed: Vec<(usize, T)> = kinds.into_iter().zip(group.drain(..)).collect();
    keyed.sort_by_key(|(kind, _)| *kind);
    group.extend(keyed.into_iter().map(|(_, item)| item));
}

/// The `count` places from `start` on in runs of a power of two, largest first: a run of one kind
/// of statement shared this way makes a connection prepare at most seven statements of that kind
/// (a group or round carries at most 64).
pub fn in_powers_of_two(start: usize, count: usize) -> impl Iterator<Item = Range<usize>> {
    let mut at = start;
    let end = start + count;
    std::iter::from_fn(move || {
        let left = end - at;
        (left > 0).then(|| {
            let size = 1 << left.ilog2();
            at += size;
            at - size..at
        })
    })
}

/// The statements for `group`, whose transactions of the same kind stand together, each run of
/// one kind in batches [`in_powers_of_two`].
pub fn batches(group: &[&[Step]]) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut start = 0;
    while start < group.len() {
        let run = group[start..].iter().take_while(|steps| same_kind(steps, group[start])).count();
        batches.extend(in_powers_of_two(start, run).map(|jobs| batch(&group[jobs.clone()], jobs)));
        start += run;
    }
    batches
}

/// The statement for one batch: each step once for every transaction where its SQL allows
/// ([`Together`]), a data-modifying `WITH` query per step and transaction where it does not.
fn batch(transactions: &[&[Step]], jobs: Range<usize>) -> Batch {
    let shared: Option<Vec<Together>> = transactions[0].iter().map(|step| Together::of(&step.sql)).collect();
    match shared {
        Some(steps) => together(&steps, transactions, jobs),
        None => one_by_one(transactions, jobs),
    }
}

/// `WITH j0s0 AS (... RETURNING 1), j0s1 AS (...), j1s0 AS (...), ... SELECT unnest(ARRAY[<rows
/// j0>, <rows j1>])`: a row for each transaction, in order, answering how many rows its steps
/// changed. A claim's count goes through `tessera_claimed` (migration 0011), which raises, naming
/// the transaction's place in the batch, unless it is one.
fn one_by_one(transactions: &[&[Step]], jobs: Range<usize>) -> Batch {
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
    sql.push_str(" SELECT unnest(ARRAY[");
    sql.push_str(&answers.join(", "));
    sql.push_str("])");
    Batch { sql, params, jobs }
}

/// A step whose SQL can run once for the rows of every transaction in a batch: one executor node
/// per step rather than per step and transaction, which was most of what a backend spent on a
/// batch of token requests beyond the rows themselves.
#[derive(Debug, PartialEq)]
enum Together {
    /// `INSERT INTO t (columns) VALUES (row)`: every transaction's row in one `VALUES` list. Each
    /// inserts its one row, or the statement fails.
    Insert { head: String, row: String },
    /// `UPDATE t SET assignments WHERE filter`: every transaction's parameters as a row of a
    /// `VALUES` list the table is joined to, `"$0"` its place and `"$n"` its parameter `$n`.
    /// Each row updated answers the place it was updated for.
    Update { table: String, assignments: String, filter: String },
}

impl Together {
    /// `sql` as one of the plain forms above, or `None`: anything that might change how many rows
    /// a transaction's step touches, or how to tell them apart (a subquery, `FROM`, `RETURNING`,
    /// `ON CONFLICT`, quoting, comments), keeps the step one query per transaction.
    fn of(sql: &str) -> Option<Together> {
        let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let upper = sql.to_ascii_uppercase();
        let unsafe_here = ["SELECT", "FROM", "RETURNING", "CONFLICT", "WITH", "'", "\"", ";", "--", "/*", "$0"];
        if unsafe_here.iter().any(|word| upper.contains(word)) {
            return None;
        }
        let is_name = |name: &str| !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if let Some(rest) = sql.strip_prefix("INSERT INTO ") {
            let (head, row) = rest.split_once(" VALUES ")?;
            let closes_at_end = row.starts_with('(') && closing_paren(row) == Some(row.len() - 1);
            return closes_at_end
                .then(|| Together::Insert { head: format!("INSERT INTO {head}"), row: row.to_owned() });
        }
        let (table, rest) = sql.strip_prefix("UPDATE ")?.split_once(" SET ")?;
        let (assignments, filter) = rest.split_once(" WHERE ")?;
        is_name(table).then(|| Together::Update {
            table: table.to_owned(),
            assignments: assignments.to_owned(),
            filter: filter.to_owned(),
        })
    }
}

/// Where the parenthesis `text` opens with closes.
fn closing_paren(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(at);
                }
            }
            _ => {}
        }
    }
    None
}

/// `WITH s0 AS (UPDATE t SET .. FROM (VALUES (0, $1, $2), (1, $3, $4)) AS s0v("$0", "$1", "$2")
/// WHERE .. RETURNING s0v."$0"), s1 AS (INSERT INTO u (..) VALUES ($5, ..), ($7, ..)) SELECT ..`:
/// a step of every transaction at once, then a row for each transaction in order, counting the
/// rows its updates answered for its place plus one per insert. A claim's count goes through
/// `tessera_claimed`, as in [`one_by_one`].
fn together(steps: &[Together], transactions: &[&[Step]], jobs: Range<usize>) -> Batch {
    let mut sql = String::from("WITH ");
    let mut params = Vec::new();
    let mut counts = Vec::new();
    let mut updated = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        if n > 0 {
            sql.push_str(", ");
        }
        match step {
            Together::Insert { head, row } => {
                let rows: Vec<String> = transactions
                    .iter()
                    .map(|transaction| {
                        let offset = params.len();
                        params.extend(transaction[n].params.iter().cloned());
                        renumbered(row, offset)
                    })
                    .collect();
                sql.push_str(&format!("s{n} AS ({head} VALUES {})", rows.join(", ")));
                counts.push("1".to_owned());
            }
            Together::Update { table, assignments, filter } => {
                let (rows, columns) =
                    parameter_rows(transactions.iter().map(|transaction| &transaction[n].params), &mut params);
                let from_row = |sql: &str| parameters_named(sql, &format!("s{n}v"));
                sql.push_str(&format!(
                    "s{n} AS (UPDATE {table} SET {} FROM (VALUES {rows}) AS s{n}v({columns}) WHERE {} RETURNING s{n}v.\"$0\")",
                    from_row(assignments),
                    from_row(filter),
                ));
                let count = format!("count(*) FILTER (WHERE changed.step = {n})");
                counts.push(match transactions[0][n].expect {
                    Expect::Anything => count,
                    Expect::OneRow => format!("tessera_claimed({count}, batch.place)"),
                });
                updated.push(format!("SELECT {n} AS step, \"$0\" AS place FROM s{n}"));
            }
        }
    }
    let last = transactions.len() - 1;
    let answer = counts.join(" + ");
    if updated.is_empty() {
        sql.push_str(&format!(" SELECT ({answer})::bigint FROM generate_series(0, {last}) AS batch(place)"));
    } else {
        sql.push_str(&format!(
            " SELECT ({answer})::bigint FROM generate_series(0, {last}) AS batch(place) \
             LEFT JOIN ({}) AS changed ON changed.place = batch.place GROUP BY batch.place ORDER BY batch.place",
            updated.join(" UNION ALL ")
        ));
    }
    Batch { sql, params, jobs }
}

/// `SELECT batch."$0", found.* FROM (VALUES (0, $1, $2), (1, $3, $4)) AS batch("$0", "$1", "$2")
/// CROSS JOIN LATERAL (sql, its `$n` read from `batch."$n"`) AS found`: the read `sql` for each of
/// `reads` (its parameters) at once, each row found beginning with the place of the read it was
/// found for. `None` where the text of `sql` could change what `batch` or `"$n"` name, or the
/// reads differ in how many parameters they give.
pub fn lateral(sql: &str, reads: &[Vec<Value>]) -> Option<(String, Vec<Value>)> {
    let lower = sql.to_ascii_lowercase();
    if ["'", "\"", ";", "--", "/*", "$0", "batch"].iter().any(|word| lower.contains(word))
        || reads.iter().any(|read| read.len() != reads[0].len())
    {
        return None;
    }
    let mut params = Vec::with_capacity(reads.len() * reads[0].len());
    let (rows, columns) = parameter_rows(reads.iter(), &mut params);
    let sql = format!(
        "SELECT batch.\"$0\", found.* FROM (VALUES {rows}) AS batch({columns}) CROSS JOIN LATERAL ({}) AS found",
        parameters_named(sql, "batch")
    );
    Some((sql, params))
}

/// `(0, $1, $2), (1, $3, $4)` and `"$0", "$1", "$2"`: a `VALUES` row for each of `rows`
/// (parameters, as many in each), its place then its parameters, added to `params`; and the
/// names of its columns.
fn parameter_rows<'a>(rows: impl Iterator<Item = &'a Vec<Value>>, params: &mut Vec<Value>) -> (String, String) {
    let mut width = 0;
    let rows: Vec<String> = rows
        .enumerate()
        .map(|(place, row)| {
            width = row.len();
            let offset = params.len();
            params.extend(row.iter().cloned());
            let values: String = (1..=width).map(|p| format!(", ${}", p + offset)).collect();
            format!("({place}{values})")
        })
        .collect();
    let columns: String = (1..=width).map(|p| format!(", \"${p}\"")).collect();
    (rows.join(", "), format!("\"$0\"{columns}"))
}

/// `sql` with each parameter `$n` replaced by the column `"$n"` of `row`.
fn parameters_named(sql: &str, row: &str) -> String {
    with_parameters(sql, |n| format!("{row}.\"${n}\""))
}

/// `sql` with each parameter `$n` renamed `$(n + offset)`.
pub fn renumbered(sql: &str, offset: usize) -> String {
    with_parameters(sql, |n| format!("${}", n + offset))
}

/// `sql` with each parameter `$n` written as `name(n)`. Step SQL has no other `$`: no string
/// literals and no dollar quoting.
fn with_parameters(sql: &str, name: impl Fn(usize) -> String) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        let digits = rest[at + 1..].find(|c: char| !c.is_ascii_digit()).map_or(rest.len(), |end| at + 1 + end);
        match rest[at + 1..digits].parse::<usize>() {
            Ok(n) => {
                out.push_str(&rest[..at]);
                out.push_str(&name(n));
            }
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
    fn places_go_in_runs_of_a_power_of_two_largest_first() {
        assert_eq!(in_powers_of_two(3, 13).collect::<Vec<_>>(), [3..11, 11..15, 15..16]);
        assert_eq!(in_powers_of_two(5, 64).collect::<Vec<_>>(), vec![5..69]);
        assert_eq!(in_powers_of_two(2, 0).count(), 0);
    }

    #[test]
    fn kinds_stand_together_in_the_order_they_came() {
        let (exchange, other) = (vec![claim(), insert()], vec![insert()]);
        let mut group = vec![(1, &exchange), (2, &other), (3, &exchange), (4, &other), (5, &exchange)];
        kinds_together(&mut group, |(_, a), (_, b)| same_kind(a, b));
        assert_eq!(group.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [1, 3, 5, 2, 4]);
    }

    #[test]
    fn steps_of_plain_forms_run_once_for_every_transaction() {
        let touch = Step::new("UPDATE grants SET seen = $1 WHERE id = $2", values![7, "g"]);
        let exchange = vec![claim(), insert(), touch];
        let batch = batch(&[&exchange, &exchange], 4..6);
        assert_eq!(
            batch.sql,
            "WITH s0 AS (UPDATE codes SET used_at = s0v.\"$1\" FROM (VALUES (0, $1, $2), (1, $3, $4)) \
             AS s0v(\"$0\", \"$1\", \"$2\") WHERE key = s0v.\"$2\" AND used_at IS NULL RETURNING s0v.\"$0\"), \
             s1 AS (INSERT INTO tokens (key, at) VALUES ($5, $6), ($7, $8)), \
             s2 AS (UPDATE grants SET seen = s2v.\"$1\" FROM (VALUES (0, $9, $10), (1, $11, $12)) \
             AS s2v(\"$0\", \"$1\", \"$2\") WHERE id = s2v.\"$2\" RETURNING s2v.\"$0\") \
             SELECT (tessera_claimed(count(*) FILTER (WHERE changed.step = 0), batch.place) + 1 \
             + count(*) FILTER (WHERE changed.step = 2))::bigint \
             FROM generate_series(0, 1) AS batch(place) \
             LEFT JOIN (SELECT 0 AS step, \"$0\" AS place FROM s0 UNION ALL SELECT 2 AS step, \"$0\" AS place FROM s2) \
             AS changed ON changed.place = batch.place GROUP BY batch.place ORDER BY batch.place"
        );
        let one = [values![7, "k"], values!["t", 7], values![7, "g"]].concat();
        let two =
            [values![7, "k"], values![7, "k"], values!["t", 7], values!["t", 7], values![7, "g"], values![7, "g"]];
        assert_eq!(batch.params, two.concat());
        assert_eq!(batch.params.len(), 2 * one.len());
        assert_eq!(batch.jobs, 4..6);
    }

    #[test]
    fn inserts_alone_answer_one_row_each() {
        let batch = batch(&[&[insert()], &[insert()]], 0..2);
        assert_eq!(
            batch.sql,
            "WITH s0 AS (INSERT INTO tokens (key, at) VALUES ($1, $2), ($3, $4)) \
             SELECT (1)::bigint FROM generate_series(0, 1) AS batch(place)"
        );
    }

    #[test]
    fn only_plain_forms_run_together() {
        let plain = [
            "INSERT INTO t (a, b)\n   VALUES ($1, lower($2))",
            "UPDATE t SET a = $1 WHERE b = $2 AND (c IS NULL OR c <= $3)",
        ];
        for sql in plain {
            assert!(Together::of(sql).is_some(), "{sql}");
        }
        let not_plain = [
            "INSERT INTO t (a) VALUES ($1) ON CONFLICT (a) DO NOTHING",
            "INSERT INTO t (a) VALUES ($1), ($2)",
            "INSERT INTO t (a) SELECT a FROM u",
            "INSERT INTO t (a) VALUES ('x')",
            "UPDATE t SET a = 1",
            "UPDATE t SET a = $1 WHERE b IN (SELECT b FROM u)",
            "UPDATE t SET a = $1 FROM u WHERE t.b = u.b",
            "UPDATE t AS x SET a = $1 WHERE b = $2",
            "UPDATE t SET a = $1 WHERE b = $2 RETURNING a",
            "DELETE FROM t WHERE a = $1",
            "UPDATE t SET a = $1 WHERE b = $0",
        ];
        for sql in not_plain {
            assert_eq!(Together::of(sql), None, "{sql}");
        }
    }

    #[test]
    fn reads_of_one_statement_share_it_each_row_answering_its_place() {
        let read = "SELECT a FROM t JOIN u ON u.id = t.u WHERE t.key = $1 AND t.at > $2";
        let (sql, params) = lateral(read, &[values!["k", 1].to_vec(), values!["l", 2].to_vec()]).expect("shareable");
        assert_eq!(
            sql,
            "SELECT batch.\"$0\", found.* FROM (VALUES (0, $1, $2), (1, $3, $4)) AS batch(\"$0\", \"$1\", \"$2\") \
             CROSS JOIN LATERAL (SELECT a FROM t JOIN u ON u.id = t.u WHERE t.key = batch.\"$1\" AND t.at > batch.\"$2\") AS found"
        );
        assert_eq!(params, values!["k", 1, "l", 2]);
        for unshareable in ["SELECT a FROM t WHERE b = 'x' AND c = $1", "SELECT a FROM batches WHERE c = $1"] {
            assert!(lateral(unshareable, &[values![1].to_vec(), values![2].to_vec()]).is_none(), "{unshareable}");
        }
    }

    #[test]
    fn steps_of_other_forms_run_once_per_transaction() {
        let other =
            vec![claim(), Step::new("INSERT INTO tokens (key) VALUES ($1) ON CONFLICT DO NOTHING", values!["t"])];
        let batch = batch(&[&other, &other], 4..6);
        assert_eq!(
            batch.sql,
            "WITH j0s0 AS (UPDATE codes SET used_at = $1 WHERE key = $2 AND used_at IS NULL RETURNING 1), \
             j0s1 AS (INSERT INTO tokens (key) VALUES ($3) ON CONFLICT DO NOTHING RETURNING 1), \
             j1s0 AS (UPDATE codes SET used_at = $4 WHERE key = $5 AND used_at IS NULL RETURNING 1), \
             j1s1 AS (INSERT INTO tokens (key) VALUES ($6) ON CONFLICT DO NOTHING RETURNING 1) \
             SELECT unnest(ARRAY[tessera_claimed((SELECT count(*) FROM j0s0), 0) + (SELECT count(*) FROM j0s1), \
             tessera_claimed((SELECT count(*) FROM j1s0), 1) + (SELECT count(*) FROM j1s1)])"
        );
        assert_eq!(batch.params, [values![7, "k", "t"], values![7, "k", "t"]].concat());
        assert_eq!(batch.jobs, 4..6);
    }
}
