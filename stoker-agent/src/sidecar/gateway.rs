//! The Ignition gateway as the sidecar uses it: the client rebuilt only when its URL changes,
//! and a per-sync wrapper that times the rescan and keeps its outcome, so that a sync whose
//! files landed but whose rescan failed still reports its counts (as `Error`, with the reason).

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use stoker_core::ignition::{IgnitionConfig, IgnitionGateway, ScanOutcome};
use stoker_core::{DesignerSessionPolicy, Gateway, Health, PreSyncCheck, SyncReport};

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

/// What one sync asked the gateway.
#[derive(Debug, Default)]
pub struct Asked {
    /// Designer sessions seen by the last check.
    pub designer_sessions: Option<Vec<String>>,
    /// The rescan, when one was asked: its outcome or its error.
    pub scan: Option<Result<ScanOutcome, stoker_core::Error>>,
}

/// The gateway for one sync: Designer checks pass through (under `proceed`, a check that
/// fails — no API key yet, say — is logged and the sync goes on, since its answer would not
/// stop the sync anyway); the rescan is timed and its outcome kept instead of failing the
/// pipeline (see [`ScanRecorder::take`]).
pub struct ScanRecorder {
    inner: IgnitionGateway,
    metrics: AgentMetrics,
    policy: DesignerSessionPolicy,
    asked: Mutex<Asked>,
}

impl ScanRecorder {
    /// Wraps `inner` for a profile with this Designer-session policy.
    pub fn new(
        inner: IgnitionGateway,
        metrics: AgentMetrics,
        policy: DesignerSessionPolicy,
    ) -> Self {
        ScanRecorder {
            inner,
            metrics,
            policy,
            asked: Mutex::new(Asked::default()),
        }
    }

    /// Asks for a rescan now (timed, recorded), whatever the last sync changed: after the
    /// gateway first answers, and to retry a rescan that failed.
    pub async fn scan(&self) -> Result<ScanOutcome, stoker_core::Error> {
        let started = Instant::now();
        let outcome = self.inner.scan().await;
        self.metrics.scanned(started.elapsed(), outcome.is_ok());
        match &outcome {
            Ok(scan) => tracing::info!(scan = %scan, "gateway rescanned"),
            Err(error) => tracing::warn!(%error, "gateway rescan failed"),
        }
        outcome
    }

    /// What the sync asked (once).
    pub fn take(&self) -> Asked {
        std::mem::take(&mut *self.asked.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn update(&self, change: impl FnOnce(&mut Asked)) {
        change(&mut self.asked.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

#[async_trait]
impl Gateway for ScanRecorder {
    async fn pre_sync(&self) -> stoker_core::Result<PreSyncCheck> {
        let check = match self.inner.pre_sync().await {
            Ok(check) => check,
            Err(error) if self.policy == DesignerSessionPolicy::Proceed => {
                tracing::warn!(error = %stoker_core::error::chain(&error), "could not list Designer sessions; syncing anyway (designerSessionPolicy: proceed)");
                return Ok(PreSyncCheck::default());
            }
            Err(error) => return Err(error),
        };
        let sessions = check.designer_sessions.clone();
        self.metrics.designer_sessions(sessions.len());
        self.update(|asked| asked.designer_sessions = Some(sessions));
        Ok(check)
    }

    async fn post_sync(&self, report: &SyncReport) -> stoker_core::Result<()> {
        tracing::debug!(changed = report.changed(), "asking the gateway to rescan");
        let outcome = self.scan().await;
        self.update(|asked| asked.scan = Some(outcome));
        Ok(())
    }

    async fn health(&self) -> stoker_core::Result<Health> {
        self.inner.health().await
    }
}
