//! Serving an axum router on a loopback port, with shutdown when the handle is dropped.

use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::SandboxError;

/// A router being served on `127.0.0.1:<port>`. Dropping it stops the server.
#[derive(Debug)]
pub struct Listener {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Listener {
    /// Bind `127.0.0.1:port` (0 picks a free port) and serve `router` on a background task.
    /// Must be called inside a tokio runtime.
    pub async fn bind(port: u16, router: Router) -> Result<Listener, SandboxError> {
        // Only loopback: the sandboxes hold fake credentials and must never be reachable
        // from another machine.
        let wanted = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = tokio::net::TcpListener::bind(wanted)
            .await
            .map_err(|source| SandboxError::Bind { port, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SandboxError::Bind { port, source })?;
        let (shutdown, task) = serve(listener, addr, router);
        Ok(Listener {
            addr,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// Stop accepting connections (clients then get "connection refused") and wait for
    /// in-flight requests, keeping the address for [`Listener::resume`]: a CRM that is
    /// unreachable for a while.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Serve `router` again on the same address after [`Listener::stop`]. A no-op while
    /// serving.
    pub async fn resume(&mut self, router: Router) -> Result<(), SandboxError> {
        if self.task.is_some() {
            return Ok(());
        }
        let port = self.addr.port();
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .map_err(|source| SandboxError::Bind { port, source })?;
        let (shutdown, task) = serve(listener, self.addr, router);
        self.shutdown = Some(shutdown);
        self.task = Some(task);
        Ok(())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting connections and wait for in-flight requests to finish.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

fn serve(
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    router: Router,
) -> (oneshot::Sender<()>, JoinHandle<()>) {
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(err) = served {
            tracing::warn!(%addr, error = %err, "sandbox listener stopped");
        }
    });
    (shutdown, task)
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Held ("timed out") requests would keep a graceful shutdown waiting; abort instead.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
