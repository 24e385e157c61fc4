//! Telling people what happened: the [`Notifier`] trait, the [`Event`] it delivers, and (feature
//! `notify`) the built-in webhook notifiers and a [`Dispatcher`](dispatch::Dispatcher) that
//! delivers in the background.
//!
//! Built-ins, one per kind of receiver ([`WebhookType`]):
//!
//! | type | payload | credentials |
//! |---|---|---|
//! | [`slack::SlackNotifier`] | incoming webhook `{"text": …, "blocks": […]}` | the URL is the secret |
//! | [`teams::TeamsNotifier`] | a message with one Adaptive Card (Teams Workflows and incoming webhooks) | the URL is the secret |
//! | [`pagerduty::PagerDutyNotifier`] | Events API v2 `trigger` / `resolve` with a stable `dedup_key` | the routing key |
//! | [`generic::GenericNotifier`] | the [`Event`] as JSON, `X-Stoker-Signature-256: sha256=HEX` | an optional HMAC key |
//!
//! Webhook URLs carry their credential (Slack's and Teams' are bearer URLs): no error, log line
//! or `Debug` output of this module contains one. Errors name the webhook by the label it was
//! built with (`webhooks[0] (slack)`).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{Revision, error::Result};

#[cfg(feature = "notify")]
pub mod dispatch;
#[cfg(feature = "notify")]
pub mod generic;
#[cfg(feature = "notify")]
pub mod pagerduty;
#[cfg(feature = "notify")]
pub mod slack;
#[cfg(feature = "notify")]
pub mod teams;
#[cfg(feature = "notify")]
mod webhook;

#[cfg(feature = "notify")]
pub use webhook::{WebhookConfig, WebhookType, build};

/// What happened.
///
/// Problems ([`EventKind::is_problem`]) open something a person should look at; each has a
/// recovery kind ([`EventKind::resolves`]) sent when it clears, which closes a PagerDuty
/// incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(description = ""))]
#[non_exhaustive]
pub enum EventKind {
    /// A sync finished and changed or confirmed the live files; for a fleet, every gateway
    /// is synced to a new commit.
    SyncCompleted,
    /// A sync failed; for a fleet, some gateways failed (the message names them).
    SyncFailed,
    /// A new revision was resolved.
    RefUpdated,
    /// The gateways that failed are synced again (resolves [`EventKind::SyncFailed`]).
    SyncRecovered,
    /// Gateways stay at another revision than the resolved one once a rollout has settled
    /// (pinned with `stoker.io/ref-override`, or stuck).
    RefSkew,
    /// Every gateway is at the resolved revision again (resolves [`EventKind::RefSkew`]).
    RefSkewCleared,
    /// A gateway could not be asked to rescan after a sync.
    ScanFailure,
    /// The gateway rescans again (resolves [`EventKind::ScanFailure`]).
    ScanRecovered,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 8] = [
        EventKind::SyncCompleted,
        EventKind::SyncFailed,
        EventKind::RefUpdated,
        EventKind::SyncRecovered,
        EventKind::RefSkew,
        EventKind::RefSkewCleared,
        EventKind::ScanFailure,
        EventKind::ScanRecovered,
    ];

    /// The name users write in `spec.alerting.webhooks[].on` (`SyncFailed`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::SyncCompleted => "SyncCompleted",
            EventKind::SyncFailed => "SyncFailed",
            EventKind::RefUpdated => "RefUpdated",
            EventKind::SyncRecovered => "SyncRecovered",
            EventKind::RefSkew => "RefSkew",
            EventKind::RefSkewCleared => "RefSkewCleared",
            EventKind::ScanFailure => "ScanFailure",
            EventKind::ScanRecovered => "ScanRecovered",
        }
    }

    /// The kind spelled `name` ([`EventKind::as_str`]), if any.
    ///
    /// ```
    /// use stoker_core::EventKind;
    /// assert_eq!(EventKind::parse("RefSkew"), Some(EventKind::RefSkew));
    /// assert_eq!(EventKind::parse("refskew"), None);
    /// ```
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// True for a problem someone should look at (it opens a PagerDuty incident).
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            EventKind::SyncFailed | EventKind::RefSkew | EventKind::ScanFailure
        )
    }

    /// The problem this kind clears, for a recovery; `None` for every other kind.
    ///
    /// ```
    /// use stoker_core::EventKind;
    /// assert_eq!(EventKind::SyncRecovered.resolves(), Some(EventKind::SyncFailed));
    /// assert_eq!(EventKind::SyncFailed.resolves(), None);
    /// ```
    pub fn resolves(self) -> Option<EventKind> {
        match self {
            EventKind::SyncRecovered => Some(EventKind::SyncFailed),
            EventKind::RefSkewCleared => Some(EventKind::RefSkew),
            EventKind::ScanRecovered => Some(EventKind::ScanFailure),
            _ => None,
        }
    }

    /// Whether a receiver that subscribed to `on` gets this kind: listed, or the recovery of a
    /// listed problem (who hears of a failure hears that it cleared). An empty `on` takes every
    /// kind.
    ///
    /// ```
    /// use stoker_core::EventKind;
    /// let on = [EventKind::SyncFailed];
    /// assert!(EventKind::SyncRecovered.selected_by(&on));
    /// assert!(!EventKind::SyncCompleted.selected_by(&on));
    /// assert!(EventKind::SyncCompleted.selected_by(&[]));
    /// ```
    pub fn selected_by(self, on: &[EventKind]) -> bool {
        on.is_empty()
            || on.contains(&self)
            || self.resolves().is_some_and(|problem| on.contains(&problem))
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// What it concerns: a gateway's name for one gateway's sync (the agent, the pipeline);
    /// the `GatewaySync` as `namespace/name` for a fleet-level event (the operator). PagerDuty
    /// incidents are keyed by it.
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
