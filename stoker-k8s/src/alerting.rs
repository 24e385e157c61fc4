//! Notifications to people about a whole fleet (`spec.alerting`): what to tell, decided once
//! per change from the aggregated status ([`fleet_events`]), which webhook hears what
//! ([`WebhookSpec::selects`]), and how delivery went, as the `NotificationsDelivered`
//! condition ([`notifications_condition`]). Pure functions; [`runtime`] does the sending.
//!
//! A fleet is told about as one thing: one `SyncCompleted` "5 of 5 gateways synced to v2.0.0
//! (abc1234)" when every gateway reached a commit not announced before (not one message per
//! gateway), one `SyncFailed` naming the failing gateways when that set changes, one
//! `SyncRecovered` when none fails any more (it resolves the PagerDuty incident), `RefUpdated`
//! when the resolved commit moves, `RefSkew` when gateways stay at another revision once a
//! rollout has settled (and `RefSkewCleared` when they no longer do), one `ScanFailure` naming
//! the gateways whose rescan after a sync failed when that set changes (their agents say so in
//! the typed `lastScanStatus`; an agent that does not say is never counted as failing), and
//! `ScanRecovered` when none does any more.
//!
//! ```
//! use stoker_k8s::alerting::{FleetMemory, fleet_events};
//! use stoker_k8s::crd::GatewaySyncStatus;
//! let status = GatewaySyncStatus::default();
//! let mut memory = FleetMemory::from_status(&status);
//! assert!(fleet_events(&mut memory, "plant/site", &status).is_empty());
//! ```

use std::collections::BTreeSet;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stoker_core::notify::WebhookType;
use stoker_core::{Event, EventKind, Revision};

use crate::aggregate::short_commit;
use crate::conditions::{self, ALL_GATEWAYS_SYNCED, REF_SKEW, Status};
use crate::crd::{DiscoveredGateway, GatewaySyncStatus, ScanStatus, SecretKeyRef, SyncStatus};

pub mod runtime;

/// `True` while every webhook of `spec.alerting` delivered its last notification; `False`
/// (`DeliveryFailed`, `WebhookInvalid`) naming the webhook by index and type, never by URL.
/// Absent without `spec.alerting` webhooks (ours).
pub const NOTIFICATIONS_DELIVERED: &str = "NotificationsDelivered";

/// Reasons of [`NOTIFICATIONS_DELIVERED`], and the Event published when a delivery fails.
pub mod reasons {
    /// `NotificationsDelivered=True`.
    pub const DELIVERED: &str = "Delivered";
    /// `NotificationsDelivered=False`: a notification could not be delivered (after retries);
    /// also the reason of the Warning Event published then (`NotificationFailed`).
    pub const DELIVERY_FAILED: &str = "DeliveryFailed";
    /// `NotificationsDelivered=False`: a webhook is not usable as configured (no URL, a
    /// missing Secret or key, no PagerDuty routing key).
    pub const WEBHOOK_INVALID: &str = "WebhookInvalid";
    /// The Warning Event published when a notification could not be delivered.
    pub const NOTIFICATION_FAILED: &str = "NotificationFailed";
}

/// `spec.alerting`: notifications to people (Slack, Microsoft Teams, PagerDuty, any webhook)
/// about the fleet of this resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertingSpec {
    /// Send notifications (default true; false keeps the webhooks configured but silent).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Where notifications go; each webhook gets the events its `on` lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<WebhookSpec>,
}

/// One entry of `spec.alerting.webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// The receiver: `slack` (incoming webhook), `msteams` (Teams Workflows or incoming
    /// webhook), `pagerduty` (Events API v2) or `generic` (the event as JSON, HMAC-signed with
    /// `secretRef` when given).
    #[serde(rename = "type")]
    pub type_: WebhookKind,
    /// The webhook URL, inline. Slack and Teams URLs are credentials: prefer `urlSecretRef`.
    /// Optional for `pagerduty` (default `https://events.pagerduty.com/v2/enqueue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The webhook URL, from a key of a Secret in this resource's namespace (wins over `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_secret_ref: Option<SecretKeyRef>,
    /// A key of a Secret in this resource's namespace: PagerDuty's routing (integration) key,
    /// required for `pagerduty`; the HMAC-SHA256 key that signs a `generic` webhook's body
    /// (`X-Stoker-Signature-256: sha256=<hex>`). Unused by `slack` and `msteams`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyRef>,
    /// The events this webhook gets: `SyncCompleted`, `SyncFailed`, `SyncRecovered`,
    /// `RefUpdated`, `RefSkew`, `RefSkewCleared`, `ScanFailure`, `ScanRecovered`. Empty or
    /// omitted: all. A listed problem brings its recovery (`SyncFailed` brings
    /// `SyncRecovered`). PagerDuty only ever gets problems and recoveries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<EventKind>,
}

impl WebhookSpec {
    /// Whether this webhook gets events of `kind` ([`EventKind::selected_by`]).
    pub fn selects(&self, kind: EventKind) -> bool {
        kind.selected_by(&self.on)
    }
}

/// `spec.alerting.webhooks[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(description = "")]
pub enum WebhookKind {
    /// A Slack incoming webhook.
    Slack,
    /// A Microsoft Teams webhook.
    Msteams,
    /// PagerDuty's Events API v2.
    Pagerduty,
    /// Any HTTP endpoint.
    Generic,
}

impl WebhookKind {
    /// stoker-core's notifier type.
    pub fn notifier_type(self) -> WebhookType {
        match self {
            WebhookKind::Slack => WebhookType::Slack,
            WebhookKind::Msteams => WebhookType::MsTeams,
            WebhookKind::Pagerduty => WebhookType::PagerDuty,
            WebhookKind::Generic => WebhookType::Generic,
        }
    }
}

/// How errors, conditions and metrics name webhook `index`: `webhooks[0] (slack)`.
pub fn webhook_label(index: usize, kind: WebhookKind) -> String {
    format!("webhooks[{index}] ({})", kind.notifier_type())
}

/// What the fleet was last told about, so that each change is told once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetMemory {
    /// The commit the last `SyncCompleted` announced.
    pub announced_commit: Option<String>,
    /// The commit last resolved (`RefUpdated` is about a change of it).
    pub resolved_commit: Option<String>,
    /// The gateways the last `SyncFailed` named; empty: no failure open.
    pub failing: BTreeSet<String>,
    /// The skew the last `RefSkew` described; `None`: no skew open.
    pub skew: Option<String>,
    /// The gateways the last `ScanFailure` named; empty: no scan failure open.
    pub scan_failing: BTreeSet<String>,
}

impl FleetMemory {
    /// What is assumed already told about `status` (the status before a reconciliation, when
    /// the operator starts or first sees the resource): its state was announced before, by
    /// this operator before a restart or by nobody worth repeating it for.
    pub fn from_status(status: &GatewaySyncStatus) -> Self {
        FleetMemory {
            announced_commit: status
                .last_sync_commit
                .clone()
                .filter(|_| conditions::is_true(&status.conditions, ALL_GATEWAYS_SYNCED)),
            resolved_commit: status.last_sync_commit.clone(),
            failing: failing(status),
            skew: settled_skew(status),
            scan_failing: scan_failing(status),
        }
    }
}

/// The events that telling about `status` adds to what `memory` says was told, and `memory`
/// updated: in this order `RefUpdated`, `SyncFailed` or `SyncRecovered`, `ScanFailure` or
/// `ScanRecovered`, `RefSkew` or `RefSkewCleared`, `SyncCompleted`. `subject` is what the events concern
/// (`namespace/name`).
pub fn fleet_events(
    memory: &mut FleetMemory,
    subject: &str,
    status: &GatewaySyncStatus,
) -> Vec<Event> {
    let revision = status.last_sync_commit.as_ref().map(|commit| Revision {
        id: commit.clone(),
        reference: status.last_sync_ref.clone(),
    });
    let event = |kind, message: String| Event {
        kind,
        gateway: subject.to_owned(),
        revision: revision.clone(),
        message,
    };
    let reference = status.last_sync_ref.as_deref().unwrap_or("the ref");
    let mut events = Vec::new();

    if let Some(commit) = &status.last_sync_commit
        && memory.resolved_commit.as_ref() != Some(commit)
    {
        if let Some(old) = &memory.resolved_commit {
            events.push(event(
                EventKind::RefUpdated,
                format!(
                    "{reference} moved from {} to {}",
                    short_commit(old),
                    short_commit(commit)
                ),
            ));
        }
        memory.resolved_commit = Some(commit.clone());
    }

    let now_failing = failing(status);
    if now_failing.is_empty() && !memory.failing.is_empty() {
        let was: Vec<&str> = memory.failing.iter().map(String::as_str).collect();
        events.push(event(
            EventKind::SyncRecovered,
            format!("no gateway fails any more (failed: {})", was.join(", ")),
        ));
    } else if !now_failing.is_empty() && now_failing != memory.failing {
        events.push(event(EventKind::SyncFailed, failure_message(status)));
    }
    memory.failing = now_failing;

    let now_scan_failing = scan_failing(status);
    if now_scan_failing.is_empty() && !memory.scan_failing.is_empty() {
        let was: Vec<&str> = memory.scan_failing.iter().map(String::as_str).collect();
        events.push(event(
            EventKind::ScanRecovered,
            format!(
                "no gateway's rescan fails any more (failed: {})",
                was.join(", ")
            ),
        ));
    } else if !now_scan_failing.is_empty() && now_scan_failing != memory.scan_failing {
        events.push(event(EventKind::ScanFailure, scan_failure_message(status)));
    }
    memory.scan_failing = now_scan_failing;

    let skew_condition = conditions::is_true(&status.conditions, REF_SKEW);
    match settled_skew(status) {
        Some(skew) if memory.skew.as_ref() != Some(&skew) => {
            events.push(event(EventKind::RefSkew, skew.clone()));
            memory.skew = Some(skew);
        }
        None if !skew_condition && memory.skew.is_some() => {
            events.push(event(
                EventKind::RefSkewCleared,
                "every reporting gateway is at the resolved revision again".to_owned(),
            ));
            memory.skew = None;
        }
        // A rollout in progress: gateways catching up are not news.
        _ => {}
    }

    if conditions::is_true(&status.conditions, ALL_GATEWAYS_SYNCED)
        && let Some(commit) = &status.last_sync_commit
        && memory.announced_commit.as_ref() != Some(commit)
    {
        let total = status.discovered_gateways.len();
        events.push(event(
            EventKind::SyncCompleted,
            format!(
                "{total} of {total} gateways synced to {reference} ({})",
                short_commit(commit)
            ),
        ));
        memory.announced_commit = Some(commit.clone());
    }
    events
}

/// The names of the gateways in `Error`.
fn failing(status: &GatewaySyncStatus) -> BTreeSet<String> {
    status
        .discovered_gateways
        .iter()
        .filter(|gateway| gateway.sync_status == SyncStatus::Error)
        .map(|gateway| gateway.name.clone())
        .collect()
}

/// The names of the gateways whose agent says their last rescan failed. A gateway whose agent
/// does not say (v0.5.1's agents, older Stoker agents) is not failing.
fn scan_failing(status: &GatewaySyncStatus) -> BTreeSet<String> {
    status
        .discovered_gateways
        .iter()
        .filter(|gateway| gateway.last_scan_status == Some(ScanStatus::Failed))
        .map(|gateway| gateway.name.clone())
        .collect()
}

/// `2 of 5 gateways failed: gw-a (error…); gw-b (error…)`.
fn failure_message(status: &GatewaySyncStatus) -> String {
    let failed = named_with_detail(status, |gateway| {
        (gateway.sync_status == SyncStatus::Error).then_some(gateway.message.as_deref())
    });
    format!(
        "{} of {} gateways failed: {}",
        failed.len(),
        status.discovered_gateways.len(),
        failed.join("; ")
    )
}

/// `1 of 5 gateways could not rescan after a sync: gw-b (failed: …)`.
fn scan_failure_message(status: &GatewaySyncStatus) -> String {
    let failed = named_with_detail(status, |gateway| {
        (gateway.last_scan_status == Some(ScanStatus::Failed))
            .then_some(gateway.last_scan_result.as_deref())
    });
    format!(
        "{} of {} gateways could not rescan after a sync: {}",
        failed.len(),
        status.discovered_gateways.len(),
        failed.join("; ")
    )
}

/// `gw-a (detail…)` for each gateway `pick` selects (with its detail, if any), the detail cut
/// at 200 characters.
fn named_with_detail(
    status: &GatewaySyncStatus,
    pick: impl Fn(&DiscoveredGateway) -> Option<Option<&str>>,
) -> Vec<String> {
    const MAX_DETAIL: usize = 200;
    status
        .discovered_gateways
        .iter()
        .filter_map(|gateway| {
            let detail = pick(gateway)?.unwrap_or("no detail");
            let detail: String = if detail.chars().count() > MAX_DETAIL {
                detail.chars().take(MAX_DETAIL).chain(['…']).collect()
            } else {
                detail.to_owned()
            };
            Some(format!("{} ({detail})", gateway.name))
        })
        .collect()
}

/// The `RefSkew` condition's message while it is `True` and no gateway is `Pending`: the skew
/// outlasted the rollout (pinned gateways, or gateways stuck at another revision).
fn settled_skew(status: &GatewaySyncStatus) -> Option<String> {
    let rolling_out = status
        .discovered_gateways
        .iter()
        .any(|gateway| gateway.sync_status == SyncStatus::Pending);
    conditions::find(&status.conditions, REF_SKEW)
        .filter(|condition| condition.status == Status::True.as_str() && !rolling_out)
        .map(|condition| condition.message.clone())
}

/// How one webhook's deliveries stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookHealth {
    /// Nothing failed since it was configured (or its last delivery succeeded).
    Healthy,
    /// Its last delivery failed: the error (naming the webhook by label).
    Failing(String),
    /// It could not be built: why (naming the webhook by label).
    Invalid(String),
}

/// `NotificationsDelivered` from the webhooks' health, in `spec.alerting.webhooks` order;
/// `None` (the condition is removed) without webhooks. Invalid webhooks are reported before
/// failing ones: they fail every time.
///
/// ```
/// use stoker_k8s::alerting::{WebhookHealth, notifications_condition};
/// let now = jiff::Timestamp::UNIX_EPOCH;
/// assert!(notifications_condition(&[], 1, now).is_none());
/// let failing = WebhookHealth::Failing("notification to webhooks[1] (slack): HTTP 500: oops".into());
/// let condition = notifications_condition(&[WebhookHealth::Healthy, failing], 1, now).unwrap();
/// assert_eq!((condition.status.as_str(), condition.reason.as_str()), ("False", "DeliveryFailed"));
/// ```
pub fn notifications_condition(
    webhooks: &[WebhookHealth],
    generation: i64,
    now: Timestamp,
) -> Option<Condition> {
    if webhooks.is_empty() {
        return None;
    }
    let problems = |pick: fn(&WebhookHealth) -> Option<&String>| -> Vec<&str> {
        webhooks
            .iter()
            .filter_map(pick)
            .map(String::as_str)
            .collect()
    };
    let invalid = problems(|health| match health {
        WebhookHealth::Invalid(why) => Some(why),
        _ => None,
    });
    let failing = problems(|health| match health {
        WebhookHealth::Failing(why) => Some(why),
        _ => None,
    });
    let (status, reason, message) = if !invalid.is_empty() {
        (Status::False, reasons::WEBHOOK_INVALID, invalid.join("; "))
    } else if !failing.is_empty() {
        (Status::False, reasons::DELIVERY_FAILED, failing.join("; "))
    } else {
        (
            Status::True,
            reasons::DELIVERED,
            format!("{} webhook(s); no delivery failed", webhooks.len()),
        )
    };
    Some(conditions::new(
        NOTIFICATIONS_DELIVERED,
        status,
        reason,
        message,
        generation,
        now,
    ))
}

fn default_true() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::{new, reasons as why, set};
    use crate::crd::DiscoveredGateway;

    const OLD: &str = "0123456789012345678901234567890123456789";
    const NEW: &str = "abc1234def5678abc1234def5678abc1234def56";

    fn gateway(name: &str, status: SyncStatus, commit: &str) -> DiscoveredGateway {
        DiscoveredGateway {
            name: name.to_owned(),
            pod_name: format!("{name}-0"),
            sync_status: status,
            synced_commit: Some(commit.to_owned()),
            message: Some(format!("{name} says {status}")),
            ..Default::default()
        }
    }

    /// A status as aggregation leaves it: `AllGatewaysSynced` and `RefSkew` follow the
    /// gateways (skew: a gateway reporting another commit).
    fn status(commit: &str, gateways: Vec<DiscoveredGateway>) -> GatewaySyncStatus {
        let mut status = GatewaySyncStatus {
            last_sync_ref: Some("v2.0.0".to_owned()),
            last_sync_commit: Some(commit.to_owned()),
            discovered_gateways: gateways,
            ..Default::default()
        };
        let all = !status.discovered_gateways.is_empty()
            && status
                .discovered_gateways
                .iter()
                .all(|g| g.sync_status == SyncStatus::Synced);
        let skewed: Vec<&str> = status
            .discovered_gateways
            .iter()
            .filter(|g| g.synced_commit.as_deref() != Some(commit))
            .map(|g| g.pod_name.as_str())
            .collect();
        let t = Timestamp::UNIX_EPOCH;
        set(
            &mut status.conditions,
            new(
                ALL_GATEWAYS_SYNCED,
                Status::from_bool(all),
                why::SYNC_SUCCEEDED,
                "",
                1,
                t,
            ),
        );
        set(
            &mut status.conditions,
            new(
                REF_SKEW,
                Status::from_bool(!skewed.is_empty()),
                why::GATEWAYS_AT_OTHER_REVISION,
                format!("skewed: {}", skewed.join(", ")),
                1,
                t,
            ),
        );
        status
    }

    fn kinds(events: &[Event]) -> Vec<EventKind> {
        events.iter().map(|e| e.kind).collect()
    }

    fn five(status_of: impl Fn(usize) -> (SyncStatus, &'static str)) -> Vec<DiscoveredGateway> {
        (0..5)
            .map(|i| {
                let (s, c) = status_of(i);
                gateway(&format!("gw-{i}"), s, c)
            })
            .collect()
    }

    #[test]
    fn a_fleet_converging_on_a_new_commit_is_one_sync_completed() {
        let before = status(OLD, five(|_| (SyncStatus::Synced, OLD)));
        let mut memory = FleetMemory::from_status(&before);
        // The ref moves: every gateway is pending at the old commit.
        let moved = status(NEW, five(|_| (SyncStatus::Pending, OLD)));
        let events = fleet_events(&mut memory, "plant/site", &moved);
        assert_eq!(kinds(&events), [EventKind::RefUpdated]);
        assert_eq!(events[0].message, "v2.0.0 moved from 0123456 to abc1234");
        // Gateways catch up one by one: nothing until the last one.
        for synced in 1..5 {
            let partial = status(
                NEW,
                five(|i| {
                    if i < synced {
                        (SyncStatus::Synced, NEW)
                    } else {
                        (SyncStatus::Pending, OLD)
                    }
                }),
            );
            assert!(fleet_events(&mut memory, "plant/site", &partial).is_empty());
        }
        let done = status(NEW, five(|_| (SyncStatus::Synced, NEW)));
        let events = fleet_events(&mut memory, "plant/site", &done);
        assert_eq!(kinds(&events), [EventKind::SyncCompleted]);
        let completed = &events[0];
        assert_eq!(
            completed.message,
            "5 of 5 gateways synced to v2.0.0 (abc1234)"
        );
        assert_eq!(completed.gateway, "plant/site");
        assert_eq!(completed.revision.as_ref().unwrap().id, NEW);
        // Told once.
        assert!(fleet_events(&mut memory, "plant/site", &done).is_empty());
        // A sixth gateway joining at the same commit is not news either.
        let mut six = done.clone();
        six.discovered_gateways
            .push(gateway("gw-5", SyncStatus::Synced, NEW));
        assert!(fleet_events(&mut memory, "plant/site", &six).is_empty());
    }

    #[test]
    fn failures_name_the_gateways_and_recovery_resolves_them() {
        let healthy = status(NEW, five(|_| (SyncStatus::Synced, NEW)));
        let mut memory = FleetMemory::from_status(&healthy);
        let one = status(
            NEW,
            five(|i| {
                if i == 1 {
                    (SyncStatus::Error, NEW)
                } else {
                    (SyncStatus::Synced, NEW)
                }
            }),
        );
        let events = fleet_events(&mut memory, "plant/site", &one);
        assert_eq!(kinds(&events), [EventKind::SyncFailed]);
        assert_eq!(
            events[0].message,
            "1 of 5 gateways failed: gw-1 (gw-1 says Error)"
        );
        // The same failure again: nothing.
        assert!(fleet_events(&mut memory, "plant/site", &one).is_empty());
        // Another gateway fails too: told, both named.
        let two = status(
            NEW,
            five(|i| {
                if i <= 1 {
                    (SyncStatus::Error, NEW)
                } else {
                    (SyncStatus::Synced, NEW)
                }
            }),
        );
        let events = fleet_events(&mut memory, "plant/site", &two);
        assert_eq!(kinds(&events), [EventKind::SyncFailed]);
        assert!(
            events[0]
                .message
                .starts_with("2 of 5 gateways failed: gw-0")
        );
        // All recover at the commit already announced: a recovery, not a new SyncCompleted.
        let events = fleet_events(&mut memory, "plant/site", &healthy);
        assert_eq!(kinds(&events), [EventKind::SyncRecovered]);
        assert_eq!(
            events[0].message,
            "no gateway fails any more (failed: gw-0, gw-1)"
        );
        assert!(memory.failing.is_empty());
    }

    /// `gateway` with its agent's word on the last rescan (`None`: the agent does not say).
    fn scanned(mut gateway: DiscoveredGateway, scan: Option<ScanStatus>) -> DiscoveredGateway {
        gateway.last_scan_status = scan;
        gateway.last_scan_result = match scan {
            Some(ScanStatus::Failed) => Some("failed: scan/projects: HTTP 500".to_owned()),
            Some(ScanStatus::Succeeded) => Some("projects 200, config 200".to_owned()),
            None => None,
        };
        gateway
    }

    /// Five gateways synced to `NEW`; those in `failed` say their rescan failed, the others
    /// that it succeeded.
    fn rescans(failed: &[usize]) -> GatewaySyncStatus {
        let gateways = five(|_| (SyncStatus::Synced, NEW))
            .into_iter()
            .enumerate()
            .map(|(i, g)| {
                let scan = if failed.contains(&i) {
                    ScanStatus::Failed
                } else {
                    ScanStatus::Succeeded
                };
                scanned(g, Some(scan))
            })
            .collect();
        status(NEW, gateways)
    }

    #[test]
    fn failed_rescans_are_one_fleet_event_told_once_per_change_then_recovered() {
        let mut memory = FleetMemory::from_status(&rescans(&[]));
        let one = rescans(&[2]);
        let events = fleet_events(&mut memory, "plant/site", &one);
        assert_eq!(kinds(&events), [EventKind::ScanFailure]);
        assert_eq!(
            events[0].message,
            "1 of 5 gateways could not rescan after a sync: gw-2 (failed: scan/projects: HTTP 500)"
        );
        assert_eq!(events[0].gateway, "plant/site");
        // The same gateways again: nothing.
        assert!(fleet_events(&mut memory, "plant/site", &one).is_empty());
        // Another one too: told again, naming both.
        let events = fleet_events(&mut memory, "plant/site", &rescans(&[2, 4]));
        assert_eq!(kinds(&events), [EventKind::ScanFailure]);
        assert!(
            events[0]
                .message
                .starts_with("2 of 5 gateways could not rescan after a sync: gw-2 (")
                && events[0].message.contains("; gw-4 ("),
            "{}",
            events[0].message
        );
        // One of them rescans again: the set changed, still failing.
        let events = fleet_events(&mut memory, "plant/site", &rescans(&[4]));
        assert_eq!(kinds(&events), [EventKind::ScanFailure]);
        // All rescan again: one recovery, which resolves the ScanFailure.
        let events = fleet_events(&mut memory, "plant/site", &rescans(&[]));
        assert_eq!(kinds(&events), [EventKind::ScanRecovered]);
        assert_eq!(events[0].kind.resolves(), Some(EventKind::ScanFailure));
        assert_eq!(
            events[0].message,
            "no gateway's rescan fails any more (failed: gw-4)"
        );
        assert!(fleet_events(&mut memory, "plant/site", &rescans(&[])).is_empty());
    }

    #[test]
    fn a_rescan_failure_also_failing_the_sync_is_both_events() {
        let mut memory = FleetMemory::from_status(&rescans(&[]));
        let mut failing = rescans(&[1]);
        failing.discovered_gateways[1].sync_status = SyncStatus::Error;
        let events = fleet_events(&mut memory, "plant/site", &failing);
        assert_eq!(
            kinds(&events),
            [EventKind::SyncFailed, EventKind::ScanFailure]
        );
        let events = fleet_events(&mut memory, "plant/site", &rescans(&[]));
        assert_eq!(
            kinds(&events),
            [EventKind::SyncRecovered, EventKind::ScanRecovered]
        );
    }

    #[test]
    fn an_agent_that_does_not_report_its_rescan_is_never_a_scan_failure() {
        // Older agents (and v0.5.1's) leave `lastScanStatus` out, even when their sync failed.
        let unknown = status(
            NEW,
            five(|_| (SyncStatus::Synced, NEW))
                .into_iter()
                .map(|g| scanned(g, None))
                .collect(),
        );
        let mut memory = FleetMemory::from_status(&unknown);
        assert!(memory.scan_failing.is_empty());
        let mut errored = unknown.clone();
        errored.discovered_gateways[0].sync_status = SyncStatus::Error;
        errored.discovered_gateways[0].last_scan_result = Some("error: HTTP 500".to_owned());
        assert_eq!(
            kinds(&fleet_events(&mut memory, "plant/site", &errored)),
            [EventKind::SyncFailed]
        );
        // A failed gateway that is then replaced by one that does not say clears the failure.
        let mut memory = FleetMemory::from_status(&rescans(&[0]));
        assert_eq!(memory.scan_failing.len(), 1);
        assert_eq!(
            kinds(&fleet_events(&mut memory, "plant/site", &unknown)),
            [EventKind::ScanRecovered]
        );
    }

    #[test]
    fn skew_is_told_once_the_rollout_has_settled() {
        let mut memory =
            FleetMemory::from_status(&status(NEW, five(|_| (SyncStatus::Synced, NEW))));
        // One gateway pinned to the old commit (Synced there), the others at the new one.
        let pinned = status(
            NEW,
            five(|i| {
                if i == 4 {
                    (SyncStatus::Synced, OLD)
                } else {
                    (SyncStatus::Synced, NEW)
                }
            }),
        );
        let events = fleet_events(&mut memory, "plant/site", &pinned);
        assert_eq!(kinds(&events), [EventKind::RefSkew]);
        assert_eq!(events[0].message, "skewed: gw-4-0");
        assert!(fleet_events(&mut memory, "plant/site", &pinned).is_empty());
        let fixed = status(NEW, five(|_| (SyncStatus::Synced, NEW)));
        assert_eq!(
            kinds(&fleet_events(&mut memory, "plant/site", &fixed)),
            [EventKind::RefSkewCleared]
        );
        // During a rollout, gateways at the old commit are pending: no skew is told.
        let rolling = status(OLD, five(|_| (SyncStatus::Pending, NEW)));
        let events = fleet_events(&mut memory, "plant/site", &rolling);
        assert_eq!(kinds(&events), [EventKind::RefUpdated]);
    }

    #[test]
    fn a_restarted_operator_does_not_repeat_what_the_status_shows() {
        let failing = status(
            NEW,
            five(|i| {
                if i == 0 {
                    (SyncStatus::Error, NEW)
                } else {
                    (SyncStatus::Synced, NEW)
                }
            }),
        );
        let mut memory = FleetMemory::from_status(&failing);
        assert!(fleet_events(&mut memory, "plant/site", &failing).is_empty());
        let done = status(NEW, five(|_| (SyncStatus::Synced, NEW)));
        let mut memory = FleetMemory::from_status(&done);
        assert!(fleet_events(&mut memory, "plant/site", &done).is_empty());
        let scan_failing = rescans(&[3]);
        let mut memory = FleetMemory::from_status(&scan_failing);
        assert!(fleet_events(&mut memory, "plant/site", &scan_failing).is_empty());
    }

    #[test]
    fn webhooks_select_what_on_lists() {
        let spec: AlertingSpec = serde_json::from_value(serde_json::json!({
            "webhooks": [
                {"type": "slack", "urlSecretRef": {"name": "slack", "key": "url"}},
                {"type": "pagerduty", "secretRef": {"name": "pd", "key": "routingKey"}, "on": ["SyncFailed"]},
            ]
        }))
        .unwrap();
        assert!(spec.enabled);
        let [slack, pagerduty] = &spec.webhooks[..] else {
            panic!("two webhooks")
        };
        assert!(EventKind::ALL.iter().all(|kind| slack.selects(*kind)));
        assert!(pagerduty.selects(EventKind::SyncFailed));
        assert!(pagerduty.selects(EventKind::SyncRecovered));
        assert!(!pagerduty.selects(EventKind::SyncCompleted));
        assert_eq!(webhook_label(1, pagerduty.type_), "webhooks[1] (pagerduty)");
        assert!(
            serde_json::from_value::<AlertingSpec>(
                serde_json::json!({"webhooks": [{"type": "slack", "on": ["Nope"]}]})
            )
            .is_err()
        );
    }

    #[test]
    fn the_condition_names_webhooks_by_label() {
        let now = Timestamp::UNIX_EPOCH;
        let healthy =
            notifications_condition(&[WebhookHealth::Healthy, WebhookHealth::Healthy], 2, now)
                .unwrap();
        assert_eq!(
            (
                healthy.status.as_str(),
                healthy.reason.as_str(),
                healthy.message.as_str()
            ),
            ("True", "Delivered", "2 webhook(s); no delivery failed")
        );
        let invalid = notifications_condition(
            &[
                WebhookHealth::Failing("webhooks[0] (slack): HTTP 500".into()),
                WebhookHealth::Invalid("webhooks[1] (pagerduty): no routing key".into()),
            ],
            2,
            now,
        )
        .unwrap();
        assert_eq!(
            (invalid.reason.as_str(), invalid.message.as_str()),
            ("WebhookInvalid", "webhooks[1] (pagerduty): no routing key")
        );
    }
}
