//! The application being fed: the `Gateway` trait.

use async_trait::async_trait;

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
    /// Called after a sync that changed files: ask the gateway to rescan.
    async fn post_sync(&self, report: &SyncReport) -> Result<()>;
    /// Is the gateway up?
    async fn health(&self) -> Result<Health>;
}
