//! The Ignition gateway as the sidecar uses it: the client rebuilt only when its URL changes,
//! and its rescans timed and counted.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use stoker_core::ignition::{IgnitionConfig, IgnitionGateway, ScanOutcome};
use stoker_sync::pipeline::Rescan;

use crate::sidecar::metrics::AgentMetrics;

/// How the gateway client is built, apart from its URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayOptions {
    /// `API_KEY_FILE`.
    pub api_key_file: Option<PathBuf>,
    /// `GATEWAY_CA_FILE`.
    pub ca_file: Option<PathBuf>,
    /// `GATEWAY_INSECURE_SKIP_TLS_VERIFY`.
    pub insecure_skip_tls_verify: bool,
}

/// The gateway client, rebuilt only when the URL changes.
#[derive(Debug, Default)]
pub struct GatewayCache {
    current: Option<(String, IgnitionGateway)>,
}

impl GatewayCache {
    /// The client for `url`.
    pub fn get(
        &mut self,
        url: &str,
        options: &GatewayOptions,
    ) -> stoker_core::Result<IgnitionGateway> {
        if let Some((current, gateway)) = &self.current
            && current == url
        {
            return Ok(gateway.clone());
        }
        let mut config = IgnitionConfig::new(url)
            .with_insecure_skip_tls_verify(options.insecure_skip_tls_verify);
        if let Some(file) = &options.api_key_file {
            config = config.with_api_key_file(file);
        }
        if let Some(file) = &options.ca_file {
            config = config.with_ca_file(file);
        }
        let gateway = IgnitionGateway::new(config)?;
        self.current = Some((url.to_owned(), gateway.clone()));
        Ok(gateway)
    }
}

/// Asks for a rescan now (timed, recorded), whatever the last sync changed: after the gateway
/// first answers, and to retry a rescan that failed.
pub async fn scan_now(
    gateway: &IgnitionGateway,
    metrics: &AgentMetrics,
) -> Result<ScanOutcome, stoker_core::Error> {
    let started = Instant::now();
    let outcome = gateway.scan().await;
    record(metrics, started.elapsed(), outcome)
}

/// The pipeline's rescan, recorded as [`scan_now`] records its own; `None` when none was asked.
pub fn recorded_rescan(
    metrics: &AgentMetrics,
    rescan: Rescan,
) -> Option<Result<ScanOutcome, stoker_core::Error>> {
    match rescan {
        Rescan::Done { scan, took } => Some(record(metrics, took, Ok(scan))),
        Rescan::Failed { error, took } => Some(record(metrics, took, Err(error))),
        Rescan::NotAsked | Rescan::Owed => None,
    }
}

fn record(
    metrics: &AgentMetrics,
    took: Duration,
    outcome: Result<ScanOutcome, stoker_core::Error>,
) -> Result<ScanOutcome, stoker_core::Error> {
    metrics.scanned(took, outcome.is_ok());
    match &outcome {
        Ok(scan) => tracing::info!(scan = %scan, "gateway rescanned"),
        Err(error) => tracing::warn!(%error, "gateway rescan failed"),
    }
    outcome
}
