//! The server loop: hyper's connection builder with the limits `axum::serve` does not expose.
//!
//! - a **header read timeout**: a client that has not sent its request line and headers within
//!   `header_read_timeout` seconds (one that sends nothing, or trickles its headers byte by byte)
//!   is disconnected; an idle keep-alive connection is closed after the same time;
//! - a **header size limit**: request line plus headers over `max_header_bytes` get 431 and the
//!   connection is closed (on HTTP/2, the header list is capped at the same size).
//!
//! Shutdown is graceful: once `shutdown` completes no connection is accepted, and in-flight
//! requests finish before [`serve`] returns.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::config::HttpSettings;

pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: &HttpSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let header_read_timeout = Duration::from_secs(settings.header_read_timeout_secs);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(settings.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX));

    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually out of file descriptors: wait instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: axum::http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            app.clone().oneshot(request.map(Body::new))
        });
        let builder = builder.clone();
        // Watched from now on, so that shutdown waits for this connection too (at most the
        // header read timeout if it never says anything).
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // The builder reads the first bytes to tell HTTP/1 from HTTP/2 before hyper's header
            // timer starts, so a client that sends nothing at all is timed out here.
            let mut first = [0u8; 1];
            match tokio::time::timeout(header_read_timeout, stream.peek(&mut first)).await {
                Ok(Ok(read)) if read > 0 => {}
                _ => return,
            }
            let connection = watcher.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
            if let Err(e) = connection.await {
                // A client that timed out, sent oversized headers or went away: not Tessera's fault.
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
