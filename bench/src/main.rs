//! `tessera-bench`: builds and starts the real `tessera serve` on a fresh SQLite or PostgreSQL
//! database, pinned to one CPU, prepares inputs through the real OAuth flow, and measures each
//! workload's throughput and latency from another CPU, next to a do-nothing axum server measured
//! the same way. See docs/performance.md.

mod http;
mod load;
mod prepare;
mod report;
mod server;
mod soak;

use std::fmt::Write as _;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand, ValueEnum};

use load::{GeneratorWaits, Inputs, Kind, Measurement, Plan};
use report::EngineRun;
use server::{Database, Engine, Server};

#[derive(Parser)]
#[command(
    name = "tessera-bench",
    about = "Throughput and latency of a real tessera server, next to a do-nothing baseline"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    /// Which database engine to run tessera on.
    #[arg(long, value_enum, default_value = "sqlite")]
    engine: EngineChoice,
    /// Measured seconds per workload (default 10; 2 with --smoke).
    #[arg(long)]
    duration: Option<f64>,
    /// Warm-up seconds per workload, not measured (default 1; 0.3 with --smoke).
    #[arg(long)]
    warmup: Option<f64>,
    /// Concurrent keep-alive connections, one worker each (default 32; 8 with --smoke).
    #[arg(long)]
    concurrency: Option<usize>,
    /// A short run with small prepared sets that fails on any error (CI).
    #[arg(long)]
    smoke: bool,
    /// Only these workloads (comma-separated); the baseline is always measured.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Kind>,
    /// Use this tessera binary instead of building one (`cargo build --release -p tessera`;
    /// a debug build with --smoke).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// A PostgreSQL database to connect to for creating and dropping the benchmark's database.
    #[arg(long, env = "TESSERA_BENCH_POSTGRES_URL", default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_url: String,
    /// Most codes to prepare for the code-exchange workload.
    #[arg(long, default_value_t = 100_000)]
    max_codes: usize,
    /// Rows to add to the access-token table before measuring (see --filler-expired-share), for
    /// the growth case: e.g. 10000000.
    #[arg(long, default_value_t = 0)]
    filler_tokens: u64,
    /// The share of the filler rows that has already expired, and so is a backlog for the
    /// janitor to work off while the workloads are measured (0 to 1).
    #[arg(long, default_value_t = 0.5)]
    filler_expired_share: f64,
    /// Instead of the workloads: a mixed load held for this many seconds at --soak-share of the
    /// mix's peak rate, reported per --soak-interval (e.g. --soak 600).
    #[arg(long)]
    soak: Option<u64>,
    /// The share of the peak rate the soak offers.
    #[arg(long, default_value_t = 0.8)]
    soak_share: f64,
    /// Seconds per row of the soak's report.
    #[arg(long, default_value_t = 60)]
    soak_interval: u64,
    /// How the load generator waits for responses: spin (polls on its own CPU, so the server's
    /// sends do not pay for waking it over loopback) or sleep (in epoll_wait, as wrk and oha do).
    /// It spins only on SQLite and only when server and generator are pinned to CPUs of their
    /// own: PostgreSQL's backends also run on the generator's CPU, and spinning would take it
    /// from them.
    #[arg(long, value_enum, default_value = "spin")]
    generator_waits: GeneratorWaits,
    /// Write every measured request's completion time and latency to a file per engine and
    /// workload in this directory, to see what makes the p99 (stalls of whole waves of requests,
    /// for instance). Lines are `completion_us latency_us`, the completion counted from the
    /// start of the measured window.
    #[arg(long)]
    trace: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Sub {
    /// The do-nothing baseline server (started by the harness itself).
    Hello {
        #[arg(long)]
        listen: SocketAddr,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EngineChoice {
    Sqlite,
    Postgres,
    Both,
}

struct Options {
    engines: Vec<Engine>,
    plan_concurrency: usize,
    warmup: Duration,
    duration: Duration,
    smoke: bool,
    only: Vec<Kind>,
    postgres_url: String,
    max_codes: usize,
    filler_tokens: u64,
    filler_expired: u64,
    soak: Option<(Duration, f64, Duration)>,
    server_cpu: Option<usize>,
    spin: bool,
    trace: Option<PathBuf>,
}

impl Options {
    fn wants(&self, kind: Kind) -> bool {
        kind == Kind::Baseline || self.only.is_empty() || self.only.contains(&kind)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Sub::Hello { listen }) = cli.command {
        return match hello(listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hello server: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("tessera-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The baseline: axum's hello world, served the way tessera serves (axum::serve on a
/// multi-thread runtime with every driver enabled).
fn hello(listen: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
        axum::serve(listener, app).await?;
        anyhow::Ok(())
    })
}

/// Writes a measurement's trace to `<dir>/<engine>-<workload>[-grown].txt`.
fn write_trace(dir: &Path, engine: Engine, m: &Measurement) -> anyhow::Result<()> {
    let workload = m.kind.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default();
    let grown = if m.grown { "-grown" } else { "" };
    let path = dir.join(format!("{}-{workload}{grown}.txt", engine.name().to_lowercase()));
    let mut text = String::with_capacity(m.trace.len() * 16);
    for (at, latency) in &m.trace {
        // Writing into a String cannot fail.
        let _ = writeln!(text, "{at} {latency}");
    }
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, text))
        .with_context(|| format!("writing the trace {}", path.display()))
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    let smoke = cli.smoke;
    let seconds = |given: Option<f64>, full: f64, short: f64| {
        Duration::from_secs_f64(given.unwrap_or(if smoke { short } else { full }).max(0.0))
    };
    let engines = match cli.engine {
        EngineChoice::Sqlite => vec![Engine::Sqlite],
        EngineChoice::Postgres => vec![Engine::Postgres],
        EngineChoice::Both => vec![Engine::Sqlite, Engine::Postgres],
    };
    let mut options = Options {
        engines,
        plan_concurrency: cli.concurrency.unwrap_or(if smoke { 8 } else { 32 }).max(1),
        warmup: seconds(cli.warmup, 1.0, 0.3),
        duration: seconds(cli.duration, 10.0, 2.0),
        smoke,
        only: cli.only,
        postgres_url: cli.postgres_url,
        max_codes: cli.max_codes.max(1),
        filler_tokens: cli.filler_tokens,
        filler_expired: (cli.filler_tokens as f64 * cli.filler_expired_share.clamp(0.0, 1.0)).round() as u64,
        soak: cli.soak.map(|s| {
            (
                Duration::from_secs(s.max(1)),
                cli.soak_share.clamp(0.05, 1.0),
                Duration::from_secs(cli.soak_interval.max(1)),
            )
        }),
        server_cpu: None,
        spin: false,
        trace: cli.trace,
    };
    if options.duration.is_zero() {
        bail!("--duration must be positive");
    }

    // Build before pinning, so that the compiler may use every CPU.
    let bin = match cli.server_bin {
        Some(path) => path.canonicalize().with_context(|| format!("no server binary at {}", path.display()))?,
        None => build_server(!smoke)?,
    };

    let cpus = server::allowed_cpus();
    let pinning = server::on_path("taskset") && cpus.len() >= 2;
    if pinning {
        options.server_cpu = Some(cpus[0]);
        server::pin_self(cpus[1])?;
        options.spin = cli.generator_waits == GeneratorWaits::Spin;
    }
    if cfg!(debug_assertions) && !smoke {
        eprintln!("warning: tessera-bench was built without --release; the load generator may be the bottleneck");
    }
    let placement = if pinning {
        format!(
            "server on CPU {} (taskset), load generator on CPU {} ({})",
            cpus[0],
            cpus[1],
            if options.spin {
                "spinning between responses on SQLite, sleeping on PostgreSQL"
            } else {
                "sleeping between responses"
            }
        )
    } else {
        format!(
            "no pinning ({} CPU(s) usable, taskset {})",
            cpus.len(),
            if server::on_path("taskset") { "present" } else { "missing" }
        )
    };
    eprintln!(
        "tessera-bench: {} with {}; {} connections; {:.1} s warm-up + {:.1} s per workload; {placement}; load average {}",
        if smoke { "smoke run" } else { "benchmark" },
        bin.display(),
        options.plan_concurrency,
        options.warmup.as_secs_f64(),
        options.duration.as_secs_f64(),
        server::load_average()
    );

    // One CPU for the load generator: a current-thread runtime.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let runs = runtime.block_on(async {
        let mut runs = Vec::new();
        for &engine in &options.engines {
            runs.push(run_engine(engine, &options, &bin).await?);
        }
        anyhow::Ok(runs)
    })?;

    println!(
        "# tessera-bench{}: concurrency {}, {:.1} s per workload after {:.1} s warm-up; {placement}; {} CPU(s) online\n",
        if smoke { " --smoke" } else { "" },
        options.plan_concurrency,
        options.duration.as_secs_f64(),
        options.warmup.as_secs_f64(),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0).max(cpus.len())
    );
    if options.filler_tokens > 0 {
        println!(
            "Growth case: every workload measured, then {} rows ({} of them expired) written into access_tokens, then every workload measured again (the rows marked +N rows).\n",
            options.filler_tokens, options.filler_expired
        );
    }
    for run in &runs {
        println!(
            "## {}\n\nload average before {} / after {}; inputs prepared in {:.1} s\n",
            run.engine.name(),
            run.load_before,
            run.load_after,
            run.preparation_seconds
        );
        println!("{}", report::table(run));
        if let Some(soak) = &run.soak {
            println!("### Soak\n\n{}", soak::table(soak));
        }
        for m in &run.rows {
            for sample in &m.error_samples {
                println!("error sample, {}: {sample}", m.kind.label());
            }
        }
    }
    if !smoke && options.soak.is_none() {
        println!("## Targets (issue 9)\n");
        for v in report::verdicts(&runs) {
            println!("- {} {}", if v.holds { "holds:" } else { "MISSED:" }, v.what);
        }
    }
    let errors: u64 = runs.iter().map(EngineRun::errors).sum();
    if errors > 0 {
        eprintln!("tessera-bench: {errors} request(s) failed");
    }
    let idle: Vec<String> = runs
        .iter()
        .flat_map(|run| {
            run.rows.iter().filter(|m| m.requests == 0).map(|m| format!("{} {}", run.engine.name(), m.kind.label()))
        })
        .collect();
    if !idle.is_empty() {
        eprintln!("tessera-bench: no request completed in the window for: {}", idle.join(", "));
    }
    Ok(errors == 0 && idle.is_empty())
}

/// `cargo build [--release] -p tessera --bin tessera`, returning the binary cargo reports.
fn build_server(release: bool) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "-p", "tessera", "--bin", "tessera", "--message-format=json-render-diagnostics"]);
    if release {
        command.arg("--release");
    }
    eprintln!("tessera-bench: building the server ({})", if release { "release" } else { "debug" });
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().context("cannot run cargo")?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no cargo output"))?;
    let mut executable = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line?) else { continue };
        if message["reason"] == "compiler-artifact" && message["target"]["name"] == "tessera" {
            if let Some(path) = message["executable"].as_str() {
                executable = Some(PathBuf::from(path));
            }
        }
    }
    if !child.wait()?.success() {
        bail!("building the tessera binary failed");
    }
    executable.ok_or_else(|| anyhow!("cargo reported no tessera executable"))
}

async fn run_engine(engine: Engine, options: &Options, bin: &Path) -> anyhow::Result<EngineRun> {
    eprintln!("== {}", engine.name());
    let mut db = Database::create(engine, &options.postgres_url).await?;
    let outcome = tokio::select! {
        run = measure_engine(engine, &db, options, bin) => run,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    db.drop_database().await;
    outcome
}

fn progress(m: &Measurement) {
    eprintln!(
        "   {:<44} {:>8.0} req/s ({} in {:.1} s)  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}{}",
        m.kind.label(),
        m.rps,
        m.requests,
        m.seconds,
        m.p50_ms,
        m.p99_ms,
        m.errors,
        if m.ran_out { "  (inputs ran out)" } else { "" }
    );
    for sample in &m.error_samples {
        eprintln!("      error: {sample}");
    }
}

async fn measure_engine(engine: Engine, db: &Database, options: &Options, bin: &Path) -> anyhow::Result<EngineRun> {
    let load_before = server::load_average();
    let concurrency = options.plan_concurrency;
    let plan = |pid: u32, count_postgres: bool| Plan {
        concurrency,
        warmup: options.warmup,
        duration: options.duration,
        server_pid: pid,
        count_postgres,
        // PostgreSQL's backends are not pinned and need the generator's CPU too.
        spin: options.spin && engine == Engine::Sqlite,
        trace: options.trace.is_some(),
    };
    let mut rows = Vec::new();

    // The baseline, on the same CPU the server will use.
    let hello = Server::hello(db.dir.path(), options.server_cpu).await?;
    let no_inputs = Arc::new(Inputs {
        basic: ("authorization", "Basic eDp5".to_owned()),
        access_tokens: Vec::new(),
        api_keys: Vec::new(),
        codes: Vec::new(),
        next_code: AtomicUsize::new(0),
        chains: Mutex::new(Vec::new()),
        users: 1,
    });
    let baseline = load::measure(Kind::Baseline, hello.addr, no_inputs, &plan(hello.pid(), false)).await?;
    progress(&baseline);
    rows.push(baseline);
    hello.stop().await?;

    // Inputs, through the operator CLI and the real flow.
    let prepared_at = Instant::now();
    let users = if options.smoke { 2 } else { 4 };
    let chain_count = concurrency * if options.smoke { 1 } else { 4 };
    let token_count = if options.smoke { 8 } else { 64 };
    let key_count = if options.smoke { 4 } else { 32 };
    let client = prepare::accounts(bin, &db.url, users)?;
    let tessera = Server::tessera(bin, &db.url, db.dir.path(), options.server_cpu).await?;
    let addr = tessera.addr;
    let postgres = engine == Engine::Postgres;
    let sessions = prepare::sessions(addr, users).await?;
    let codes = prepare::codes(addr, &client.id, &sessions, token_count + chain_count, concurrency).await?;
    let mut tokens = prepare::exchange_all(addr, &client, codes, concurrency).await?;
    let mut chains: Vec<String> = tokens.split_off(token_count).into_iter().map(|t| t.refresh).collect();
    let access: Vec<String> = tokens.into_iter().map(|t| t.access).collect();
    let keys = prepare::api_keys(addr, &access[..key_count.min(access.len())]).await?;
    // Token i was granted by user i % users, on that user's personal workspace.
    for token in access.iter().take(users) {
        prepare::caches(addr, token, 3).await?;
    }
    let mut preparation_seconds = prepared_at.elapsed().as_secs_f64();
    eprintln!(
        "   prepared {users} users, {} access tokens, {} API keys, {} refresh chains in {preparation_seconds:.1} s",
        access.len(),
        keys.len(),
        chains.len()
    );
    let inputs = |codes: Vec<String>, chains: &[String]| -> anyhow::Result<Arc<Inputs>> {
        Ok(Arc::new(Inputs {
            basic: client.basic(),
            access_tokens: access.clone(),
            api_keys: keys.clone(),
            codes,
            next_code: AtomicUsize::new(0),
            chains: Mutex::new(chains.to_vec()),
            users,
        }))
    };

    if let Some((duration, share, interval)) = options.soak {
        if options.filler_tokens > 0 {
            prepare::filler_tokens(engine, &db.url, options.filler_tokens, options.filler_expired).await?;
        }
        let plan = soak::SoakPlan {
            concurrency,
            probe: Duration::from_secs(10),
            duration,
            interval,
            share,
            server_pid: tessera.pid(),
        };
        let result = soak::run(addr, inputs(Vec::new(), &chains)?, &plan).await?;
        for i in &result.intervals {
            eprintln!(
                "   soak {:>5.0} s: {:>7.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  errors {}  server RSS {:.1} MiB",
                i.ended_after.as_secs_f64(),
                i.rps,
                i.p50_ms,
                i.p99_ms,
                i.errors,
                i.server_rss_mib
            );
            for sample in &i.samples {
                eprintln!("      error: {sample}");
            }
        }
        tessera.stop().await?;
        return Ok(EngineRun {
            engine,
            rows,
            load_before,
            load_after: server::load_average(),
            preparation_seconds,
            soak: Some(result),
            filler_rows: 0,
        });
    }

    let order = [
        Kind::Introspect,
        Kind::BearerGet,
        Kind::ApiKeyGet,
        Kind::Refresh,
        Kind::CodeExchange,
        Kind::CreateDatabase,
        Kind::Login,
    ];
    // The growth case measures every workload twice in one sitting, before and after the filler
    // rows, so that the host's drift between separate runs does not pass for growth.
    let phases: &[bool] = if options.filler_tokens > 0 { &[false, true] } else { &[false] };
    let mut refresh_rate = None;
    for &grown in phases {
        if grown {
            let began = Instant::now();
            prepare::filler_tokens(engine, &db.url, options.filler_tokens, options.filler_expired).await?;
            eprintln!("   filler rows written and settled in {:.1} s", began.elapsed().as_secs_f64());
        }
        for kind in order.into_iter().filter(|k| options.wants(*k)) {
            let codes = if kind == Kind::CodeExchange {
                // Enough codes for the whole window at about the refresh rate (both issue a token
                // pair in one transaction), plus a margin; running out early only shortens the window.
                let window = (options.warmup + options.duration).as_secs_f64();
                let rate = refresh_rate.unwrap_or(if options.smoke { 100.0 } else { 5000.0 });
                let mut count = (rate * window * 1.3) as usize + 4 * concurrency;
                count = count.min(if options.smoke { 400 } else { options.max_codes });
                let began = Instant::now();
                let codes = prepare::codes(addr, &client.id, &sessions, count, concurrency).await?;
                let spent = began.elapsed().as_secs_f64();
                preparation_seconds += spent;
                eprintln!("   prepared {count} codes through /oauth2/auth and consent in {spent:.1} s");
                codes
            } else {
                Vec::new()
            };
            let inputs = inputs(codes, &chains)?;
            let mut m = load::measure(kind, addr, inputs.clone(), &plan(tessera.pid(), postgres)).await?;
            m.grown = grown;
            if let Some(dir) = &options.trace {
                write_trace(dir, engine, &m)?;
            }
            progress(&m);
            if m.errors > 0 {
                eprintln!("   tessera's log ends with:\n{}", tessera.log_tail());
            }
            if kind == Kind::Refresh {
                refresh_rate = Some(m.rps);
                // The chains have moved on; the next refresh window continues from where they are.
                chains = inputs.chains.lock().expect("chains").clone();
            }
            rows.push(m);
        }
    }
    tessera.stop().await?;
    Ok(EngineRun {
        engine,
        rows,
        load_before,
        load_after: server::load_average(),
        preparation_seconds,
        soak: None,
        filler_rows: options.filler_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_is_written_per_engine_and_workload_a_request_a_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Measurement {
            kind: Kind::CreateDatabase,
            requests: 2,
            errors: 0,
            seconds: 1.0,
            rps: 2.0,
            p50_ms: 1.0,
            p99_ms: 9.0,
            error_samples: Vec::new(),
            server_cpu_us: 0.0,
            postgres_cpu_us: None,
            server_busy: 0.0,
            client_busy: 0.0,
            other_load: 0.0,
            ran_out: false,
            grown: true,
            trace: vec![(120, 1000), (9400, 9000)],
        };
        let traces = dir.path().join("traces");
        write_trace(&traces, Engine::Postgres, &m).expect("written");
        let text = std::fs::read_to_string(traces.join("postgresql-create-database-grown.txt")).expect("file");
        assert_eq!(text, "120 1000\n9400 9000\n");
    }
}
