//! An axum router served on a loopback port by a thread of its own (with its own
//! current-thread runtime), so that synchronous tests and `#[tokio::test]`s alike can use it.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use axum::Router;
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// A running server: its address, the sender that stops it, and its thread.
pub(crate) struct Served {
    /// Where it listens (127.0.0.1, a free port).
    pub addr: SocketAddr,
    /// Dropping or sending stops the server.
    pub stop: oneshot::Sender<()>,
    /// The thread serving it.
    pub thread: JoinHandle<()>,
}

/// Binds a free loopback port and serves `router` there; `name` names the thread and the
/// log lines (`stoker-recorder`, `stoker-github-api`).
pub(crate) fn serve(name: &'static str, router: Router) -> Result<Served> {
    let listener = std::net::TcpListener::bind(crate::process::loopback(0))
        .map_err(|e| Error::io("bind a loopback test server", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("set_nonblocking", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("local_addr", e))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("build tokio runtime", e))?;
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("{name}-{}", addr.port()))
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    tracing::error!(server = name, "listener");
                    return;
                };
                tokio::select! {
                    result = axum::serve(listener, router) => {
                        if let Err(e) = result {
                            tracing::error!(server = name, error = %e, "stopped");
                        }
                    }
                    _ = stopped => {}
                }
            });
        })
        .map_err(|e| Error::io("spawn server thread", e))?;
    Ok(Served { addr, stop, thread })
}
