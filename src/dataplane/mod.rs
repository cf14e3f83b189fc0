//! The data plane: a reconciler that converges the world to what the API recorded.
//!
//! ```text
//! pending ──claim──> provisioning ──server answers──> active ──(crash)──> restarted
//!                         │ (no port, no binary, server exits, 3 attempts)       │
//!                         └──────────────> failed <──── restart fails ───────────┘
//! deleting ──server stopped, data removed──> (row removed)
//! ```
//!
//! Work is claimed with a lease in the shared database, so several agents never provision one
//! database twice, and a transition left by a dead agent is taken over once its lease ends. A
//! database lives on the host of the agent that provisioned it; an agent restarted under the same
//! id adopts its servers (or restarts them).

pub mod redis;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::process::Child;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::config::{DataPlaneSettings, Provisioner};
use crate::store::{self, Store, StoreError};

/// How long a claimed transition is ours before another agent may take it over.
const LEASE_SECONDS: i64 = 30;
const MAX_ATTEMPTS: i64 = 3;
const TICK: Duration = Duration::from_millis(500);

pub struct Reconciler {
    store: Store,
    settings: DataPlaneSettings,
    /// Servers this process started, so that exits are noticed and reaped.
    children: Mutex<HashMap<String, Child>>,
}

/// Starts the reconciler when a provisioner is configured.
pub fn spawn(store: Store, settings: DataPlaneSettings) -> Option<JoinHandle<()>> {
    if settings.provisioner == Provisioner::None {
        return None;
    }
    let reconciler = Arc::new(Reconciler { store, settings, children: Mutex::new(HashMap::new()) });
    tracing::info!(agent = %reconciler.settings.agent_id, "data plane: provisioning Redis databases on this host");
    Some(tokio::spawn(async move {
        loop {
            if let Err(e) = reconciler.tick(crate::time::now()).await {
                tracing::warn!(error = %e, "data plane pass failed; will retry");
            }
            tokio::time::sleep(TICK).await;
        }
    }))
}

impl Reconciler {
    async fn tick(&self, now: i64) -> Result<(), StoreError> {
        let agent = &self.settings.agent_id;
        for (id, state) in store::databases::work_for(self.store.reader(), agent, now).await? {
            if !store::databases::claim(self.store.writer(), &id, &state, agent, now, now + LEASE_SECONDS).await? {
                continue;
            }
            match state.as_str() {
                "deleting" => self.tear_down(&id).await?,
                _ => self.provision(&id).await?,
            }
        }
        self.keep_alive().await
    }

    async fn fail(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        tracing::warn!(database = id, reason, "database failed");
        store::databases::mark_failed(self.store.writer(), id, reason, crate::time::now()).await
    }

    async fn provision(&self, id: &str) -> Result<(), StoreError> {
        let Some(row) = store::databases::by_id(self.store.reader(), id).await? else { return Ok(()) };
        if row.tls == 1 {
            return self
                .fail(id, "the Redis data plane does not offer TLS yet; create the database with \"tls\": false")
                .await;
        }
        if row.attempts > MAX_ATTEMPTS {
            let reason = row.failure_reason.unwrap_or_else(|| "provisioning did not finish".into());
            return self.fail(id, &format!("gave up after {MAX_ATTEMPTS} attempts: {reason}")).await;
        }
        let port = match row.port.and_then(|p| u16::try_from(p).ok()) {
            Some(port) => port,
            None => match self.free_port().await? {
                Some(port) => {
                    store::databases::set_port(self.store.writer(), id, i64::from(port)).await?;
                    port
                }
                None => {
                    let (lo, hi) = self.settings.redis_ports;
                    return self.fail(id, &format!("no free port left in {lo}-{hi}")).await;
                }
            },
        };
        let server = redis::Server { settings: &self.settings, id, port, password: &row.password };
        match self.start_and_wait(&server).await {
            Ok(()) => {
                let endpoint = self.settings.redis_bind.to_string();
                store::databases::mark_active(
                    self.store.writer(),
                    id,
                    &self.settings.agent_id,
                    &endpoint,
                    i64::from(port),
                    crate::time::now(),
                )
                .await?;
                tracing::info!(database = id, port, "database active");
                Ok(())
            }
            Err(reason) => self.fail(id, &reason).await,
        }
    }

    async fn free_port(&self) -> Result<Option<u16>, StoreError> {
        let taken = store::databases::ports_of_agent(self.store.reader(), &self.settings.agent_id).await?;
        let (lo, hi) = self.settings.redis_ports;
        Ok((lo..=hi).find(|p| !taken.contains(&i64::from(*p)) && redis::port_is_free(self.settings.redis_bind, *p)))
    }

    /// Starts the server and waits up to ten seconds for it to answer.
    async fn start_and_wait(&self, server: &redis::Server<'_>) -> Result<(), String> {
        let mut child = server.start()?;
        for _ in 0..100 {
            if redis::ping(self.settings.redis_bind, server.port, server.password).await.is_ok() {
                self.children.lock().await.insert(server.id.to_owned(), child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("redis-server exited ({status}): {}", server.log_tail()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill().await;
        Err(format!("redis-server did not answer within 10 seconds: {}", server.log_tail()))
    }

    async fn tear_down(&self, id: &str) -> Result<(), StoreError> {
        let Some(row) = store::databases::by_id(self.store.reader(), id).await? else { return Ok(()) };
        if let Some(port) = row.port.and_then(|p| u16::try_from(p).ok()) {
            redis::stop(&self.settings, id, port, &row.password).await;
        }
        if let Some(mut child) = self.children.lock().await.remove(id) {
            let _ = child.kill().await;
        }
        let dir = redis::data_dir(&self.settings, id);
        if dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(database = id, error = %e, "could not remove the database's data");
                return Ok(());
            }
        }
        store::databases::finish_delete(self.store.writer(), id).await?;
        tracing::info!(database = id, "database deleted");
        Ok(())
    }

    /// Restarts this agent's servers that stopped answering (a crash, or an agent restart whose
    /// servers did not survive); adopts the ones that still answer.
    async fn keep_alive(&self) -> Result<(), StoreError> {
        for row in store::databases::active_of_agent(self.store.reader(), &self.settings.agent_id).await? {
            let Some(port) = row.port.and_then(|p| u16::try_from(p).ok()) else { continue };
            if redis::ping(self.settings.redis_bind, port, &row.password).await.is_ok() {
                continue;
            }
            if let Some(mut child) = self.children.lock().await.remove(&row.id) {
                let _ = child.try_wait();
            }
            tracing::warn!(database = %row.id, port, "database stopped answering; restarting it");
            let server = redis::Server { settings: &self.settings, id: &row.id, port, password: &row.password };
            if let Err(reason) = self.start_and_wait(&server).await {
                self.fail(&row.id, &format!("restart failed: {reason}")).await?;
            }
        }
        Ok(())
    }
}
