//! The processes under test: a fresh database, the real `tessera serve` and the do-nothing
//! baseline, each pinned to the server core; and what the machine's CPUs did meanwhile.

use std::fs::File;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

use crate::http::Conn;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "SQLite",
            Engine::Postgres => "PostgreSQL",
        }
    }
}

/// A fresh database: a file in a temporary directory, or a new PostgreSQL database that is
/// dropped again by [`Database::drop_database`].
pub struct Database {
    pub url: String,
    pub dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
}

impl Database {
    pub async fn create(engine: Engine, postgres_admin_url: &str) -> anyhow::Result<Database> {
        let dir = tempfile::Builder::new().prefix("tessera-bench-").tempdir()?;
        match engine {
            Engine::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("tessera.db").display());
                Ok(Database { url, dir, postgres: None })
            }
            Engine::Postgres => {
                use sqlx::{Connection, Executor};
                let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos();
                let name = format!("tessera_bench_{}_{nonce}", std::process::id());
                let mut conn = sqlx::PgConnection::connect(postgres_admin_url)
                    .await
                    .with_context(|| format!("cannot connect to PostgreSQL at {postgres_admin_url}"))?;
                conn.execute(format!("CREATE DATABASE {name}").as_str()).await?;
                let _ = conn.close().await;
                let (base, _) = postgres_admin_url.rsplit_once('/').ok_or_else(|| anyhow!("bad PostgreSQL URL"))?;
                let url = format!("{base}/{name}");
                Ok(Database { url, dir, postgres: Some((postgres_admin_url.to_owned(), name)) })
            }
        }
    }

    pub async fn drop_database(&mut self) {
        let Some((admin, name)) = self.postgres.take() else { return };
        use sqlx::{Connection, Executor};
        match sqlx::PgConnection::connect(&admin).await {
            Ok(mut conn) => {
                if let Err(e) = conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await {
                    eprintln!("warning: could not drop the benchmark database {name}: {e}");
                }
                let _ = conn.close().await;
            }
            Err(e) => eprintln!("warning: could not drop the benchmark database {name}: {e}"),
        }
    }
}

/// Which CPUs the harness may use, from its affinity mask.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for this process.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&cpu| libc::CPU_ISSET(cpu, &set)).collect()
    }
}

/// Pins the calling process (and the threads it starts afterwards) to one CPU.
pub fn pin_self(cpu: usize) -> anyhow::Result<()> {
    // SAFETY: as above; sched_setaffinity reads the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            bail!("sched_setaffinity to CPU {cpu} failed: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// A free port on loopback (released again; the server binds it a moment later).
pub fn free_address() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// A command run on `cpu` through `taskset` when one is given, and killed if the harness dies.
fn pinned(program: &Path, cpu: Option<usize>) -> Command {
    let mut command = match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(program);
            c
        }
        None => Command::new(program),
    };
    // SAFETY: prctl is async-signal-safe; it only asks for SIGTERM when the parent dies.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    command
}

/// A server process: tessera or the baseline.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Server {
    /// `tessera serve` on `database_url`, logging (at its default level) to a file in `dir`.
    pub async fn tessera(bin: &Path, database_url: &str, dir: &Path, cpu: Option<usize>) -> anyhow::Result<Server> {
        let addr = free_address()?;
        let log = dir.join("tessera.log");
        let out = File::create(&log)?;
        let child = pinned(bin, cpu)
            .arg("serve")
            .env("TESSERA_DATABASE_URL", database_url)
            .env("TESSERA_LISTEN", addr.to_string())
            .env("TESSERA_ISSUER_URL", format!("http://{addr}"))
            // Codes are prepared before they are exchanged; an hour keeps them alive meanwhile.
            .env("TESSERA_CODE_TTL", "3600")
            // One client makes every request here; its per-client rate limits would cut the
            // measurement off at their ceiling, so they are set to the highest allowed.
            .env("TESSERA_TOKEN_REQUESTS_PER_MINUTE", "1000000")
            .env("TESSERA_AUTHORIZE_REQUESTS_PER_MINUTE", "1000000")
            // 32 connections log 4 people in at once from one address; login throttling counts
            // attempts in flight, so it is lifted as well: the workload measures the password hash.
            .env("TESSERA_LOGIN_FAILURES_PER_ACCOUNT", "1000000")
            .env("TESSERA_LOGIN_FAILURES_PER_ADDRESS", "1000000")
            .env_remove("TESSERA_LOG")
            .env_remove("TESSERA_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut server = Server { child, addr, log };
        server.wait_ready("/readyz").await?;
        Ok(server)
    }

    /// The do-nothing baseline: this binary's `hello` subcommand.
    pub async fn hello(dir: &Path, cpu: Option<usize>) -> anyhow::Result<Server> {
        let addr = free_address()?;
        let log = dir.join("hello.log");
        let out = File::create(&log)?;
        let child = pinned(&std::env::current_exe()?, cpu)
            .arg("hello")
            .arg("--listen")
            .arg(addr.to_string())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        let mut server = Server { child, addr, log };
        server.wait_ready("/").await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, path: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited ({status}) before it was ready:\n{}", self.log_tail());
            }
            if let Ok(mut conn) = Conn::open(self.addr).await {
                if let Ok(reply) = conn.get(path, &[]).await {
                    if reply.status == 200 {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("the server did not become ready within 60 s:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGTERM (graceful shutdown), then SIGKILL if it takes longer than ten seconds.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        // SAFETY: kill only sends a signal to our own child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                self.child.wait()?;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // The log goes with its temporary directory: what went wrong in it is shown first.
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let troubles: Vec<&str> =
            log.lines().filter(|line| line.contains(" WARN ") || line.contains(" ERROR ")).collect();
        for line in troubles.iter().take(MOST_LOG_LINES_SHOWN) {
            eprintln!("server log: {line}");
        }
        if troubles.len() > MOST_LOG_LINES_SHOWN {
            eprintln!("server log: ... and {} more warnings and errors", troubles.len() - MOST_LOG_LINES_SHOWN);
        }
    }
}

/// The most of a server's warnings and errors shown when it stops.
const MOST_LOG_LINES_SHOWN: usize = 10;

/// Runs `tessera admin ...` against the database and returns its JSON answer.
pub fn admin(bin: &Path, database_url: &str, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = Command::new(bin)
        .arg("admin")
        .args(args)
        .env("TESSERA_DATABASE_URL", database_url)
        .env_remove("TESSERA_LISTEN")
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!("tessera admin {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).context("tessera admin printed no JSON")
}

/// A process's resident memory, MiB (0 if it cannot be read).
pub fn rss_mib(pid: u32) -> f64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return 0.0 };
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kib.unwrap_or(0.0) / 1024.0
}

/// CPU time, in clock ticks, spent so far by a process (all its threads).
pub fn process_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    // The command name may contain spaces; fields after its closing parenthesis are fixed.
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let get = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// CPU time of every process named `postgres` (the server and its backends).
pub fn postgres_ticks() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"))
        .map(process_ticks)
        .sum()
}

/// (process, total) clock ticks of all CPUs together, from /proc/stat: "process" is time spent
/// in processes (user, nice, system, steal), leaving out idle time and the interrupt handling
/// that loopback traffic itself causes (irq, softirq), which no process is charged for.
pub fn machine_ticks() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else { return (0, 0) };
    let Some(line) = stat.lines().next() else { return (0, 0) };
    let values: Vec<u64> = line.split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let at = |i: usize| values.get(i).copied().unwrap_or(0);
    let total: u64 = values.iter().take(8).sum();
    (at(0) + at(1) + at(2) + at(7), total)
}

pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
