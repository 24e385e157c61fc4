//! Status conditions (the standard `metav1.Condition` shape): the types and reasons Stoker
//! uses, and a setter that keeps `lastTransitionTime` while the status does not change.
//!
//! ```
//! use k8s_openapi::jiff::Timestamp;
//! use stoker_k8s::conditions::{self, Status, READY};
//! let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
//! let t1: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
//! let mut list = Vec::new();
//! conditions::set(&mut list, conditions::new(READY, Status::False, "Reconciling", "waiting", 1, t0));
//! conditions::set(&mut list, conditions::new(READY, Status::False, "Reconciling", "still waiting", 2, t1));
//! assert_eq!(list.len(), 1);
//! assert_eq!(list[0].last_transition_time.0, t0); // same status: time kept
//! assert_eq!(list[0].message, "still waiting");
//! ```

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The ref resolved to a commit.
pub const REF_RESOLVED: &str = "RefResolved";
/// The profiles (and the Secrets the spec references) are valid.
pub const PROFILES_VALID: &str = "ProfilesValid";
/// Every discovered gateway reports `Synced` at the resolved commit.
pub const ALL_GATEWAYS_SYNCED: &str = "AllGatewaysSynced";
/// Every discovered gateway pod has the agent sidecar.
pub const SIDECAR_INJECTED: &str = "SidecarInjected";
/// SSH auth verifies the server's host key (only present with SSH auth).
pub const SSH_HOST_KEY_VERIFICATION: &str = "SSHHostKeyVerification";
/// Ref resolved, profiles valid and every gateway synced.
pub const READY: &str = "Ready";
/// `True` when a gateway reports a ref or commit other than the resolved one (ours).
pub const REF_SKEW: &str = "RefSkew";
/// Every discovered gateway's agent was heard from within 3 sync periods of its profile (ours).
pub const AGENT_READY: &str = "AgentReady";
/// The profiles this one depends on are synced (ours; reserved for sync ordering, which does
/// not exist yet: never set).
pub const DEPENDENCIES_MET: &str = "DependenciesMet";
/// Present, `False`, only while `spec.polling.interval` is not a positive Go duration (the
/// operator then polls at the default, 60s); absent otherwise (ours).
pub const POLLING_INTERVAL_VALID: &str = "PollingIntervalValid";

/// Reasons (`CamelCase`, as the API requires) Stoker puts on its conditions.
pub mod reasons {
    /// `RefResolved=True`.
    pub const REF_RESOLVED: &str = "RefResolved";
    /// `RefResolved=False`.
    pub const REF_RESOLUTION_FAILED: &str = "RefResolutionFailed";
    /// `RefResolved=False`: a GitHub App resource has no installation token to resolve with
    /// (the exchange failed and no unexpired token is kept).
    pub const GITHUB_APP_EXCHANGE_FAILED: &str = "GitHubAppExchangeFailed";
    /// `ProfilesValid=True`.
    pub const PROFILES_VALID: &str = "ProfilesValid";
    /// `ProfilesValid=False`.
    pub const PROFILES_INVALID: &str = "ProfilesInvalid";
    /// `AllGatewaysSynced=True`, `Ready=True`.
    pub const SYNC_SUCCEEDED: &str = "SyncSucceeded";
    /// `AllGatewaysSynced=False`: not every gateway is synced (pending, failed or missing the
    /// sidecar: which one and why is in `status.discoveredGateways` and in Events).
    pub const SYNC_IN_PROGRESS: &str = "SyncInProgress";
    /// `AllGatewaysSynced=False`, `AgentReady=False`: no gateway pod is discovered.
    pub const NO_GATEWAYS: &str = "NoGatewaysDiscovered";
    /// `AgentReady=True`.
    pub const AGENTS_REPORTING: &str = "AgentsReporting";
    /// `AgentReady=False`: some gateway's agent is missing or silent.
    pub const AGENTS_NOT_REPORTING: &str = "AgentsNotReporting";
    /// `SidecarInjected=True`.
    pub const SIDECAR_PRESENT: &str = "SidecarPresent";
    /// `SidecarInjected=False`.
    pub const SIDECAR_MISSING: &str = "SidecarMissing";
    /// `SSHHostKeyVerification=True`.
    pub const HOST_KEY_VERIFICATION_ENABLED: &str = "HostKeyVerificationEnabled";
    /// `SSHHostKeyVerification=False`.
    pub const HOST_KEY_VERIFICATION_DISABLED: &str = "HostKeyVerificationDisabled";
    /// `RefSkew=False`.
    pub const NO_SKEW: &str = "NoSkew";
    /// `RefSkew=True`.
    pub const GATEWAYS_AT_OTHER_REVISION: &str = "GatewaysAtOtherRevision";
    /// `Ready=False` while waiting for something.
    pub const RECONCILING: &str = "Reconciling";
    /// `Ready=False` because `spec.paused` is set.
    pub const PAUSED: &str = "Paused";
    /// `PollingIntervalValid=False`.
    pub const INVALID_POLLING_INTERVAL: &str = "InvalidPollingInterval";
}

/// A condition's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `True`.
    True,
    /// `False`.
    False,
    /// `Unknown`.
    Unknown,
}

impl Status {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::True => "True",
            Status::False => "False",
            Status::Unknown => "Unknown",
        }
    }

    /// `True` for `true`, `False` for `false`.
    pub fn from_bool(value: bool) -> Self {
        if value { Status::True } else { Status::False }
    }

    /// The status an API spelling stands for; `None` for anything else.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "True" => Some(Status::True),
            "False" => Some(Status::False),
            "Unknown" => Some(Status::Unknown),
            _ => None,
        }
    }
}

/// A condition with `lastTransitionTime` = `now`.
pub fn new(
    type_: &str,
    status: Status,
    reason: &str,
    message: impl Into<String>,
    observed_generation: i64,
    now: Timestamp,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.as_str().to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation: Some(observed_generation),
        last_transition_time: Time(now),
    }
}

/// Puts `condition` into `conditions`, replacing the one of the same type. When the status does
/// not change, the old `lastTransitionTime` is kept (reason, message and generation are
/// updated). Returns true when anything changed.
pub fn set(conditions: &mut Vec<Condition>, mut condition: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            if existing.status == condition.status {
                condition.last_transition_time = existing.last_transition_time.clone();
            }
            let changed = *existing != condition;
            *existing = condition;
            changed
        }
        None => {
            conditions.push(condition);
            true
        }
    }
}

/// Removes the condition of type `type_`; returns true when there was one.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// The condition of type `type_`.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// The status of the condition of type `type_`, when there is one (with a valid status).
pub fn status(conditions: &[Condition], type_: &str) -> Option<Status> {
    find(conditions, type_).and_then(|c| Status::parse(&c.status))
}

/// True when the condition of type `type_` exists with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    status(conditions, type_) == Some(Status::True)
}

/// True when the condition of type `type_` exists with status `False`.
pub fn is_false(conditions: &[Condition], type_: &str) -> bool {
    status(conditions, type_) == Some(Status::False)
}

/// True when the condition of type `type_` exists with reason `reason` (one of [`reasons`]).
pub fn has_reason(conditions: &[Condition], type_: &str, reason: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.reason == reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_status_change_moves_the_transition_time() {
        let mut list = Vec::new();
        set(
            &mut list,
            new(
                READY,
                Status::False,
                "A",
                "a",
                1,
                at("2026-01-01T00:00:00Z"),
            ),
        );
        assert!(set(
            &mut list,
            new(READY, Status::True, "B", "b", 1, at("2026-01-01T01:00:00Z"))
        ));
        assert_eq!(list[0].last_transition_time.0, at("2026-01-01T01:00:00Z"));
        assert_eq!(list[0].status, "True");
    }

    #[test]
    fn setting_the_same_condition_again_is_no_change() {
        let mut list = Vec::new();
        set(
            &mut list,
            new(READY, Status::True, "A", "a", 1, at("2026-01-01T00:00:00Z")),
        );
        assert!(!set(
            &mut list,
            new(READY, Status::True, "A", "a", 1, at("2026-01-02T00:00:00Z"))
        ));
        assert_eq!(list[0].last_transition_time.0, at("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn other_types_are_left_alone_and_order_is_kept() {
        let t = at("2026-01-01T00:00:00Z");
        let mut list = Vec::new();
        set(&mut list, new(REF_RESOLVED, Status::True, "R", "", 1, t));
        set(&mut list, new(READY, Status::True, "R", "", 1, t));
        set(&mut list, new(REF_RESOLVED, Status::False, "F", "x", 2, t));
        assert_eq!(
            list.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
            [REF_RESOLVED, READY]
        );
        assert!(!is_true(&list, REF_RESOLVED));
        assert!(is_false(&list, REF_RESOLVED));
        assert!(has_reason(&list, REF_RESOLVED, "F"));
        assert_eq!(status(&list, READY), Some(Status::True));
        assert!(is_true(&list, READY));
        assert!(remove(&mut list, READY));
        assert!(!remove(&mut list, READY));
        assert!(find(&list, READY).is_none());
    }
}
