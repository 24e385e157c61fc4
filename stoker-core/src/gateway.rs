//! The application being fed: the `Gateway` trait.

use async_trait::async_trait;

use serde::Serialize;

use crate::{SyncReport, error::Result};

/// What the gateway said before a sync.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreSyncCheck {
    /// Open Ignition Designer sessions (user names or session ids).
    pub designer_sessions: Vec<String>,
}

/// The gateway's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Answering normally.
    Up,
    /// Answering, but not ready (still commissioning, 503…).
    Starting(String),
    /// Not answering.
    Down(String),
}

/// The application whose files Stoker manages (Ignition).
#[async_trait]
pub trait Gateway: Send + Sync {
    /// Asked before a sync: who is working in the Designer right now.
    async fn pre_sync(&self) -> Result<PreSyncCheck>;
    /// Called after a sync that changed files: ask the gateway to rescan; its answer.
    async fn post_sync(&self, report: &SyncReport) -> Result<ScanOutcome>;
    /// Is the gateway up?
    async fn health(&self) -> Result<Health>;
}

/// The answer to one request that succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointCall {
    /// `POST`, `GET`.
    pub method: &'static str,
    /// The endpoint's path (`/data/api/v1/scan/projects`).
    pub endpoint: &'static str,
    /// The HTTP status of the final answer.
    pub status: u16,
    /// Attempts it took (1 without retries).
    pub attempts: u32,
}

/// The gateway's answer to the rescan asked after a sync ([`Gateway::post_sync`]; Ignition's
/// `IgnitionGateway::scan`): both rescans, in the order they were asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanOutcome {
    /// `POST /data/api/v1/scan/projects`.
    pub projects: EndpointCall,
    /// `POST /data/api/v1/scan/config`.
    pub config: EndpointCall,
}

impl std::fmt::Display for ScanOutcome {
    /// `scan/projects 200, scan/config 200` (attempts shown when more than one).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let one = |call: &EndpointCall| {
            let name = call.endpoint.trim_start_matches("/data/api/v1/");
            if call.attempts > 1 {
                format!("{name} {} after {} attempts", call.status, call.attempts)
            } else {
                format!("{name} {}", call.status)
            }
        };
        write!(f, "{}, {}", one(&self.projects), one(&self.config))
    }
}
