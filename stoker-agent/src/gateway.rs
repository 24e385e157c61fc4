//! The Ignition gateway for `stoker-agent sync --gateway-url`: what the sync asked of it, kept
//! for the output.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use serde::Serialize;
use stoker_core::ignition::{IgnitionConfig, IgnitionGateway, ScanOutcome};
use stoker_core::{Gateway, Health, PreSyncCheck, SyncReport};

use crate::cli::SyncArgs;

/// The gateway client the flags describe, if `--gateway-url` was given.
pub fn from_args(args: &SyncArgs) -> anyhow::Result<Option<IgnitionGateway>> {
    let Some(url) = &args.gateway_url else {
        return Ok(None);
    };
    let mut config = IgnitionConfig::new(url.clone())
        .with_insecure_skip_tls_verify(args.gateway_insecure_skip_tls_verify);
    if let Some(file) = &args.gateway_api_key_file {
        config = config.with_api_key_file(file);
    }
    if let Some(file) = &args.gateway_ca_file {
        config = config.with_ca_file(file);
    }
    Ok(Some(IgnitionGateway::new(config)?))
}

/// What the sync asked the gateway and what it answered (the `gateway` part of the output).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayOutcome {
    /// The gateway's base URL.
    pub url: String,
    /// The Designer sessions open at the last check before the sync (`None`: not checked, as
    /// in a dry run).
    pub designer_sessions: Option<Vec<String>>,
    /// The rescan, when one was asked for and succeeded.
    pub scan: Option<ScanOutcome>,
    /// Why the rescan failed, when it did (the files were synced all the same).
    pub scan_error: Option<String>,
}

/// Wraps the Ignition client for the pipeline: records the Designer sessions seen and the
/// rescan's outcome. A failed rescan is recorded, not returned, so that the pipeline still
/// hands back the report of the files it wrote; [`Recorder::take_scan_error`] gives it back.
pub struct Recorder {
    inner: IgnitionGateway,
    outcome: Mutex<GatewayOutcome>,
    scan_error: Mutex<Option<stoker_core::Error>>,
}

impl Recorder {
    /// Records what `inner` is asked.
    pub fn new(inner: IgnitionGateway) -> Self {
        let outcome = GatewayOutcome {
            url: inner.url().to_owned(),
            ..GatewayOutcome::default()
        };
        Recorder {
            inner,
            outcome: Mutex::new(outcome),
            scan_error: Mutex::new(None),
        }
    }

    /// What was recorded so far.
    pub fn outcome(&self) -> GatewayOutcome {
        self.outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The rescan's error, if it failed (once).
    pub fn take_scan_error(&self) -> Option<stoker_core::Error> {
        self.scan_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn update(&self, change: impl FnOnce(&mut GatewayOutcome)) {
        change(&mut self.outcome.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

#[async_trait]
impl Gateway for Recorder {
    async fn pre_sync(&self) -> stoker_core::Result<PreSyncCheck> {
        let check = self.inner.pre_sync().await?;
        self.update(|o| o.designer_sessions = Some(check.designer_sessions.clone()));
        Ok(check)
    }

    async fn post_sync(&self, report: &SyncReport) -> stoker_core::Result<()> {
        tracing::debug!(changed = report.changed(), "asking the gateway to rescan");
        match self.inner.scan().await {
            Ok(scan) => self.update(|o| o.scan = Some(scan)),
            Err(error) => {
                self.update(|o| o.scan_error = Some(error.to_string()));
                *self
                    .scan_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(error);
            }
        }
        Ok(())
    }

    async fn health(&self) -> stoker_core::Result<Health> {
        self.inner.health().await
    }
}
