//! The HTTP endpoints kubelet and Prometheus call: `/healthz`, `/readyz`, `/startupz` and
//! `/metrics`, shared by the operator and the agent's sidecar mode.
//!
//! Each probe answers `200 ok` or `503` with the reason in the body, so `kubectl describe pod`
//! shows why a probe fails.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

use crate::error::{Error, Result};

/// A probe's state: `Ok(())` passes, `Err(reason)` fails with that reason.
pub type ProbeState = std::result::Result<(), String>;

/// What the endpoints report; cheap to clone and to update from any task.
#[derive(Clone)]
pub struct Probes {
    inner: Arc<Inner>,
}

struct Inner {
    healthy: RwLock<ProbeState>,
    ready: RwLock<ProbeState>,
    started: RwLock<ProbeState>,
    metrics: Box<dyn Fn() -> String + Send + Sync>,
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probes")
            .field("healthy", &self.healthy())
            .field("ready", &self.ready())
            .field("started", &self.started())
            .finish()
    }
}

fn read(lock: &RwLock<ProbeState>) -> ProbeState {
    match lock.read() {
        Ok(state) => state.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

fn write(lock: &RwLock<ProbeState>, state: ProbeState) {
    match lock.write() {
        Ok(mut guard) => *guard = state,
        Err(poisoned) => *poisoned.into_inner() = state,
    }
}

impl Probes {
    /// Healthy, not ready, not started; `metrics` renders `/metrics`.
    ///
    /// ```
    /// let probes = stoker_k8s::probes::Probes::new(|| String::from("# EOF\n"));
    /// assert!(probes.ready().is_err());
    /// probes.set_ready(Ok(()));
    /// assert!(probes.ready().is_ok());
    /// ```
    pub fn new(metrics: impl Fn() -> String + Send + Sync + 'static) -> Self {
        Probes {
            inner: Arc::new(Inner {
                healthy: RwLock::new(Ok(())),
                ready: RwLock::new(Err("starting".to_owned())),
                started: RwLock::new(Err("starting".to_owned())),
                metrics: Box::new(metrics),
            }),
        }
    }

    /// `/healthz`.
    pub fn healthy(&self) -> ProbeState {
        read(&self.inner.healthy)
    }
    /// `/readyz`.
    pub fn ready(&self) -> ProbeState {
        read(&self.inner.ready)
    }
    /// `/startupz`.
    pub fn started(&self) -> ProbeState {
        read(&self.inner.started)
    }
    /// Sets `/healthz`.
    pub fn set_healthy(&self, state: ProbeState) {
        write(&self.inner.healthy, state);
    }
    /// Sets `/readyz`.
    pub fn set_ready(&self, state: ProbeState) {
        write(&self.inner.ready, state);
    }
    /// Sets `/startupz`.
    pub fn set_started(&self, state: ProbeState) {
        write(&self.inner.started, state);
    }

    /// The router serving the four endpoints.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/healthz",
                get(|State(p): State<Probes>| async move { answer(p.healthy()) }),
            )
            .route(
                "/livez",
                get(|State(p): State<Probes>| async move { answer(p.healthy()) }),
            )
            .route(
                "/readyz",
                get(|State(p): State<Probes>| async move { answer(p.ready()) }),
            )
            .route(
                "/startupz",
                get(|State(p): State<Probes>| async move { answer(p.started()) }),
            )
            .route(
                "/metrics",
                get(|State(p): State<Probes>| async move { openmetrics((p.inner.metrics)()) }),
            )
            .with_state(self.clone())
    }

    /// Serves the endpoints on `listen` until `shutdown` turns true. Returns the bound address
    /// (useful with port 0) once listening.
    pub async fn serve(
        &self,
        listen: SocketAddr,
        shutdown: watch::Receiver<bool>,
    ) -> Result<SocketAddr> {
        let bound = serve_router(self.router(), listen, shutdown).await?;
        tracing::info!(address = %bound, "serving /healthz /readyz /startupz /metrics");
        Ok(bound)
    }
}

fn openmetrics(text: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Serves only `/metrics` on `listen` until `shutdown` turns true (the agent's own metrics
/// port, apart from its probes, as stoker-operator v0.5.1's agent had). Returns the bound
/// address once listening.
pub async fn serve_metrics(
    metrics: impl Fn() -> String + Clone + Send + Sync + 'static,
    listen: SocketAddr,
    shutdown: watch::Receiver<bool>,
) -> Result<SocketAddr> {
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move { openmetrics(metrics()) }
        }),
    );
    let bound = serve_router(router, listen, shutdown).await?;
    tracing::info!(address = %bound, "serving /metrics");
    Ok(bound)
}

async fn serve_router(
    router: Router,
    listen: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| Error::Serve {
            address: listen.to_string(),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| Error::Serve {
        address: listen.to_string(),
        source,
    })?;
    tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(listener, router)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(%error, "HTTP server stopped");
        }
    });
    Ok(bound)
}

fn answer(state: ProbeState) -> Response {
    match state {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}
