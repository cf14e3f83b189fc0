//! The application: shared state, the one router that lists every route, and the server loop.

use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::{middleware, Router};
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;

use crate::config::Settings;
use crate::http::middleware::every_request;
use crate::limits::Limits;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub settings: Settings,
    pub store: Store,
    pub limits: Limits,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(settings: Settings, store: Store) -> Self {
        let limits = Limits::new(&settings.limits);
        AppState(Arc::new(Inner { settings, store, limits }))
    }
}

/// Connects to the database and, unless told not to, applies pending migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store =
        Store::connect(&settings.database_url).await.map_err(|e| anyhow::anyhow!("cannot open the database: {e}"))?;
    if settings.migrate_on_start {
        store.migrate().await?;
    }
    Ok(store)
}

pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.settings.http.request_timeout_secs);
    Router::new()
        .merge(crate::console::routes(&state))
        .merge(crate::oauth::routes())
        .merge(crate::api::routes())
        .merge(crate::ops::routes())
        .layer(DefaultBodyLimit::max(state.settings.http.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(middleware::from_fn(every_request))
        .with_state(state)
}

/// Serves until `shutdown` completes, then lets in-flight requests finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let janitor = crate::ops::janitor::spawn(state.store.clone());
    // With a provisioner configured, `serve` is its own agent: one process runs a small platform.
    let data_plane = crate::dataplane::spawn(state.store.clone(), state.settings.data_plane.clone());
    let http = state.settings.http.clone();
    crate::http::server::serve(listener, router(state), &http, shutdown).await;
    janitor.abort();
    if let Some(task) = data_plane {
        task.abort();
    }
    Ok(())
}

/// `tessera serve`.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
    tracing::info!(listen = %settings.listen, issuer = %settings.issuer(), engine = ?store.engine(), "tessera is serving");
    let state = AppState::new(settings, store.clone());
    run(listener, state, shutdown_signal()).await?;
    store.close().await;
    tracing::info!("tessera stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
