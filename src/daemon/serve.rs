//! Accepting and serving HTTP connections, with the limits a server facing the internet needs:
//! a deadline for each request's head, a cap on open connections, and a shutdown that waits for
//! requests in flight only so long.
//!
//! `axum::serve` sets no timer on hyper's connection builder, so hyper's header read timeout
//! never fires there: one client sending half a request head held its connection open forever,
//! and held a graceful shutdown with it. This loop is axum's, with the timer set and the limits
//! added. The body's deadline is a middleware (`http/body.rs`), since hyper has none.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::scheduler::stopped;

/// The server's limits (`server.*` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time to send a request's head, from when the connection opens or its previous response
    /// was sent (so also the idle keep-alive time).
    pub header_read_timeout: Duration,
    /// Time to send a request's whole body once its head arrived.
    pub body_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight and the background tasks.
    pub shutdown_timeout: Duration,
}

impl Limits {
    /// The defaults of `server.*`: generous for Retell's and the CRM integrators' clients, short
    /// enough that a slow or stuck client cannot hold a connection (or a shutdown) for long.
    pub const DEFAULT: Limits = Limits {
        header_read_timeout: Duration::from_secs(10),
        body_read_timeout: Duration::from_secs(30),
        max_connections: 1024,
        // Under Kubernetes' default 30 s grace before SIGKILL.
        shutdown_timeout: Duration::from_secs(20),
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// What a shutdown had to cut short.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stopped {
    /// Connections still open at the shutdown deadline, closed without their answer: whatever
    /// they were sending was not acknowledged.
    pub connections_cut: usize,
    /// Whether the background sync or dispatch was stopped at the deadline rather than at its
    /// own safe point (a page or a send not finished is redone by the next start).
    pub background_cut: bool,
}

impl Stopped {
    /// Whether everything finished before the deadline.
    pub fn clean(&self) -> bool {
        self.connections_cut == 0 && !self.background_cut
    }
}

/// Serves `router` on `listener` until `shutdown` turns true; then stops accepting (the
/// listener is closed, so new connections are refused at once rather than left waiting), asks
/// every connection to finish its request in hand, and waits for them at most
/// `limits.shutdown_timeout`. Returns when the stop began and how many connections had to be
/// closed at the deadline.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) -> (Instant, usize) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Connections over the cap are answered 503 by a task of their own; bounded too, so a flood
    // of them costs no more than the served ones. Beyond both, a connection is just closed.
    let refusals = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            // Reap finished connections so the set does not grow with the daemon's uptime.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        // Out of file descriptors and the like: the listener itself is fine,
                        // and retrying at once would spin.
                        tracing::warn!(%err, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if let Ok(permit) = permits.clone().try_acquire_owned() {
                    let router = router.clone();
                    let shutdown = shutdown.clone();
                    connections.spawn(connection(stream, router, limits, shutdown, permit));
                } else if let Ok(permit) = refusals.clone().try_acquire_owned() {
                    tracing::warn!(
                        max = limits.max_connections,
                        "too many open connections; answering 503"
                    );
                    connections.spawn(refuse(stream, limits, permit));
                }
            }
        }
    }
    let stop = Instant::now();
    drop(listener);
    let drained = tokio::time::timeout_at(stop + limits.shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    let cut = match drained {
        Ok(()) => 0,
        Err(_) => {
            let cut = connections.len();
            tracing::warn!(
                connections = cut,
                timeout = ?limits.shutdown_timeout,
                "shutdown timeout: closing connections with requests unfinished (not acknowledged)"
            );
            // Aborting drops each connection; a store transaction a handler started runs to
            // its end on the blocking pool regardless (see `AppState::blocking`).
            connections.shutdown().await;
            cut
        }
    };
    (stop, cut)
}

/// Serves one connection, finishing its request in hand when the shutdown begins.
async fn connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let service = TowerToHyperService::new(router);
    let conn = builder(limits).serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => log_end(result),
        _ = stopped(&mut shutdown) => {
            // Closes an idle connection at once; one with a request in hand answers it first
            // (a half-sent head waits at most the header read timeout, and the whole shutdown
            // at most `shutdown_timeout`).
            conn.as_mut().graceful_shutdown();
            log_end(conn.await);
        }
    }
}

/// Answers a connection over the cap with 503 and closes it. The request is read first (within
/// the header deadline): closing a socket with unread data resets it, and the client would
/// lose the answer.
async fn refuse(stream: TcpStream, limits: Limits, _permit: OwnedSemaphorePermit) {
    let service =
        hyper::service::service_fn(move |_request: hyper::Request<Incoming>| async move {
            let error = super::http::error::ApiError::unavailable(format!(
                "too many open connections (server.max_connections is {}); retry shortly",
                limits.max_connections
            ));
            Ok::<_, std::convert::Infallible>(axum::response::IntoResponse::into_response(error))
        });
    let mut builder = builder(limits);
    builder.keep_alive(false);
    log_end(
        builder
            .serve_connection(TokioIo::new(stream), service)
            .await,
    );
}

fn builder(limits: Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
}

fn log_end(result: Result<(), hyper::Error>) {
    if let Err(err) = result {
        // A client that went away, a head that never arrived: routine, not the daemon's fault.
        tracing::debug!(%err, "connection ended");
    }
}
