//! A server served on a loopback port by a thread of its own (with its own current-thread
//! runtime), so that synchronous tests and `#[tokio::test]`s alike can use it. Dropping the
//! handle stops it at once.

use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use axum::Router;
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// A running server: its address, and what stops it. Dropping it (or [`Served::stop`]) stops
/// the server and waits for its thread.
#[derive(Debug)]
pub(crate) struct Served {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Sending (or dropping) stops the server; `None` once stopped.
    stop: Option<oneshot::Sender<()>>,
    /// The thread serving it; `None` once joined.
    thread: Option<JoinHandle<()>>,
}

impl Served {
    /// Stops the server and waits for its thread; does nothing the second time.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds a free loopback port and serves `router` there; `name` names the thread and the
/// log lines (`stoker-recorder`, `stoker-github-api`).
pub(crate) fn serve(name: &'static str, router: Router) -> Result<Served> {
    let listener = std::net::TcpListener::bind(crate::process::loopback(0))
        .map_err(|e| Error::io("bind a loopback test server", e))?;
    serve_with(name, listener, move |listener| async move {
        axum::serve(listener, router).await
    })
}

/// Runs `serve` on `listener` (already bound) until stopped; `name` names the thread
/// (`{name}-{port}`) and the log lines. Stopping drops the runtime, which cancels in-flight
/// requests.
pub(crate) fn serve_with<F, Fut, E>(
    name: &'static str,
    listener: std::net::TcpListener,
    serve: F,
) -> Result<Served>
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: Future<Output = std::result::Result<(), E>>,
    E: Display,
{
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
                // Turning the listener into Tokio's needs the runtime, hence here.
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::error!(server = name, error = %e, "listener");
                        return;
                    }
                };
                tokio::select! {
                    result = serve(listener) => {
                        if let Err(e) = result {
                            tracing::error!(server = name, error = %e, "stopped");
                        }
                    }
                    _ = stopped => {}
                }
            });
        })
        .map_err(|e| Error::io("spawn server thread", e))?;
    Ok(Served {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}
