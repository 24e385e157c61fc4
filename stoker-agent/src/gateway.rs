//! The Ignition gateway for `stoker-agent sync --gateway-url`, and what the sync asked of it,
//! for the output.

use serde::Serialize;
use stoker_core::ignition::{IgnitionConfig, IgnitionGateway, ScanOutcome};
use stoker_sync::pipeline::{DesignerCheck, Outcome, Rescan};

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

impl GatewayOutcome {
    /// What the pipeline's [`Outcome`] says the gateway at `url` answered.
    pub fn new(url: &str, outcome: &Outcome) -> Self {
        let mut gateway = GatewayOutcome {
            url: url.to_owned(),
            rescan_owed: outcome.rescan_owed(),
            ..GatewayOutcome::default()
        };
        match &outcome.designers {
            DesignerCheck::Answered(sessions) => {
                gateway.designer_sessions = Some(sessions.clone());
            }
            DesignerCheck::Down(error) => {
                gateway.unreachable = Some(stoker_core::error::chain(error));
            }
            DesignerCheck::NotAsked | DesignerCheck::Failed(_) => {}
        }
        match &outcome.rescan {
            Rescan::Done { scan, .. } => gateway.scan = Some(scan.clone()),
            Rescan::Failed { error, .. } => {
                gateway.scan_error = Some(stoker_core::error::chain(error));
            }
            Rescan::NotAsked | Rescan::Owed => {}
        }
        gateway
    }
}
