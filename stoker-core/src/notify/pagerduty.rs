//! PagerDuty Events API v2: a problem ([`EventKind::is_problem`]) `trigger`s an alert, its
//! recovery ([`EventKind::resolves`]) `resolve`s it. Both carry the same `dedup_key`, made of
//! what the event concerns and the problem's kind, so a resolve closes the incident the trigger
//! opened and a repeated trigger adds to it instead of opening another.
//!
//! Other kinds (`SyncCompleted`, `RefUpdated`) are not sent: they need nobody's attention.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::webhook::{Poster, WebhookConfig, truncate};
use crate::error::Result;
use crate::notify::{Event, EventKind, Notifier};

/// Where events go unless the webhook gives another URL (EU accounts use
/// `https://events.eu.pagerduty.com/v2/enqueue`).
pub const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// PagerDuty's limit on `dedup_key`.
const MAX_DEDUP_KEY: usize = 255;
/// PagerDuty's limit on `payload.summary`.
const MAX_SUMMARY: usize = 1024;

/// Triggers and resolves PagerDuty alerts with an integration's routing key.
pub struct PagerDutyNotifier {
    poster: Poster,
    routing_key: String,
}

impl std::fmt::Debug for PagerDutyNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagerDutyNotifier").finish_non_exhaustive()
    }
}

impl PagerDutyNotifier {
    /// A notifier for `config`: its secret is the routing key (required), its URL defaults to
    /// [`DEFAULT_URL`].
    pub fn new(config: &WebhookConfig) -> Result<Self> {
        let routing_key = config
            .secret
            .as_deref()
            .map(|key| String::from_utf8_lossy(key).trim().to_owned())
            .filter(|key| !key.is_empty())
            .ok_or_else(|| config.config_error("no routing key"))?;
        let url = config.parsed_url(Some(DEFAULT_URL))?;
        Ok(PagerDutyNotifier {
            poster: Poster::new(config, url)?,
            routing_key,
        })
    }
}

#[async_trait]
impl Notifier for PagerDutyNotifier {
    async fn notify(&self, event: &Event) -> Result<()> {
        let Some(body) = payload(event, &self.routing_key) else {
            return Ok(());
        };
        self.poster
            .post(serde_json::to_vec(&body).unwrap_or_default(), &[])
            .await
    }
}

/// The `dedup_key` of the alert a problem of `kind` about `subject` opens: the same for the
/// problem and its recovery.
///
/// ```
/// use stoker_core::EventKind;
/// use stoker_core::notify::pagerduty::dedup_key;
/// assert_eq!(dedup_key("plant/site", EventKind::SyncFailed), "stoker/plant/site/SyncFailed");
/// assert_eq!(dedup_key("plant/site", EventKind::SyncRecovered), dedup_key("plant/site", EventKind::SyncFailed));
/// assert!(dedup_key(&"x".repeat(400), EventKind::RefSkew).len() <= 255);
/// ```
pub fn dedup_key(subject: &str, kind: EventKind) -> String {
    let problem = kind.resolves().unwrap_or(kind);
    let key = format!("stoker/{subject}/{problem}");
    if key.len() <= MAX_DEDUP_KEY {
        return key;
    }
    // Too long for PagerDuty: a digest is just as stable.
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    format!("stoker/{}", super::webhook::hex(digest.as_ref()))
}

/// The Events API v2 body for `event`, or `None` for a kind that is neither a problem nor a
/// recovery (not sent).
///
/// ```
/// use stoker_core::{Event, EventKind};
/// use stoker_core::notify::pagerduty::payload;
/// let failed = Event {
///     kind: EventKind::SyncFailed,
///     gateway: "plant/site".into(),
///     revision: None,
///     message: "1 of 2 gateways failed: gw-a".into(),
/// };
/// let body = payload(&failed, "R0UT1NG").unwrap();
/// assert_eq!(body["event_action"], "trigger");
/// assert_eq!(body["payload"]["severity"], "error");
/// let recovered = Event { kind: EventKind::SyncRecovered, ..failed.clone() };
/// assert_eq!(payload(&recovered, "R0UT1NG").unwrap()["event_action"], "resolve");
/// let completed = Event { kind: EventKind::SyncCompleted, ..failed };
/// assert!(payload(&completed, "R0UT1NG").is_none());
/// ```
pub fn payload(event: &Event, routing_key: &str) -> Option<Value> {
    let dedup_key = dedup_key(&event.gateway, event.kind);
    if event.kind.resolves().is_some() {
        return Some(json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        }));
    }
    if !event.kind.is_problem() {
        return None;
    }
    let severity = match event.kind {
        EventKind::RefSkew => "warning",
        _ => "error",
    };
    let mut details = json!({"kind": event.kind.as_str(), "message": event.message});
    if let Some(revision) = &event.revision {
        details["commit"] = json!(revision.id);
        details["ref"] = json!(revision.reference);
    }
    Some(json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": truncate(&format!("{}: {}", event.gateway, event.message), MAX_SUMMARY),
            "source": event.gateway,
            "severity": severity,
            "component": "stoker",
            "class": event.kind.as_str(),
            "custom_details": details,
        },
    }))
}
