//! Kubernetes Events on a `GatewaySync`: their reasons (stoker-operator v0.5.1's, and ours),
//! and which ones the operator publishes after a reconciliation, decided from the status before
//! and after it ([`status_events`]).
//!
//! Events say what changed, once: a steady state publishes nothing. Every rule here compares
//! the previous status with the new one, so a resource that keeps failing the same way, or
//! keeps missing the same sidecar, does not add an Event per reconciliation (v0.5.1 published
//! `ProfilesInvalid` and `MissingSidecar` on every pass; the API server's Event aggregation
//! hid it only partly).
//!
//! ```
//! use stoker_k8s::crd::GatewaySyncStatus;
//! use stoker_k8s::events::{status_events, ControllerEvent};
//! let before = GatewaySyncStatus::default();
//! let mut after = before.clone();
//! after.discovered_gateways.push(Default::default());
//! assert_eq!(
//!     status_events(&before, &after),
//!     [ControllerEvent::GatewaysDiscovered { now: 1, was: 0 }]
//! );
//! assert!(status_events(&after, &after).is_empty());
//! ```

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, Recorder, Reporter};

use crate::conditions::{self, ALL_GATEWAYS_SYNCED, PROFILES_VALID, READY, REF_RESOLVED};
use crate::crd::{DiscoveredGateway, GatewaySyncStatus, SyncStatus};

/// Event reasons (`CamelCase`). The operator publishes them with `reportingController`
/// `stoker-operator`, the agents with `stoker-agent`.
pub mod reasons {
    /// Normal: `spec.paused` was set (operator).
    pub const PAUSED: &str = "Paused";
    /// Warning: the profiles or the Secrets they reference are invalid (operator).
    pub const PROFILES_INVALID: &str = "ProfilesInvalid";
    /// Normal: the ref resolved for the first time (operator).
    pub const REF_RESOLVED: &str = "RefResolved";
    /// Normal: the ref moved to another commit (operator; ours).
    pub const REF_UPDATED: &str = "RefUpdated";
    /// Warning: the ref could not be resolved (operator).
    pub const REF_RESOLUTION_FAILED: &str = "RefResolutionFailed";
    /// Warning: the GitHub App installation token could not be obtained (operator).
    pub const GITHUB_APP_EXCHANGE_FAILED: &str = "GitHubAppExchangeFailed";
    /// Warning: the token Secret `stoker-github-token-{cr}` could not be written (operator;
    /// ours).
    pub const GITHUB_APP_TOKEN_SECRET_FAILED: &str = "GitHubAppTokenSecretFailed";
    /// Normal: the number of discovered gateways changed (operator).
    pub const GATEWAYS_DISCOVERED: &str = "GatewaysDiscovered";
    /// Warning: a pod asks for injection but has no agent (operator).
    pub const MISSING_SIDECAR: &str = "MissingSidecar";
    /// Warning: the agents' RoleBinding could not be written (operator).
    pub const RBAC_ERROR: &str = "RBACError";
    /// Normal: every gateway is synced (operator); a sync changed files (agent).
    pub const SYNC_COMPLETED: &str = "SyncCompleted";
    /// Warning: a gateway turned to `Error` (operator); a sync failed (agent).
    pub const SYNC_FAILED: &str = "SyncFailed";
    /// Warning: a sync was not run because Designer sessions are open (agent).
    pub const SYNC_SKIPPED: &str = "SyncSkipped";
    /// Warning: open Designer sessions blocked a sync (policy `fail`, or `wait` after its
    /// deadline) (agent).
    pub const DESIGNER_SESSIONS_BLOCKED: &str = "DesignerSessionsBlocked";
    /// Warning: the agent's first fetch of the repository failed (agent).
    pub const CLONE_FAILED: &str = "CloneFailed";
    /// Normal: the profile is paused (agent; ours).
    pub const SYNC_PAUSED: &str = "SyncPaused";
    /// Normal: a dry run computed changes (agent; ours).
    pub const DRY_RUN_COMPLETED: &str = "DryRunCompleted";
    /// Normal: the webhook receiver set a requested ref, or a Git host's push made it
    /// resolve the ref at once (operator, any replica).
    pub const WEBHOOK_RECEIVED: &str = "WebhookReceived";
    /// Normal: the gateway answered for the first time and was asked to rescan (agent; ours).
    pub const GATEWAY_RESCANNED: &str = "GatewayRescanned";
    /// Warning: `spec.webhook.secretRef` names a Secret or key that is missing or empty, so
    /// requests relying on it are refused (operator; ours).
    pub const WEBHOOK_SECRET_MISSING: &str = "WebhookSecretMissing";
}

/// An Event the operator publishes because the status changed ([`status_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControllerEvent {
    /// `spec.paused` took effect.
    Paused,
    /// `ProfilesValid` turned `False`, or says something new.
    ProfilesInvalid {
        /// The problems (the condition's message).
        problems: String,
    },
    /// The number of discovered gateways changed.
    GatewaysDiscovered {
        /// How many now.
        now: usize,
        /// How many before.
        was: usize,
    },
    /// A pod newly found asking for injection without the agent.
    MissingSidecar {
        /// The pod.
        pod: String,
    },
    /// A gateway turned to `Error`.
    SyncFailed {
        /// The gateway's name.
        gateway: String,
        /// Its pod.
        pod: String,
        /// Its error.
        message: String,
    },
    /// `AllGatewaysSynced` turned `True`.
    SyncCompleted {
        /// The `GATEWAYS` column (`3/3 synced`).
        summary: String,
        /// The short commit.
        commit: String,
    },
    /// `WebhookSecretReady` turned `False`, or says something new (ours).
    WebhookSecretMissing {
        /// Why (the condition's message, naming the Secret and key).
        message: String,
    },
}

impl ControllerEvent {
    /// The Event's reason ([`reasons`]).
    pub fn reason(&self) -> &'static str {
        match self {
            ControllerEvent::Paused => reasons::PAUSED,
            ControllerEvent::ProfilesInvalid { .. } => reasons::PROFILES_INVALID,
            ControllerEvent::GatewaysDiscovered { .. } => reasons::GATEWAYS_DISCOVERED,
            ControllerEvent::MissingSidecar { .. } => reasons::MISSING_SIDECAR,
            ControllerEvent::SyncFailed { .. } => reasons::SYNC_FAILED,
            ControllerEvent::SyncCompleted { .. } => reasons::SYNC_COMPLETED,
            ControllerEvent::WebhookSecretMissing { .. } => reasons::WEBHOOK_SECRET_MISSING,
        }
    }

    /// True for a Warning, false for a Normal Event (as v0.5.1 types them).
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            ControllerEvent::ProfilesInvalid { .. }
                | ControllerEvent::MissingSidecar { .. }
                | ControllerEvent::SyncFailed { .. }
                | ControllerEvent::WebhookSecretMissing { .. }
        )
    }

    /// The Event's note: v0.5.1's wording where it had the Event.
    pub fn note(&self) -> String {
        match self {
            ControllerEvent::Paused => "Reconciliation paused".to_owned(),
            ControllerEvent::ProfilesInvalid { problems } => {
                format!("Profile validation failed: {problems}")
            }
            ControllerEvent::GatewaysDiscovered { now, was } => {
                format!("Discovered {now} gateway(s) (was {was})")
            }
            ControllerEvent::MissingSidecar { pod } => format!(
                "Pod {pod} has inject annotation but no stoker-agent sidecar — webhook may have been unavailable during pod creation. Delete and recreate the pod."
            ),
            ControllerEvent::SyncFailed {
                gateway,
                pod,
                message,
            } => format!("gateway {gateway} ({pod}): {message}"),
            ControllerEvent::SyncCompleted { summary, commit } => {
                format!("All gateways synced to {commit} ({summary})")
            }
            ControllerEvent::WebhookSecretMissing { message } => message.clone(),
        }
    }
}

/// The Events a reconciliation that turned `previous` into `current` publishes, in this
/// order: `Paused` (the `Ready` reason became `Paused`), `ProfilesInvalid` (`ProfilesValid`
/// became `False` or its message changed), `GatewaysDiscovered` (the count changed),
/// `MissingSidecar` (per pod that became `MissingSidecar`), `SyncFailed` (per gateway that
/// became `Error`), `SyncCompleted` (`AllGatewaysSynced` became `True`),
/// `WebhookSecretMissing` (`WebhookSecretReady` became `False` or its message changed). Equal
/// statuses give none.
pub fn status_events(
    previous: &GatewaySyncStatus,
    current: &GatewaySyncStatus,
) -> Vec<ControllerEvent> {
    let mut events = Vec::new();
    let paused = |s: &GatewaySyncStatus| {
        conditions::has_reason(&s.conditions, READY, conditions::reasons::PAUSED)
    };
    if paused(current) && !paused(previous) {
        events.push(ControllerEvent::Paused);
    }
    if let Some(invalid) = conditions::find(&current.conditions, PROFILES_VALID)
        .filter(|_| conditions::is_false(&current.conditions, PROFILES_VALID))
    {
        let before = conditions::find(&previous.conditions, PROFILES_VALID);
        let news = !conditions::is_false(&previous.conditions, PROFILES_VALID)
            || before.is_some_and(|b| b.message != invalid.message);
        if news {
            events.push(ControllerEvent::ProfilesInvalid {
                problems: invalid.message.clone(),
            });
        }
    }
    let (now, was) = (
        current.discovered_gateways.len(),
        previous.discovered_gateways.len(),
    );
    if now != was {
        events.push(ControllerEvent::GatewaysDiscovered { now, was });
    }
    for gateway in newly(previous, current, SyncStatus::MissingSidecar) {
        events.push(ControllerEvent::MissingSidecar {
            pod: gateway.pod_name.clone(),
        });
    }
    for gateway in newly(previous, current, SyncStatus::Error) {
        events.push(ControllerEvent::SyncFailed {
            gateway: gateway.name.clone(),
            pod: gateway.pod_name.clone(),
            message: gateway.message.clone().unwrap_or_default(),
        });
    }
    let all = |s: &GatewaySyncStatus| conditions::is_true(&s.conditions, ALL_GATEWAYS_SYNCED);
    if all(current) && !all(previous) {
        events.push(ControllerEvent::SyncCompleted {
            summary: current.gateway_summary.clone().unwrap_or_default(),
            commit: current.last_sync_commit_short.clone().unwrap_or_default(),
        });
    }
    let webhook_secret = crate::receiver::secret_ref::WEBHOOK_SECRET_READY;
    if let Some(missing) = conditions::find(&current.conditions, webhook_secret)
        .filter(|_| conditions::is_false(&current.conditions, webhook_secret))
    {
        let before = conditions::find(&previous.conditions, webhook_secret);
        let news = !conditions::is_false(&previous.conditions, webhook_secret)
            || before.is_some_and(|b| b.message != missing.message);
        if news {
            events.push(ControllerEvent::WebhookSecretMissing {
                message: missing.message.clone(),
            });
        }
    }
    events
}

/// The gateways of `current` in `status` that were not in it (or not there) in `previous`.
fn newly<'a>(
    previous: &'a GatewaySyncStatus,
    current: &'a GatewaySyncStatus,
    status: SyncStatus,
) -> impl Iterator<Item = &'a DiscoveredGateway> {
    current
        .discovered_gateways
        .iter()
        .filter(move |gateway| gateway.sync_status == status)
        .filter(move |gateway| {
            !previous
                .discovered_gateways
                .iter()
                .any(|g| g.pod_name == gateway.pod_name && g.sync_status == status)
        })
}

/// Publishes `event` about `regarding` as an Event object of its own.
///
/// Not through one long-lived kube-runtime `Recorder`: it folds every later Event with the
/// same type, reason and action into the first one's series and keeps the first one's note,
/// so `Discovered 4 gateway(s)` after `Discovered 3 gateway(s)`, or a second gateway's
/// `SyncFailed`, only bumped a count under the old text. The rules of this module already
/// publish each Event once per change; each gets its own object, with its own note.
pub async fn publish(
    client: &kube::Client,
    reporter: &Reporter,
    event: &Event,
    regarding: &ObjectReference,
) -> Result<(), kube::Error> {
    Recorder::new(client.clone(), reporter.clone())
        .publish(event, regarding)
        .await
}

/// Whether a failed resolution is news, so that `RefResolutionFailed` (or
/// `GitHubAppExchangeFailed`) is published: only when `RefResolved` was not already `False`
/// before this reconciliation (as v0.5.1 decides). A resource that keeps failing, whatever the
/// retry delay in its message, publishes it once; after a success, a new failure is news again.
pub fn resolution_failure_is_news(previous: &GatewaySyncStatus) -> bool {
    !conditions::is_false(&previous.conditions, REF_RESOLVED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::{Status, new, reasons as why, set};
    use jiff::Timestamp;

    fn gateway(pod: &str, status: SyncStatus) -> DiscoveredGateway {
        DiscoveredGateway {
            name: format!("gw-{pod}"),
            pod_name: pod.to_owned(),
            sync_status: status,
            message: Some(format!("{pod} says {status}")),
            ..Default::default()
        }
    }

    fn with_condition(
        mut status: GatewaySyncStatus,
        type_: &str,
        value: Status,
        reason: &str,
        message: &str,
    ) -> GatewaySyncStatus {
        set(
            &mut status.conditions,
            new(type_, value, reason, message, 1, Timestamp::UNIX_EPOCH),
        );
        status
    }

    #[test]
    fn a_steady_state_publishes_nothing() {
        let status = GatewaySyncStatus {
            discovered_gateways: vec![
                gateway("a", SyncStatus::MissingSidecar),
                gateway("b", SyncStatus::Error),
            ],
            ..Default::default()
        };
        let status = with_condition(status, READY, Status::False, why::PAUSED, "x");
        let status = with_condition(
            status,
            PROFILES_VALID,
            Status::False,
            why::PROFILES_INVALID,
            "bad",
        );
        assert!(status_events(&status, &status).is_empty());
    }

    #[test]
    fn a_missing_webhook_secret_is_a_warning_once_per_new_message() {
        use crate::receiver::secret_ref::WEBHOOK_SECRET_READY;
        let found = with_condition(
            GatewaySyncStatus::default(),
            WEBHOOK_SECRET_READY,
            Status::True,
            "SecretFound",
            "set",
        );
        let missing = |message| {
            with_condition(
                found.clone(),
                WEBHOOK_SECRET_READY,
                Status::False,
                "SecretNotFound",
                message,
            )
        };
        let gone = missing("Secret \"hooks\" not found");
        let events = status_events(&found, &gone);
        assert_eq!(
            events,
            [ControllerEvent::WebhookSecretMissing {
                message: "Secret \"hooks\" not found".to_owned()
            }]
        );
        assert_eq!(
            (events[0].reason(), events[0].is_warning()),
            ("WebhookSecretMissing", true)
        );
        assert!(status_events(&gone, &gone).is_empty());
        assert_eq!(
            status_events(&gone, &missing("Secret \"hooks\" has no key \"k\"")).len(),
            1
        );
        assert!(status_events(&gone, &found).is_empty());
        // Appearing already missing (the first reconciliation) is news too.
        assert_eq!(status_events(&GatewaySyncStatus::default(), &gone).len(), 1);
    }

    #[test]
    fn paused_once_when_it_takes_effect() {
        let before = with_condition(
            GatewaySyncStatus::default(),
            READY,
            Status::False,
            why::RECONCILING,
            "Waiting for gateways to sync",
        );
        let after = with_condition(
            before.clone(),
            READY,
            Status::False,
            why::PAUSED,
            "Reconciliation paused",
        );
        let events = status_events(&before, &after);
        assert_eq!(events, [ControllerEvent::Paused]);
        assert_eq!(
            (events[0].reason(), events[0].is_warning()),
            ("Paused", false)
        );
        assert_eq!(events[0].note(), "Reconciliation paused");
        assert!(status_events(&after, &after).is_empty());
    }

    #[test]
    fn profiles_invalid_when_it_turns_false_or_says_something_new() {
        let valid = with_condition(
            GatewaySyncStatus::default(),
            PROFILES_VALID,
            Status::True,
            why::PROFILES_VALID,
            "All profiles valid",
        );
        let invalid = |message: &str| {
            with_condition(
                valid.clone(),
                PROFILES_VALID,
                Status::False,
                why::PROFILES_INVALID,
                message,
            )
        };
        let events = status_events(&valid, &invalid("a: bad"));
        assert_eq!(
            events,
            [ControllerEvent::ProfilesInvalid {
                problems: "a: bad".to_owned()
            }]
        );
        assert!(events[0].is_warning());
        assert_eq!(events[0].note(), "Profile validation failed: a: bad");
        assert!(status_events(&invalid("a: bad"), &invalid("a: bad")).is_empty());
        assert_eq!(
            status_events(&invalid("a: bad"), &invalid("b: worse")).len(),
            1
        );
        assert!(status_events(&invalid("a: bad"), &valid).is_empty());
        // The first reconciliation of an invalid resource.
        assert_eq!(
            status_events(&GatewaySyncStatus::default(), &invalid("a: bad")).len(),
            1
        );
    }

    #[test]
    fn gateways_discovered_when_the_count_changes() {
        let before = GatewaySyncStatus {
            discovered_gateways: vec![gateway("a", SyncStatus::Pending)],
            ..Default::default()
        };
        let mut after = before.clone();
        after
            .discovered_gateways
            .push(gateway("b", SyncStatus::Pending));
        let events = status_events(&before, &after);
        assert_eq!(
            events,
            [ControllerEvent::GatewaysDiscovered { now: 2, was: 1 }]
        );
        assert_eq!(events[0].note(), "Discovered 2 gateway(s) (was 1)");
        assert!(!events[0].is_warning());
        // A pod replaced by another: same count, no Event.
        let mut replaced = before.clone();
        replaced.discovered_gateways[0].pod_name = "a2".to_owned();
        assert!(status_events(&before, &replaced).is_empty());
        assert_eq!(
            status_events(&after, &before),
            [ControllerEvent::GatewaysDiscovered { now: 1, was: 2 }]
        );
    }

    #[test]
    fn missing_sidecar_and_sync_failed_per_gateway_that_turns() {
        let before = GatewaySyncStatus {
            discovered_gateways: vec![
                gateway("a", SyncStatus::MissingSidecar),
                gateway("b", SyncStatus::Synced),
                gateway("c", SyncStatus::Pending),
            ],
            ..Default::default()
        };
        let mut after = before.clone();
        after.discovered_gateways[1] = gateway("b", SyncStatus::Error);
        after.discovered_gateways[2] = gateway("c", SyncStatus::MissingSidecar);
        let events = status_events(&before, &after);
        assert_eq!(
            events,
            [
                ControllerEvent::MissingSidecar {
                    pod: "c".to_owned()
                },
                ControllerEvent::SyncFailed {
                    gateway: "gw-b".to_owned(),
                    pod: "b".to_owned(),
                    message: "b says Error".to_owned()
                },
            ]
        );
        assert!(events.iter().all(ControllerEvent::is_warning));
        assert!(
            events[0]
                .note()
                .starts_with("Pod c has inject annotation but no stoker-agent sidecar")
        );
        assert_eq!(events[1].note(), "gateway gw-b (b): b says Error");
    }

    #[test]
    fn sync_completed_when_all_gateways_become_synced() {
        let mut before = with_condition(
            GatewaySyncStatus::default(),
            ALL_GATEWAYS_SYNCED,
            Status::False,
            why::SYNC_IN_PROGRESS,
            "1/2 synced",
        );
        before.discovered_gateways = vec![
            gateway("a", SyncStatus::Synced),
            gateway("b", SyncStatus::Pending),
        ];
        let mut after = with_condition(
            before.clone(),
            ALL_GATEWAYS_SYNCED,
            Status::True,
            why::SYNC_SUCCEEDED,
            "2/2 synced",
        );
        after.discovered_gateways[1].sync_status = SyncStatus::Synced;
        after.gateway_summary = Some("2/2 synced".to_owned());
        after.last_sync_commit_short = Some("0123456".to_owned());
        let events = status_events(&before, &after);
        assert_eq!(events.len(), 1);
        assert_eq!(
            (events[0].reason(), events[0].note().as_str()),
            (
                "SyncCompleted",
                "All gateways synced to 0123456 (2/2 synced)"
            )
        );
        assert!(status_events(&after, &after).is_empty());
    }

    /// Regression: the reconciler compared the previous condition's message
    /// (`resolving main: <error>`) with the bare error, which never matched, so
    /// `RefResolutionFailed` was published on every failed reconciliation.
    #[test]
    fn a_resolution_failure_is_news_once() {
        let fresh = GatewaySyncStatus::default();
        assert!(resolution_failure_is_news(&fresh));
        let failing = with_condition(
            fresh.clone(),
            REF_RESOLVED,
            Status::False,
            why::REF_RESOLUTION_FAILED,
            "Ref resolution failed (retry in 5s): not found",
        );
        assert!(!resolution_failure_is_news(&failing));
        let resolved = with_condition(
            failing,
            REF_RESOLVED,
            Status::True,
            why::REF_RESOLVED,
            "0123",
        );
        assert!(resolution_failure_is_news(&resolved));
    }
}
