//! The Ignition gateway for `stoker-agent sync --gateway-url`: what the sync asked of it, kept
//! for the output.

use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use serde::Serialize;
use stoker_core::ignition::{IgnitionConfig, IgnitionGateway, ScanOutcome};
use stoker_core::{Gateway, GatewayErrorKind, Health, PreSyncCheck, SyncReport};

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
    /// Why the gateway counts as down, when it did not answer the Designer-session check
    /// (nothing listening, a timeout, or 503 while it starts): the files are synced all the
    /// same, as the sidecar does before the gateway starts, and it is not asked to rescan.
    pub unreachable: Option<String>,
    /// The files changed but the gateway did not rescan them (down, or the rescan failed):
    /// the exit status is [`RESCAN_OWED`](crate::exit::RESCAN_OWED).
    pub rescan_owed: bool,
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
        let check = match self.inner.pre_sync().await {
            Ok(check) => check,
            // No gateway running means no Designer connected to it either: sync the files
            // (it reads them when it starts), owe the rescan.
            Err(error) if is_down(&error) => {
                let why = stoker_core::error::chain(&error);
                tracing::warn!(error = %why, url = %self.inner.url(), "the gateway is not answering: syncing the files only");
                self.update(|o| o.unreachable = Some(why));
                return Ok(PreSyncCheck::default());
            }
            Err(error) => return Err(error),
        };
        self.update(|o| o.designer_sessions = Some(check.designer_sessions.clone()));
        Ok(check)
    }

    async fn post_sync(&self, report: &SyncReport) -> stoker_core::Result<()> {
        if self.outcome().unreachable.is_some() {
            tracing::debug!(
                changed = report.changed(),
                "the gateway was down before the sync: not asking it to rescan"
            );
            self.update(|o| o.rescan_owed = true);
            return Ok(());
        }
        tracing::debug!(changed = report.changed(), "asking the gateway to rescan");
        match self.inner.scan().await {
            Ok(scan) => self.update(|o| o.scan = Some(scan)),
            Err(error) => {
                self.update(|o| {
                    o.scan_error = Some(stoker_core::error::chain(&error));
                    o.rescan_owed = true;
                });
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

/// Whether a failed Designer-session check means the gateway is not running (yet): nothing
/// answered, or it answered 503 (starting, commissioning). Decided on the error's kind and
/// status, not its text.
pub fn is_down(error: &stoker_core::Error) -> bool {
    matches!(
        error,
        stoker_core::Error::Gateway {
            kind: GatewayErrorKind::Unreachable,
            ..
        } | stoker_core::Error::Gateway {
            status: Some(503),
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway_error(kind: GatewayErrorKind, status: Option<u16>) -> stoker_core::Error {
        stoker_core::Error::Gateway {
            method: "GET",
            url: "http://127.0.0.1:1/data/api/v1/designers".into(),
            status,
            kind,
            message: "test".into(),
            source: None,
        }
    }

    #[test]
    fn only_no_answer_or_503_counts_as_down() {
        assert!(is_down(&gateway_error(GatewayErrorKind::Unreachable, None)));
        assert!(is_down(&gateway_error(GatewayErrorKind::Status, Some(503))));
        assert!(!is_down(&gateway_error(
            GatewayErrorKind::Status,
            Some(500)
        )));
        assert!(!is_down(&gateway_error(GatewayErrorKind::Auth, Some(401))));
        assert!(!is_down(&gateway_error(
            GatewayErrorKind::Certificate,
            None
        )));
        assert!(!is_down(&stoker_core::Error::template("t", "m")));
    }
}
