//! The soak run: a mixed load held for minutes at a fixed share of the rate the server can take,
//! reporting every interval's throughput, latency, errors and the server's memory, so that a
//! slow leak, a growing p99 or a janitor that falls behind shows as a trend.
//!
//! The mix, per 16 connections: 6 introspections, 6 bearer GETs, 3 refreshes (each worker
//! walking its own chains) and 1 database creation. First the mix runs unpaced for a short window
//! to find the maximum; then every worker sends on a fixed schedule that adds up to `share` of
//! that maximum (an open loop: a slow answer does not slow the offered load down).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;

use crate::http::Conn;
use crate::load::{percentile_ms, Inputs, Kind, Step, Worker};
use crate::server;

const MIX: [Kind; 16] = [
    Kind::Introspect,
    Kind::BearerGet,
    Kind::Introspect,
    Kind::BearerGet,
    Kind::Refresh,
    Kind::Introspect,
    Kind::BearerGet,
    Kind::CreateDatabase,
    Kind::Introspect,
    Kind::BearerGet,
    Kind::Refresh,
    Kind::Introspect,
    Kind::BearerGet,
    Kind::Introspect,
    Kind::BearerGet,
    Kind::Refresh,
];

pub struct SoakPlan {
    pub concurrency: usize,
    pub probe: Duration,
    pub duration: Duration,
    pub interval: Duration,
    pub share: f64,
    pub server_pid: u32,
}

/// One interval of the soak.
pub struct Interval {
    pub ended_after: Duration,
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub server_rss_mib: f64,
    pub samples: Vec<String>,
}

pub struct Soak {
    pub max_rps: f64,
    pub offered_rps: f64,
    pub intervals: Vec<Interval>,
}

pub async fn run(addr: SocketAddr, inputs: Arc<Inputs>, plan: &SoakPlan) -> anyhow::Result<Soak> {
    let probe = phase(addr, &inputs, plan, plan.probe, None, 0).await?;
    let max_rps = probe.iter().map(|i| i.requests).sum::<u64>() as f64 / plan.probe.as_secs_f64();
    let offered_rps = max_rps * plan.share;
    eprintln!("   soak: the mix peaks at {max_rps:.0} req/s; offering {offered_rps:.0} req/s");
    // Other worker ids than the probe's, so that the databases they create get other names.
    let intervals = phase(addr, &inputs, plan, plan.duration, Some(offered_rps), plan.concurrency).await?;
    Ok(Soak { max_rps, offered_rps, intervals })
}

/// Runs the mix for `length`, paced to `rate` requests per second in all if given.
async fn phase(
    addr: SocketAddr,
    inputs: &Arc<Inputs>,
    plan: &SoakPlan,
    length: Duration,
    rate: Option<f64>,
    first_id: usize,
) -> anyhow::Result<Vec<Interval>> {
    let refreshers = (0..plan.concurrency).filter(|id| MIX[id % MIX.len()] == Kind::Refresh).count().max(1);
    let mut workers = Vec::new();
    for id in 0..plan.concurrency {
        let kind = MIX[id % MIX.len()];
        let (mut worker, conn) = Worker::setup(first_id + id, kind, addr, inputs).await?;
        if kind == Kind::Refresh {
            let mut chains = inputs.chains.lock().map_err(|_| anyhow!("poisoned"))?;
            let share = chains.len() / refreshers;
            let at = chains.len().saturating_sub(share.max(1));
            worker.take_chains(chains.split_off(at));
        }
        workers.push((kind, worker, conn));
    }
    let start = Instant::now();
    let end = start + length;
    let slots = (length.as_secs_f64() / plan.interval.as_secs_f64()).ceil().max(1.0) as usize;
    // Each worker's share of the offered rate: the time between its sends.
    let gap = rate.map(|r| Duration::from_secs_f64(plan.concurrency as f64 / r.max(1.0)));

    let mut handles = Vec::new();
    for (kind, mut worker, mut conn) in workers {
        let inputs = inputs.clone();
        let interval = plan.interval;
        handles.push(tokio::spawn(async move {
            let mut per_slot: Vec<(Vec<u64>, u64, Vec<String>)> = vec![(Vec::new(), 0, Vec::new()); slots];
            // Workers start spread over one gap, so the load is even rather than in waves.
            let mut next = start + gap.map(|g| g.mul_f64(worker.id() as f64 / 16.0 % 1.0)).unwrap_or_default();
            while Instant::now() < end {
                if let Some(gap) = gap {
                    tokio::time::sleep_until(next.into()).await;
                    next += gap;
                }
                let began = Instant::now();
                let step = match worker.step(kind, &inputs, &mut conn).await {
                    Ok(step) => step,
                    Err(e) => {
                        // A broken connection: reopen it and count the error.
                        if let Ok(fresh) = Conn::open(addr).await {
                            conn = fresh;
                        }
                        Step::Failed(format!("{e:#}"))
                    }
                };
                let done = Instant::now();
                let slot =
                    ((done.duration_since(start).as_secs_f64() / interval.as_secs_f64()) as usize).min(slots - 1);
                match step {
                    Step::Done => per_slot[slot].0.push(done.duration_since(began).as_nanos() as u64),
                    Step::Failed(why) => {
                        per_slot[slot].1 += 1;
                        if per_slot[slot].2.len() < 2 {
                            per_slot[slot].2.push(format!("{}: {why}", kind.label()));
                        }
                    }
                    Step::Exhausted => break,
                }
            }
            (per_slot, worker.give_chains())
        }));
    }

    // Memory is read at the end of each interval while the load runs.
    let pid = plan.server_pid;
    let interval = plan.interval;
    let memory = tokio::spawn(async move {
        let mut readings = Vec::new();
        for slot in 1..=slots {
            tokio::time::sleep_until((start + interval * slot as u32).min(end).into()).await;
            readings.push(server::rss_mib(pid));
        }
        readings
    });

    let mut slots_all: Vec<(Vec<u64>, u64, Vec<String>)> = vec![(Vec::new(), 0, Vec::new()); slots];
    for handle in handles {
        let (per_slot, chains) = handle.await?;
        inputs.chains.lock().map_err(|_| anyhow!("poisoned"))?.extend(chains);
        for (all, mine) in slots_all.iter_mut().zip(per_slot) {
            all.0.extend(mine.0);
            all.1 += mine.1;
            all.2.extend(mine.2);
        }
    }
    let memory = memory.await?;
    let mut intervals = Vec::new();
    for (i, (mut latencies, errors, mut samples)) in slots_all.into_iter().enumerate() {
        latencies.sort_unstable();
        samples.truncate(3);
        let ended_after = (interval * (i as u32 + 1)).min(length);
        let seconds = (ended_after.as_secs_f64() - interval.as_secs_f64() * i as f64).max(1e-9);
        let percentile = |p: f64| percentile_ms(&latencies, p);
        intervals.push(Interval {
            ended_after,
            requests: latencies.len() as u64,
            errors,
            rps: latencies.len() as f64 / seconds,
            p50_ms: percentile(50.0),
            p99_ms: percentile(99.0),
            server_rss_mib: memory.get(i).copied().unwrap_or(0.0),
            samples,
        });
    }
    Ok(intervals)
}

/// The soak's report: one row per interval.
pub fn table(soak: &Soak) -> String {
    let mut out = format!(
        "The mix peaked at {:.0} req/s unpaced; the soak offered {:.0} req/s.\n\n\
         | after | req/s | p50 ms | p99 ms | errors | server memory (RSS) |\n|--:|--:|--:|--:|--:|--:|\n",
        soak.max_rps, soak.offered_rps
    );
    for i in &soak.intervals {
        out.push_str(&format!(
            "| {:.0} s | {:.0} | {:.2} | {:.2} | {} | {:.1} MiB |\n",
            i.ended_after.as_secs_f64(),
            i.rps,
            i.p50_ms,
            i.p99_ms,
            i.errors,
            i.server_rss_mib
        ));
    }
    out
}
