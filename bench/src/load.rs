//! The load generator: `concurrency` workers, each on its own keep-alive connection, issuing one
//! request after another for a warm-up and then a measured window; latencies of the requests that
//! complete inside the window give p50 and p99, their count the throughput.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};

use crate::http::{self, bearer, hidden_value, Browser, Conn, Header};
use crate::prepare::{self, PASSWORD};
use crate::server;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    /// GET / on the do-nothing axum server.
    Baseline,
    /// POST /oauth2/introspect of an access token (client_secret_basic).
    Introspect,
    /// GET /v1/caches with a bearer access token.
    BearerGet,
    /// GET /v1/caches with a developer API key.
    ApiKeyGet,
    /// POST /oauth2/token, grant_type=refresh_token, each worker walking its own chains.
    Refresh,
    /// POST /oauth2/token, grant_type=authorization_code with client_secret_basic and PKCE.
    CodeExchange,
    /// POST /v1/databases with a bearer access token, a new name each time.
    CreateDatabase,
    /// POST /login with a correct password (argon2id); success is the 303 to `next`.
    Login,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Baseline => "baseline: GET / (do-nothing axum)",
            Kind::Introspect => "POST /oauth2/introspect",
            Kind::BearerGet => "GET /v1/caches (access token)",
            Kind::ApiKeyGet => "GET /v1/caches (API key)",
            Kind::Refresh => "POST /oauth2/token refresh (rotation)",
            Kind::CodeExchange => "POST /oauth2/token code exchange (PKCE)",
            Kind::CreateDatabase => "POST /v1/databases",
            Kind::Login => "POST /login (argon2id)",
        }
    }
}

/// Everything the workers draw from.
pub struct Inputs {
    pub basic: Header,
    pub access_tokens: Vec<String>,
    pub api_keys: Vec<String>,
    pub codes: Vec<String>,
    pub next_code: AtomicUsize,
    /// Refresh chains, handed out to workers and handed back when they finish.
    pub chains: Mutex<Vec<String>>,
    pub users: usize,
}

pub(crate) enum Step {
    Done,
    Failed(String),
    /// The worker has nothing left to send (its codes or chains are used up).
    Exhausted,
}

pub(crate) struct Worker {
    id: usize,
    sent: usize,
    chains: Vec<String>,
    login: Option<(String, String, String)>,
}

impl Worker {
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    /// Hands this worker refresh chains to walk.
    pub(crate) fn take_chains(&mut self, chains: Vec<String>) {
        self.chains = chains;
    }

    /// The newest token of each chain this worker walked.
    pub(crate) fn give_chains(&mut self) -> Vec<String> {
        std::mem::take(&mut self.chains)
    }

    pub(crate) async fn setup(
        id: usize,
        kind: Kind,
        addr: SocketAddr,
        inputs: &Inputs,
    ) -> anyhow::Result<(Worker, Conn)> {
        let mut worker = Worker { id, sent: 0, chains: Vec::new(), login: None };
        if kind == Kind::Login {
            // A browser's first visit: an anonymous cookie and the login form's CSRF token.
            let mut browser = Browser::open(addr, BTreeMap::new()).await?;
            let page = browser.get("/login").await?;
            let csrf =
                hidden_value(&page.text(), "csrf_token").ok_or_else(|| anyhow!("the login page has no CSRF token"))?;
            let cookie = browser.cookie_header().ok_or_else(|| anyhow!("GET /login set no cookie"))?.1;
            worker.login = Some((cookie, csrf, prepare::email(id % inputs.users.max(1))));
            return Ok((worker, browser.conn));
        }
        Ok((worker, Conn::open(addr).await?))
    }

    pub(crate) async fn step(&mut self, kind: Kind, inputs: &Inputs, conn: &mut Conn) -> anyhow::Result<Step> {
        let n = self.sent;
        self.sent += 1;
        let pick = |list: &[String]| list[(self.id + n * 7) % list.len()].clone();
        match kind {
            Kind::Baseline => ok_if(conn.get("/", &[]).await?, 200),
            Kind::Introspect => {
                let body = http::form(&[("token", &pick(&inputs.access_tokens)), ("token_type_hint", "access_token")]);
                let reply = conn.post("/oauth2/introspect", &[http::form_type(), inputs.basic.clone()], &body).await?;
                if reply.status == 200 && !reply.contains(b"\"active\":true") {
                    return Ok(Step::Failed(format!("inactive token: {}", reply.describe())));
                }
                ok_if(reply, 200)
            }
            Kind::BearerGet => ok_if(conn.get("/v1/caches", &[bearer(&pick(&inputs.access_tokens))]).await?, 200),
            Kind::ApiKeyGet => ok_if(conn.get("/v1/caches", &[bearer(&pick(&inputs.api_keys))]).await?, 200),
            Kind::CreateDatabase => {
                let body = format!("{{\"name\":\"bench-{}-{n}\",\"region\":\"us-east-1\"}}", self.id);
                let headers = [http::json_type(), bearer(&pick(&inputs.access_tokens))];
                ok_if(conn.post("/v1/databases", &headers, body.as_bytes()).await?, 201)
            }
            Kind::CodeExchange => {
                let i = inputs.next_code.fetch_add(1, Ordering::Relaxed);
                let Some(code) = inputs.codes.get(i) else { return Ok(Step::Exhausted) };
                let headers = [http::form_type(), inputs.basic.clone()];
                let reply = conn.post("/oauth2/token", &headers, &prepare::exchange_body(code)).await?;
                if reply.status == 200 && reply.json().map(|j| j["access_token"].is_string()).unwrap_or(false) {
                    return Ok(Step::Done);
                }
                Ok(Step::Failed(reply.describe()))
            }
            Kind::Refresh => {
                if self.chains.is_empty() {
                    return Ok(Step::Exhausted);
                }
                let at = n % self.chains.len();
                let token = std::mem::take(&mut self.chains[at]);
                let body = http::form(&[("grant_type", "refresh_token"), ("refresh_token", &token)]);
                let reply = conn.post("/oauth2/token", &[http::form_type(), inputs.basic.clone()], &body).await;
                let next = reply
                    .as_ref()
                    .ok()
                    .filter(|r| r.status == 200)
                    .and_then(|r| r.json().ok().and_then(|j| j["refresh_token"].as_str().map(str::to_owned)));
                match next {
                    Some(next) => {
                        self.chains[at] = next;
                        Ok(Step::Done)
                    }
                    None => {
                        // The chain is broken (its token may be spent): drop it.
                        self.chains.remove(at);
                        Ok(Step::Failed(match reply {
                            Ok(r) => r.describe(),
                            Err(e) => format!("{e:#}"),
                        }))
                    }
                }
            }
            Kind::Login => {
                let (cookie, csrf, email) = self.login.clone().ok_or_else(|| anyhow!("login worker not set up"))?;
                let body =
                    http::form(&[("csrf_token", &csrf), ("email", &email), ("password", PASSWORD), ("next", "/")]);
                let reply = conn.post("/login", &[http::form_type(), ("cookie", cookie)], &body).await?;
                ok_if(reply, 303)
            }
        }
    }
}

fn ok_if(reply: http::Reply, expected: u16) -> anyhow::Result<Step> {
    Ok(if reply.status == expected { Step::Done } else { Step::Failed(reply.describe()) })
}

#[derive(Default)]
struct WorkerResult {
    latencies: Vec<u64>,
    errors: u64,
    samples: Vec<String>,
    last_completion: Option<Instant>,
    exhausted: bool,
    chains: Vec<String>,
    trace: Vec<(u64, u64)>,
}

/// One workload's figures.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub kind: Kind,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub error_samples: Vec<String>,
    /// CPU time of the server under test per successful request, microseconds.
    pub server_cpu_us: f64,
    /// CPU time of the PostgreSQL processes per successful request, microseconds.
    pub postgres_cpu_us: Option<f64>,
    /// Share of the server's core the server used.
    pub server_busy: f64,
    /// Share of its core the load generator used.
    pub client_busy: f64,
    /// Share of the machine's CPU time used by processes other than server, harness and PostgreSQL.
    pub other_load: f64,
    /// The worker stopped early because its prepared inputs ran out.
    pub ran_out: bool,
    /// Measured after the growth case's filler rows were written (`--filler-tokens`).
    pub grown: bool,
    /// With `Plan::trace`: every measured request as (completion, latency), in µs, the completion
    /// counted from the window's start, in completion order.
    pub trace: Vec<(u64, u64)>,
}

pub struct Plan {
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub server_pid: u32,
    pub count_postgres: bool,
    /// The generator polls instead of sleeping between responses (see `GeneratorWaits`).
    pub spin: bool,
    /// Keep every request's completion time and latency (`Measurement::trace`).
    pub trace: bool,
}

/// How the load generator waits for responses.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum GeneratorWaits {
    /// Polls without sleeping, on its own CPU: the server does not pay for waking it.
    Spin,
    /// Sleeps in epoll_wait, as wrk or oha do: every response wakes it through the server's send.
    Sleep,
}

pub async fn measure(kind: Kind, addr: SocketAddr, inputs: Arc<Inputs>, plan: &Plan) -> anyhow::Result<Measurement> {
    // Connections (and login pages) first, so that no handshake is timed.
    let mut workers = Vec::new();
    let chain_count = inputs.chains.lock().map_err(|_| anyhow!("poisoned"))?.len();
    for id in 0..plan.concurrency {
        let (mut worker, conn) = Worker::setup(id, kind, addr, &inputs)
            .await
            .with_context(|| format!("setting up worker {id} for {}", kind.label()))?;
        if kind == Kind::Refresh {
            let mut chains = inputs.chains.lock().map_err(|_| anyhow!("poisoned"))?;
            let share = chain_count / plan.concurrency + usize::from(id < chain_count % plan.concurrency);
            let at = chains.len() - share;
            worker.chains = chains.split_off(at);
        }
        workers.push((worker, conn));
    }
    // Codes are used up by every request, so the exchange spends none on a warm-up (the server is
    // warm from the workloads and the preparation before it).
    let warmup = if kind == Kind::CodeExchange { Duration::ZERO } else { plan.warmup };
    let start = Instant::now();
    let window_start = start + warmup;
    let window_end = window_start + plan.duration;

    let snapshot_task = {
        let pid = plan.server_pid;
        let count_postgres = plan.count_postgres;
        tokio::spawn(async move {
            tokio::time::sleep_until(window_start.into()).await;
            Snapshot::take(pid, count_postgres)
        })
    };

    // A task that only yields keeps the runtime from sleeping in epoll_wait: it polls for
    // readiness without a timeout instead. Over loopback the server's send runs the receiving
    // socket's TCP processing and wakes the receiver; waking a sleeping thread on the other CPU
    // is an inter-processor interrupt, which on a virtual machine traps to the hypervisor and
    // was a fifth of the server's samples for reads. A client across a network costs the server
    // none of that, so a spinning generator measures the server and not the loopback.
    let spinner = plan.spin.then(|| {
        tokio::spawn(async move {
            while Instant::now() < window_end {
                tokio::task::yield_now().await;
            }
        })
    });
    let mut handles = Vec::new();
    let trace = plan.trace;
    for (mut worker, mut conn) in workers {
        let inputs = inputs.clone();
        handles.push(tokio::spawn(async move {
            let mut result = WorkerResult::default();
            while Instant::now() < window_end {
                let began = Instant::now();
                let step = match worker.step(kind, &inputs, &mut conn).await {
                    Ok(step) => step,
                    Err(e) => Step::Failed(format!("{e:#}")),
                };
                let done = Instant::now();
                let in_window = done >= window_start && done <= window_end;
                match step {
                    Step::Done if in_window => {
                        result.latencies.push(done.duration_since(began).as_nanos() as u64);
                        if trace {
                            let at = done.duration_since(window_start).as_micros() as u64;
                            result.trace.push((at, done.duration_since(began).as_micros() as u64));
                        }
                        result.last_completion = Some(done);
                    }
                    Step::Done => {}
                    Step::Failed(why) => {
                        result.errors += 1;
                        if result.samples.len() < 3 {
                            result.samples.push(why);
                        }
                    }
                    Step::Exhausted => {
                        result.exhausted = true;
                        break;
                    }
                }
            }
            result.chains = std::mem::take(&mut worker.chains);
            result
        }));
    }
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await?);
    }
    if let Some(spinner) = spinner {
        spinner.abort();
    }
    let before = snapshot_task.await?;
    let after = Snapshot::take(plan.server_pid, plan.count_postgres);

    let mut trace: Vec<(u64, u64)> = results.iter_mut().flat_map(|r| std::mem::take(&mut r.trace)).collect();
    trace.sort_unstable();
    let mut latencies: Vec<u64> = results.iter().flat_map(|r| r.latencies.iter().copied()).collect();
    latencies.sort_unstable();
    let errors: u64 = results.iter().map(|r| r.errors).sum();
    let mut error_samples: Vec<String> = results.iter().flat_map(|r| r.samples.iter().cloned()).collect();
    error_samples.truncate(5);
    let ran_out = results.iter().any(|r| r.exhausted);
    if kind == Kind::Refresh {
        let mut chains = inputs.chains.lock().map_err(|_| anyhow!("poisoned"))?;
        for r in &mut results {
            chains.append(&mut r.chains);
        }
    }
    // If the inputs ran out, the window ends with the last completed request.
    let end = if ran_out {
        results.iter().filter_map(|r| r.last_completion).max().unwrap_or(window_end).min(window_end)
    } else {
        window_end
    };
    let seconds = end.saturating_duration_since(window_start).as_secs_f64().max(1e-9);
    let requests = latencies.len() as u64;
    let percentile = |p: f64| percentile_ms(&latencies, p);
    let hz = server::ticks_per_second();
    let per_request = |ticks: u64| ticks as f64 / hz * 1e6 / requests.max(1) as f64;
    let snapshot_seconds = after.at.duration_since(before.at).as_secs_f64().max(1e-9);
    let server_ticks = after.server.saturating_sub(before.server);
    let postgres_ticks = after.postgres.saturating_sub(before.postgres);
    let harness_ticks = after.harness.saturating_sub(before.harness);
    let (busy, total) = (after.busy.saturating_sub(before.busy), after.total.saturating_sub(before.total));
    let ours = server_ticks + postgres_ticks + harness_ticks;
    Ok(Measurement {
        kind,
        requests,
        errors,
        seconds,
        rps: requests as f64 / seconds,
        p50_ms: percentile(50.0),
        p99_ms: percentile(99.0),
        error_samples,
        server_cpu_us: per_request(server_ticks),
        postgres_cpu_us: plan.count_postgres.then(|| per_request(postgres_ticks)),
        server_busy: server_ticks as f64 / hz / snapshot_seconds,
        client_busy: harness_ticks as f64 / hz / snapshot_seconds,
        other_load: if total > 0 { busy.saturating_sub(ours) as f64 / total as f64 } else { 0.0 },
        ran_out,
        grown: false,
        trace,
    })
}

/// The `p`th percentile (nearest rank) of sorted latencies in nanoseconds, in milliseconds.
pub(crate) fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e6
}

struct Snapshot {
    at: Instant,
    server: u64,
    postgres: u64,
    harness: u64,
    busy: u64,
    total: u64,
}

impl Snapshot {
    fn take(server_pid: u32, count_postgres: bool) -> Snapshot {
        let (busy, total) = server::machine_ticks();
        Snapshot {
            at: Instant::now(),
            server: server::process_ticks(server_pid),
            postgres: if count_postgres { server::postgres_ticks() } else { 0 },
            harness: server::process_ticks(std::process::id()),
            busy,
            total,
        }
    }
}
