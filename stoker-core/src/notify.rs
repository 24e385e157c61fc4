//! Telling people what happened: the `Notifier` trait.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Revision, error::Result};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EventKind {
    /// A sync finished and changed or confirmed the live files.
    SyncCompleted,
    /// A sync failed.
    SyncFailed,
    /// A new revision was resolved.
    RefUpdated,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// Which gateway it concerns.
    pub gateway: String,
    /// The revision involved.
    pub revision: Option<Revision>,
    /// One human-readable line.
    pub message: String,
}

/// Sends events somewhere (a webhook, Slack, Teams, PagerDuty).
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one event. Failures are reported, never retried forever.
    async fn notify(&self, event: &Event) -> Result<()>;
}
