//! The Redis provisioner: one `redis-server` per database on this host, on a port from the
//! configured range, bound to the configured address, with its own data directory, password and
//! memory limit.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::config::DataPlaneSettings;

pub struct Server<'a> {
    pub settings: &'a DataPlaneSettings,
    pub id: &'a str,
    pub port: u16,
    pub password: &'a str,
}

impl Server<'_> {
    pub fn dir(&self) -> PathBuf {
        data_dir(self.settings, self.id)
    }

    fn config_text(&self, dir: &Path) -> String {
        // CONFIG and DEBUG are renamed away so that a database's user can neither read the
        // password nor reconfigure the server; data lives only in this database's directory.
        format!(
            "port {port}\nbind {bind}\nrequirepass {password}\ndir {dir}\nappendonly yes\nappendfsync everysec\n\
             save \"\"\nmaxmemory {maxmemory}\nmaxmemory-policy noeviction\nprotected-mode yes\ndaemonize no\n\
             pidfile {dir}/redis.pid\nlogfile {dir}/redis.log\nrename-command CONFIG \"\"\nrename-command DEBUG \"\"\n",
            port = self.port,
            bind = self.settings.redis_bind,
            password = self.password,
            dir = dir.display(),
            maxmemory = self.settings.redis_maxmemory,
        )
    }

    /// Writes the configuration (readable only by this user) and starts the server.
    pub fn start(&self) -> Result<Child, String> {
        let dir = self.dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let dir = dir.canonicalize().map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
        let config = dir.join("redis.conf");
        std::fs::write(&config, self.config_text(&dir))
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600));
        }
        let mut command = Command::new(&self.settings.redis_server);
        command
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // Its own process group: a Ctrl-C meant for Tessera does not take the databases down,
        // and a restarted agent adopts them.
        #[cfg(unix)]
        command.process_group(0);
        command.spawn().map_err(|e| format!("cannot start {}: {e}", self.settings.redis_server.display()))
    }

    /// The last lines of the server's log, to say why it failed.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir().join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(3).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

pub fn data_dir(settings: &DataPlaneSettings, id: &str) -> PathBuf {
    settings.redis_data_dir.join(id)
}

/// Whether nothing listens on `port` yet.
pub fn port_is_free(bind: IpAddr, port: u16) -> bool {
    TcpListener::bind(SocketAddr::new(bind, port)).is_ok()
}

/// AUTH + PING, within a second.
pub async fn ping(host: IpAddr, port: u16, password: &str) -> Result<(), String> {
    let url = format!("redis://:{password}@{}/", SocketAddr::new(host, port));
    let attempt = async {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut connection = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
        let pong: String = redis::cmd("PING").query_async(&mut connection).await.map_err(|e| e.to_string())?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(format!("unexpected answer {pong:?}"))
        }
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .unwrap_or_else(|_| Err("no answer within a second".into()))
}

/// Stops the server: `SHUTDOWN NOSAVE` if it answers, else the pid from its pid file.
pub async fn stop(settings: &DataPlaneSettings, id: &str, port: u16, password: &str) {
    let url = format!("redis://:{password}@{}/", SocketAddr::new(settings.redis_bind, port));
    let polite = async {
        let client = redis::Client::open(url).ok()?;
        let mut connection = client.get_multiplexed_async_connection().await.ok()?;
        let _: Result<(), _> = redis::cmd("SHUTDOWN").arg("NOSAVE").query_async(&mut connection).await;
        Some(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), polite).await;
    for _ in 0..30 {
        if port_is_free(settings.redis_bind, port) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Ok(pid) = std::fs::read_to_string(data_dir(settings, id).join("redis.pid")) {
        let _ = Command::new("kill").arg("-9").arg(pid.trim()).status().await;
    }
    for _ in 0..30 {
        if port_is_free(settings.redis_bind, port) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
