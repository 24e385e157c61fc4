//! `stoker-agent sidecar`: the agent's Kubernetes mode, injected next to each Ignition gateway.
//!
//! Configured by the environment the pod injector sets ([`config`]); watches the metadata
//! ConfigMap `stoker-metadata-{CR_NAME}` and its own pod ([`watch`]); decides what to sync
//! ([`plan`]); syncs with the engine's `Pipeline`, the `git` source ([`source`]) and the
//! Ignition gateway client ([`gateway`]); reports through its status ConfigMap and Events
//! ([`report`]) and Prometheus metrics ([`metrics`]); all driven by one loop ([`agent`]),
//! whose knowledge of the gateway and of its own start is typed ([`state`]). The Kubernetes
//! parts ([`plan`], [`report`], [`watch`]) live in `stoker_k8s::agent`.
//!
//! Endpoints (on `PROBE_ADDRESS`, default `0.0.0.0:8082`):
//!
//! | path | passes when |
//! |---|---|
//! | `/startupz` | the first sync finished (files in place), or syncing is paused |
//! | `/readyz` | started, and not shutting down (fails at once on SIGTERM) |
//! | `/healthz` | the sync loop and the watches are running |
//! | `/metrics` | always: OpenMetrics text |
//!
//! `/metrics` is also served alone on `METRICS_ADDRESS` (default `0.0.0.0:8083`, the container
//! port `metrics`), as stoker-operator v0.5.1's agent did.
//!
//! SIGTERM (or SIGINT): readiness fails at once; a sync in flight gets `SHUTDOWN_GRACE_SECONDS`
//! to finish; the process then exits 0.

pub mod agent;
pub mod config;
pub mod gateway;
pub mod metrics;
pub mod source;
pub mod state;

// The agent's Kubernetes logic lives in stoker-k8s; reachable here under its old paths.
pub use stoker_k8s::agent::{plan, report, watch};

/// The agent's version, as reported in `agentVersion`.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

use std::process::ExitCode;

use anyhow::Context as _;
use tokio::sync::watch as channel;

pub use config::{SidecarArgs, SidecarConfig};

use crate::sidecar::agent::Agent;
use crate::sidecar::metrics::AgentMetrics;
use crate::sidecar::plan::Inputs;
use crate::sidecar::report::StatusReporter;
use stoker_k8s::probes::Probes;

/// Runs the sidecar until SIGTERM/SIGINT; exits 0 after a graceful shutdown.
pub async fn run(args: SidecarArgs) -> anyhow::Result<ExitCode> {
    let config = SidecarConfig::from_args(&args)?;
    tracing::info!(
        pod = %config.agent.pod_name,
        namespace = %config.agent.pod_namespace,
        gatewaysync = %config.agent.cr_name,
        data = %config.data_path.display(),
        cache = %config.repo_path.display(),
        version = AGENT_VERSION,
        "stoker-agent sidecar starting"
    );

    let metrics = AgentMetrics::new();
    let probes = {
        let metrics = metrics.clone();
        Probes::new(move || metrics.encode())
    };
    probes.set_started(Err("starting".to_owned()));
    // Two signals: the loop stops on SIGTERM; the probe server only when the process ends
    // (it keeps answering /readyz with 503 meanwhile).
    let (stop_tx, stop_rx) = channel::channel(false);
    let (probes_stop_tx, probes_stop_rx) = channel::channel(false);
    let bound = probes
        .serve(config.probe_address, probes_stop_rx.clone())
        .await
        .with_context(|| {
            format!(
                "serving the probes on {} (PROBE_ADDRESS)",
                config.probe_address
            )
        })?;
    tracing::info!(address = %bound, "serving /startupz /healthz /readyz /metrics");
    let metrics_bound = {
        let metrics = metrics.clone();
        stoker_k8s::probes::serve_metrics(
            move || metrics.encode(),
            config.metrics_address,
            probes_stop_rx.clone(),
        )
        .await
        .with_context(|| {
            format!(
                "serving /metrics on {} (METRICS_ADDRESS)",
                config.metrics_address
            )
        })?
    };
    tracing::info!(address = %metrics_bound, "serving /metrics");

    {
        let probes = probes.clone();
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            let signal = wait_for_signal().await;
            tracing::info!(signal, "shutting down: /readyz fails from now on");
            probes.set_ready(Err("shutting down".to_owned()));
            let _ = stop_tx.send(true);
        });
    }

    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster service account, or KUBECONFIG)")?;
    let status = StatusReporter::load(client.clone(), &config.agent, AGENT_VERSION).await;
    let (inputs_tx, inputs_rx) = channel::channel(Inputs::default());
    let watches = watch::spawn(client, &config.agent, inputs_tx);

    Agent::new(config, metrics, probes, status, inputs_rx, stop_rx)
        .run()
        .await;

    for task in watches {
        task.abort();
    }
    let _ = probes_stop_tx.send(true);
    tracing::info!("stoker-agent sidecar stopped");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C), naming it.
async fn wait_for_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                Ok(()) = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the agent");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
