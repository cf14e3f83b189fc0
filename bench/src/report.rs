//! The table of figures, and the targets checked against them.

use std::fmt::Write;

use crate::load::{Kind, Measurement};
use crate::server::Engine;

pub struct EngineRun {
    pub engine: Engine,
    pub rows: Vec<Measurement>,
    pub load_before: String,
    pub load_after: String,
    pub preparation_seconds: f64,
    pub soak: Option<crate::soak::Soak>,
    /// The growth case's filler rows, written between the two rounds of measurements.
    pub filler_rows: u64,
}

impl EngineRun {
    pub fn row(&self, kind: Kind) -> Option<&Measurement> {
        self.rows.iter().find(|m| m.kind == kind && !m.grown)
    }

    fn grown_row(&self, kind: Kind) -> Option<&Measurement> {
        self.rows.iter().find(|m| m.kind == kind && m.grown)
    }

    fn baseline(&self) -> Option<f64> {
        self.row(Kind::Baseline).map(|m| m.rps).filter(|r| *r > 0.0)
    }

    pub fn errors(&self) -> u64 {
        let soak = self.soak.as_ref().map_or(0, |s| s.intervals.iter().map(|i| i.errors).sum());
        self.rows.iter().map(|m| m.errors).sum::<u64>() + soak
    }
}

/// A Markdown table of one engine's figures.
pub fn table(run: &EngineRun) -> String {
    let postgres = run.engine == Engine::Postgres;
    let mut out = String::new();
    let _ = write!(out, "| workload | req/s | p50 ms | p99 ms | errors | vs baseline | tessera CPU/req |");
    if postgres {
        out.push_str(" PostgreSQL CPU/req |");
    }
    out.push_str(" server core busy | load generator busy | other load |\n|---|--:|--:|--:|--:|--:|--:|");
    if postgres {
        out.push_str("--:|");
    }
    out.push_str("--:|--:|--:|\n");
    for m in &run.rows {
        let ratio = match (m.kind, run.baseline()) {
            (Kind::Baseline, _) => "1".to_owned(),
            (_, Some(base)) => format!("{:.1}%", 100.0 * m.rps / base),
            (_, None) => "-".to_owned(),
        };
        let mut label = m.kind.label().to_owned();
        if m.grown {
            let _ = write!(label, " (+{} rows)", rows_in_words(run.filler_rows));
        }
        if m.ran_out {
            label.push_str(" (inputs ran out)");
        }
        let _ = write!(
            out,
            "| {label} | {:.0} | {:.2} | {:.2} | {} | {ratio} | {:.0} µs |",
            m.rps, m.p50_ms, m.p99_ms, m.errors, m.server_cpu_us
        );
        if postgres {
            let _ = write!(out, " {} |", m.postgres_cpu_us.map(|c| format!("{c:.0} µs")).unwrap_or_default());
        }
        let _ = writeln!(
            out,
            " {:.0}% | {:.0}% | {:.0}% |",
            100.0 * m.server_busy,
            100.0 * m.client_busy,
            100.0 * m.other_load
        );
    }
    out
}

/// 10000000 as "10M", 250000 as "250k".
fn rows_in_words(rows: u64) -> String {
    match rows {
        r if r >= 1_000_000 && r % 1_000_000 == 0 => format!("{}M", r / 1_000_000),
        r if r >= 1_000 && r % 1_000 == 0 => format!("{}k", r / 1_000),
        r => r.to_string(),
    }
}

pub struct Verdict {
    pub what: String,
    pub holds: bool,
}

/// The targets: on SQLite, code exchange and refresh at least 10% of the baseline's rate,
/// introspection and bearer GETs at least 30%, p99 under 10 ms and no errors; PostgreSQL at least
/// half of SQLite's rates; in the growth case, bearer GET and code exchange within 1.5 times
/// their rate before the filler rows.
pub fn verdicts(runs: &[EngineRun]) -> Vec<Verdict> {
    let mut out = Vec::new();
    let oauth = [Kind::CodeExchange, Kind::Refresh];
    let reads = [Kind::Introspect, Kind::BearerGet, Kind::ApiKeyGet];
    let sqlite = runs.iter().find(|r| r.engine == Engine::Sqlite);
    for run in runs {
        let name = run.engine.name();
        if run.engine == Engine::Sqlite {
            for (kinds, share) in [(&oauth[..], 0.10), (&reads[..], 0.30)] {
                for &kind in kinds {
                    if let (Some(m), Some(base)) = (run.row(kind), run.baseline()) {
                        let ratio = m.rps / base;
                        out.push(Verdict {
                            what: format!(
                                "{name}: {} >= {:.0}% of baseline: {:.1}%",
                                kind.label(),
                                share * 100.0,
                                ratio * 100.0
                            ),
                            holds: ratio >= share,
                        });
                    }
                }
            }
        }
        if let Some(sqlite) = sqlite.filter(|_| run.engine == Engine::Postgres) {
            for &kind in oauth.iter().chain(reads.iter()) {
                if let (Some(pg), Some(lite)) = (run.row(kind), sqlite.row(kind)) {
                    let ratio = pg.rps / lite.rps.max(1e-9);
                    out.push(Verdict {
                        what: format!(
                            "{name}: {} >= half of SQLite: {:.0} vs {:.0} req/s ({:.0}%)",
                            kind.label(),
                            pg.rps,
                            lite.rps,
                            ratio * 100.0
                        ),
                        holds: ratio >= 0.5,
                    });
                }
            }
        }
        for kind in [Kind::BearerGet, Kind::CodeExchange] {
            if let (Some(small), Some(grown)) = (run.row(kind), run.grown_row(kind)) {
                let slowdown = small.rps / grown.rps.max(1e-9);
                out.push(Verdict {
                    what: format!(
                        "{name}: {} within 1.5x with +{} rows: {:.0} -> {:.0} req/s ({slowdown:.2}x)",
                        kind.label(),
                        rows_in_words(run.filler_rows),
                        small.rps,
                        grown.rps
                    ),
                    holds: slowdown <= 1.5,
                });
            }
        }
        let slow: Vec<String> = run
            .rows
            .iter()
            .filter(|m| !matches!(m.kind, Kind::Baseline | Kind::Login) && m.p99_ms >= 10.0)
            .map(|m| format!("{} {:.1} ms", m.kind.label(), m.p99_ms))
            .collect();
        out.push(Verdict {
            what: format!(
                "{name}: p99 < 10 ms for every workload but login{}",
                if slow.is_empty() { String::new() } else { format!(" (not: {})", slow.join(", ")) }
            ),
            holds: slow.is_empty(),
        });
        out.push(Verdict { what: format!("{name}: zero errors ({} seen)", run.errors()), holds: run.errors() == 0 });
    }
    out
}
