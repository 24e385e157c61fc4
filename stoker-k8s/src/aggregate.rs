//! Status aggregation: discovered pods + agents' status reports + the resolved revision →
//! `status.discoveredGateways`, the `GATEWAYS` column, and the conditions `AllGatewaysSynced`,
//! `SidecarInjected`, `RefSkew`, `SSHHostKeyVerification` and `Ready`.
//!
//! The reconciler sets `RefResolved` ([`record_resolution`] / [`record_resolution_failure`])
//! and `ProfilesValid` ([`crate::validation`]) first, then calls [`aggregate`].
//!
//! ```
//! use jiff::Timestamp;
//! use stoker_k8s::aggregate::{aggregate, record_resolution, AggregateInput, Revision};
//! use stoker_k8s::{conditions, validation, GatewaySync};
//! let gs: GatewaySync = serde_json::from_value(serde_json::json!({
//!     "apiVersion": "stoker.io/v1alpha1", "kind": "GatewaySync",
//!     "metadata": {"name": "site", "namespace": "plant", "generation": 2},
//!     "spec": {"git": {"repo": "r", "ref": "main"},
//!              "sync": {"profiles": {"p": {"mappings": [{"source": "a", "destination": "b"}]}}}}
//! })).unwrap();
//! let now = Timestamp::UNIX_EPOCH;
//! let mut status = gs.status.clone().unwrap_or_default();
//! let revision = Revision { reference: "main".into(), commit: "0123456789abcdef0123456789abcdef01234567".into() };
//! record_resolution(&mut status, &revision, 2, now);
//! conditions::set(&mut status.conditions, validation::profiles_valid_condition(&[], 2, now));
//! aggregate(&mut status, &AggregateInput { gs: &gs, pods: &[], reports: &[], resolved: Some(&revision), now });
//! assert_eq!(status.gateway_summary.as_deref(), Some("0/0 synced"));
//! assert_eq!(status.last_sync_commit_short.as_deref(), Some("0123456"));
//! assert!(!conditions::is_true(&status.conditions, conditions::READY));
//! ```

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

use crate::conditions::{
    self, ALL_GATEWAYS_SYNCED, PROFILES_VALID, READY, REF_RESOLVED, REF_SKEW, SIDECAR_INJECTED,
    SSH_HOST_KEY_VERIFICATION, Status, reasons,
};
use crate::crd::{
    DiscoveredGateway, GatewaySync, GatewaySyncSpec, GatewaySyncStatus, RefResolutionStatus,
    SyncStatus,
};
use crate::discovery::GatewayPod;
use crate::gateway_status::{GatewayStatusReport, format_duration};
use crate::refs::refs_match;

/// A ref and the commit it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// The ref (`main`, `v1.2.0`).
    pub reference: String,
    /// The full commit SHA.
    pub commit: String,
}

/// What [`aggregate`] works from.
#[derive(Debug, Clone, Copy)]
pub struct AggregateInput<'a> {
    /// The resource (name, generation, spec).
    pub gs: &'a GatewaySync,
    /// Its discovered gateway pods ([`crate::discovery::discover`]).
    pub pods: &'a [GatewayPod],
    /// The agents' status reports (ConfigMaps listed with
    /// [`crate::gateway_status::status_configmap_selector`]); reports of other resources or of
    /// pods no longer discovered are ignored.
    pub reports: &'a [GatewayStatusReport],
    /// The revision the ref resolved to, if it did.
    pub resolved: Option<&'a Revision>,
    /// The time to stamp on changed conditions.
    pub now: Timestamp,
}

/// The first 7 characters of a commit SHA.
///
/// ```
/// assert_eq!(stoker_k8s::aggregate::short_commit("0123456789abcdef"), "0123456");
/// assert_eq!(stoker_k8s::aggregate::short_commit("abc"), "abc");
/// ```
pub fn short_commit(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

/// Records a successful resolution: `RefResolved=True`, `refResolutionStatus: Resolved`, and,
/// when the commit changed, `lastSyncRef`, `lastSyncCommit`, `lastSyncCommitShort` and
/// `lastSyncTime` (so `lastSyncTime` is when the resolved commit last changed).
pub fn record_resolution(
    status: &mut GatewaySyncStatus,
    revision: &Revision,
    generation: i64,
    now: Timestamp,
) {
    status.ref_resolution_status = Some(RefResolutionStatus::Resolved);
    if status.last_sync_commit.as_deref() != Some(revision.commit.as_str())
        || status.last_sync_ref.as_deref() != Some(revision.reference.as_str())
    {
        if status.last_sync_commit.as_deref() != Some(revision.commit.as_str()) {
            status.last_sync_time = Some(Time(now));
        }
        status.last_sync_ref = Some(revision.reference.clone());
        status.last_sync_commit = Some(revision.commit.clone());
        status.last_sync_commit_short = Some(short_commit(&revision.commit).to_owned());
    }
    conditions::set(
        &mut status.conditions,
        conditions::new(
            REF_RESOLVED,
            Status::True,
            reasons::REF_RESOLVED,
            format!("{} resolved to {}", revision.reference, revision.commit),
            generation,
            now,
        ),
    );
}

/// Records a failed resolution: `RefResolved=False` with `reason` (`RefResolutionFailed`, or
/// `GitHubAppExchangeFailed` when there was no token to resolve with) and the error,
/// `refResolutionStatus: Error`. The last resolved commit stays in the status (agents keep it).
pub fn record_resolution_failure(
    status: &mut GatewaySyncStatus,
    reference: &str,
    reason: &str,
    error: &str,
    generation: i64,
    now: Timestamp,
) {
    status.ref_resolution_status = Some(RefResolutionStatus::Error);
    conditions::set(
        &mut status.conditions,
        conditions::new(
            REF_RESOLVED,
            Status::False,
            reason,
            format!("resolving {reference}: {error}"),
            generation,
            now,
        ),
    );
}

/// Fills the status from the input: `observedGeneration`, `profileCount`,
/// `discoveredGateways`, `gatewaySummary` and the conditions `AllGatewaysSynced`,
/// `SidecarInjected`, `RefSkew`, `SSHHostKeyVerification` (removed unless SSH auth is used)
/// and `Ready` (from the conditions already present, so set `RefResolved` and `ProfilesValid`
/// first). Transition times of conditions whose status did not change are kept.
pub fn aggregate(status: &mut GatewaySyncStatus, input: &AggregateInput<'_>) {
    let generation = input.gs.metadata.generation.unwrap_or_default();
    let now = input.now;
    let spec = &input.gs.spec;
    let gateways = merge_gateways(
        &input.gs.name_any(),
        input.pods,
        input.reports,
        input.resolved,
    );

    status.observed_generation = Some(generation);
    status.profile_count = i32::try_from(spec.sync.profiles.len()).unwrap_or(i32::MAX);
    status.gateway_summary = Some(gateway_summary(&gateways));
    let list = &mut status.conditions;
    conditions::set(list, all_gateways_synced(&gateways, generation, now));
    conditions::set(list, sidecar_injected(&gateways, generation, now));
    let pinned: Vec<&str> = input
        .pods
        .iter()
        .filter(|pod| pod.ref_override.is_some())
        .map(|pod| pod.pod_name.as_str())
        .collect();
    conditions::set(
        list,
        ref_skew(&gateways, &pinned, input.resolved, generation, now),
    );
    match ssh_host_key_verification(spec, generation, now) {
        Some(condition) => {
            conditions::set(list, condition);
        }
        None => {
            conditions::remove(list, SSH_HOST_KEY_VERIFICATION);
        }
    }
    let ready = ready(list, spec.paused, generation, now);
    conditions::set(list, ready);
    status.discovered_gateways = gateways;
}

/// One `discoveredGateways` entry per discovered pod, with its agent's report when there is one
/// (matched by pod name and resource name).
///
/// A pod without the agent is `MissingSidecar` when it asks for injection, else `Pending`. A report of `Synced` at a commit other than
/// the resolved one counts as `Pending` (the agent has not caught up yet), unless the pod pins
/// its own ref (`stoker.io/ref-override`). Without a report a gateway is `Pending`.
pub fn merge_gateways(
    cr_name: &str,
    pods: &[GatewayPod],
    reports: &[GatewayStatusReport],
    resolved: Option<&Revision>,
) -> Vec<DiscoveredGateway> {
    pods.iter()
        .map(|pod| {
            let mut gateway = DiscoveredGateway {
                name: pod.gateway_name.clone(),
                namespace: pod.namespace.clone(),
                pod_name: pod.pod_name.clone(),
                service_account_name: Some(pod.service_account_name.clone()),
                profile: pod.profile.clone(),
                ..Default::default()
            };
            let report = reports
                .iter()
                .find(|r| r.cr_name == cr_name && r.pod == pod.pod_name);
            if let Some(report) = report {
                gateway.sync_status = report.status;
                gateway.last_sync_time = Some(Time(report.time));
                gateway.last_sync_duration = report.duration.map(format_duration);
                gateway.synced_commit = report.commit.clone();
                gateway.synced_ref = report.reference.clone();
                gateway.agent_version =
                    Some(report.agent_version.clone()).filter(|v| !v.is_empty());
                gateway.last_scan_result = report.last_scan_result.clone();
                gateway.files_changed = i64::try_from(report.files_changed()).unwrap_or(i64::MAX);
                gateway.projects_synced = report.projects.clone();
                gateway.message = report.message.clone();
                if let Some(resolved) = resolved
                    && report.status == SyncStatus::Synced
                    && pod.ref_override.is_none()
                    && report.commit.as_deref() != Some(resolved.commit.as_str())
                {
                    gateway.sync_status = SyncStatus::Pending;
                    gateway.message = Some(format!(
                        "synced to {}; waiting for {}",
                        report.commit.as_deref().map_or("no commit", short_commit),
                        short_commit(&resolved.commit)
                    ));
                }
            } else if pod.sidecar_injected {
                gateway.message = Some("waiting for the agent's first report".to_owned());
            }
            if !pod.sidecar_injected {
                without_sidecar(&mut gateway, pod.inject_requested);
            }
            gateway
        })
        .collect()
}

/// A pod without the agent: `MissingSidecar` when it asks for injection (the webhook missed
/// it), as in stoker-operator v0.5.1; otherwise `Pending` (whatever an earlier pod of the same
/// name reported), saying how to add the agent.
fn without_sidecar(gateway: &mut DiscoveredGateway, inject_requested: bool) {
    if inject_requested {
        gateway.sync_status = SyncStatus::MissingSidecar;
        gateway.message = Some("the pod asks for injection but has no stoker-agent sidecar (the webhook was not reachable when it was created?): delete the pod to have it recreated".to_owned());
    } else {
        gateway.sync_status = SyncStatus::Pending;
        gateway.message = Some(
            "the pod has no stoker-agent sidecar: annotate it stoker.io/inject: \"true\", or add the sidecar to its template".to_owned(),
        );
    }
}

/// The `GATEWAYS` column: `{synced}/{total} synced`.
///
/// ```
/// assert_eq!(stoker_k8s::aggregate::gateway_summary(&[]), "0/0 synced");
/// ```
pub fn gateway_summary(gateways: &[DiscoveredGateway]) -> String {
    let synced = count(gateways, SyncStatus::Synced);
    format!("{synced}/{} synced", gateways.len())
}

fn count(gateways: &[DiscoveredGateway], status: SyncStatus) -> usize {
    gateways.iter().filter(|g| g.sync_status == status).count()
}

fn names(gateways: &[DiscoveredGateway], status: SyncStatus) -> String {
    gateways
        .iter()
        .filter(|g| g.sync_status == status)
        .map(|g| g.pod_name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `AllGatewaysSynced`: `True` when there is at least one gateway and all are `Synced`;
/// message `2 of 3 synced`, followed by which pods are in error, missing the sidecar or pending.
pub fn all_gateways_synced(
    gateways: &[DiscoveredGateway],
    generation: i64,
    now: Timestamp,
) -> Condition {
    let total = gateways.len();
    let synced = count(gateways, SyncStatus::Synced);
    if total == 0 {
        return conditions::new(
            ALL_GATEWAYS_SYNCED,
            Status::False,
            reasons::NO_GATEWAYS,
            "no running pod is annotated stoker.io/cr-name with this resource's name",
            generation,
            now,
        );
    }
    let mut message = format!("{synced} of {total} synced");
    for (status, label) in [
        (SyncStatus::Error, "error"),
        (SyncStatus::MissingSidecar, "missing sidecar"),
        (SyncStatus::Pending, "pending"),
    ] {
        let n = count(gateways, status);
        if n > 0 {
            message.push_str(&format!("; {label}: {}", names(gateways, status)));
        }
    }
    let (status, reason) = if synced == total {
        (Status::True, reasons::SYNC_SUCCEEDED)
    } else if count(gateways, SyncStatus::Error) > 0 {
        (Status::False, reasons::SYNC_FAILED)
    } else if count(gateways, SyncStatus::MissingSidecar) > 0 {
        (Status::False, reasons::SIDECAR_MISSING)
    } else {
        (Status::False, reasons::SYNC_IN_PROGRESS)
    };
    conditions::new(
        ALL_GATEWAYS_SYNCED,
        status,
        reason,
        message,
        generation,
        now,
    )
}

/// `SidecarInjected`: `True` when every discovered pod has the agent.
pub fn sidecar_injected(
    gateways: &[DiscoveredGateway],
    generation: i64,
    now: Timestamp,
) -> Condition {
    let missing = count(gateways, SyncStatus::MissingSidecar);
    if missing == 0 {
        conditions::new(
            SIDECAR_INJECTED,
            Status::True,
            reasons::SIDECAR_PRESENT,
            "every discovered gateway pod has the stoker-agent sidecar",
            generation,
            now,
        )
    } else {
        conditions::new(
            SIDECAR_INJECTED,
            Status::False,
            reasons::SIDECAR_MISSING,
            format!(
                "{missing} gateway pod(s) without the stoker-agent sidecar: {}",
                names(gateways, SyncStatus::MissingSidecar)
            ),
            generation,
            now,
        )
    }
}

/// `RefSkew`: `True` when a gateway reports a commit, or a ref, other than the resolved one —
/// including pods pinned with `stoker.io/ref-override` (`pinned`: their names), which is what
/// the condition is for: it shows that a gateway deliberately runs another ref, and the message
/// says it is pinned; `Unknown` while nothing is resolved. Gateways that have not reported are not skewed, only
/// pending.
pub fn ref_skew(
    gateways: &[DiscoveredGateway],
    pinned: &[&str],
    resolved: Option<&Revision>,
    generation: i64,
    now: Timestamp,
) -> Condition {
    let Some(resolved) = resolved else {
        return conditions::new(
            REF_SKEW,
            Status::Unknown,
            reasons::RECONCILING,
            "the ref is not resolved yet",
            generation,
            now,
        );
    };
    let skewed: Vec<String> = gateways
        .iter()
        .filter_map(|g| {
            let commit_differs = g
                .synced_commit
                .as_deref()
                .is_some_and(|c| c != resolved.commit);
            let ref_differs = g
                .synced_ref
                .as_deref()
                .is_some_and(|r| !refs_match(r, &resolved.reference));
            (commit_differs || ref_differs).then(|| {
                let why = if pinned.contains(&g.pod_name.as_str()) {
                    ", pinned by stoker.io/ref-override"
                } else {
                    ""
                };
                format!(
                    "{} at {} ({}{why})",
                    g.pod_name,
                    g.synced_commit.as_deref().map_or("?", short_commit),
                    g.synced_ref.as_deref().unwrap_or("?")
                )
            })
        })
        .collect();
    if skewed.is_empty() {
        conditions::new(
            REF_SKEW,
            Status::False,
            reasons::NO_SKEW,
            format!(
                "every reporting gateway is at {} ({})",
                short_commit(&resolved.commit),
                resolved.reference
            ),
            generation,
            now,
        )
    } else {
        conditions::new(
            REF_SKEW,
            Status::True,
            reasons::GATEWAYS_AT_OTHER_REVISION,
            format!(
                "{} gateway(s) not at {} ({}): {}",
                skewed.len(),
                short_commit(&resolved.commit),
                resolved.reference,
                skewed.join(", ")
            ),
            generation,
            now,
        )
    }
}

/// `SSHHostKeyVerification`, only for SSH auth: `True` with `knownHosts`, `False` (a warning:
/// the server's host key is not verified) without. `None` for other auth methods.
pub fn ssh_host_key_verification(
    spec: &GatewaySyncSpec,
    generation: i64,
    now: Timestamp,
) -> Option<Condition> {
    let ssh = spec.git.auth.as_ref()?.ssh_key.as_ref()?;
    Some(if ssh.known_hosts.is_some() {
        conditions::new(
            SSH_HOST_KEY_VERIFICATION,
            Status::True,
            reasons::HOST_KEY_VERIFICATION_ENABLED,
            "SSH host keys are verified against spec.git.auth.sshKey.knownHosts",
            generation,
            now,
        )
    } else {
        conditions::new(
            SSH_HOST_KEY_VERIFICATION,
            Status::False,
            reasons::HOST_KEY_VERIFICATION_DISABLED,
            "SSH host key verification is disabled (no protection against a man in the middle): set spec.git.auth.sshKey.knownHosts",
            generation,
            now,
        )
    })
}

/// `Ready`: `True` when `RefResolved`, `ProfilesValid` and `AllGatewaysSynced` are all `True`
/// and the resource is not paused. The message is short (it is the `STATUS` column): the first
/// thing missing.
pub fn ready(list: &[Condition], paused: bool, generation: i64, now: Timestamp) -> Condition {
    let (status, reason, message) = if paused {
        (Status::False, reasons::PAUSED, "Paused")
    } else if !conditions::is_true(list, PROFILES_VALID) {
        (Status::False, reasons::RECONCILING, "Profiles invalid")
    } else if !conditions::is_true(list, REF_RESOLVED) {
        (Status::False, reasons::RECONCILING, "Ref not resolved")
    } else if !conditions::is_true(list, ALL_GATEWAYS_SYNCED) {
        let no_gateways = conditions::find(list, ALL_GATEWAYS_SYNCED)
            .is_some_and(|c| c.reason == reasons::NO_GATEWAYS);
        if no_gateways {
            (
                Status::False,
                reasons::NO_GATEWAYS,
                "No gateways discovered",
            )
        } else {
            (
                Status::False,
                reasons::RECONCILING,
                "Waiting for gateways to sync",
            )
        }
    } else {
        (Status::True, reasons::SYNC_SUCCEEDED, "All gateways synced")
    };
    conditions::new(READY, status, reason, message, generation, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::is_true;
    use crate::gateway_status::SyncResult;
    use std::collections::BTreeMap;

    const C1: &str = "1111111111111111111111111111111111111111";
    const C2: &str = "2222222222222222222222222222222222222222";

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn gs(spec: serde_json::Value) -> GatewaySync {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "stoker.io/v1alpha1", "kind": "GatewaySync",
            "metadata": {"name": "site", "namespace": "plant", "generation": 3},
            "spec": spec
        }))
        .unwrap()
    }

    fn basic() -> GatewaySync {
        gs(serde_json::json!({
            "git": {"repo": "r", "ref": "main"},
            "sync": {"profiles": {"p": {"mappings": [{"source": "a", "destination": "b"}]}}}
        }))
    }

    fn pod(name: &str, injected: bool) -> GatewayPod {
        GatewayPod {
            gateway_name: format!("gw-{name}"),
            pod_name: name.to_owned(),
            namespace: "plant".to_owned(),
            pod_uid: None,
            profile: Some("p".to_owned()),
            service_account_name: "default".to_owned(),
            sidecar_injected: injected,
            inject_requested: true,
            ref_override: None,
            ordinal: 0,
            labels: BTreeMap::new(),
        }
    }

    fn report(pod: &str, commit: &str, status: SyncStatus) -> GatewayStatusReport {
        let mut report = GatewayStatusReport::new(
            "site",
            &format!("gw-{pod}"),
            pod,
            "0.1.0",
            at("2026-01-01T00:00:00Z"),
        );
        report.record(SyncResult {
            time: at("2026-01-01T00:01:00Z"),
            commit: Some(commit.to_owned()),
            reference: Some("main".to_owned()),
            status,
            files_added: 2,
            files_deleted: 1,
            duration_ms: Some(250),
            message: (status == SyncStatus::Error).then(|| "boom".to_owned()),
            ..Default::default()
        });
        report
    }

    fn revision(commit: &str) -> Revision {
        Revision {
            reference: "main".to_owned(),
            commit: commit.to_owned(),
        }
    }

    /// Runs the reconciler's status steps as the operator will.
    fn run(
        gs: &GatewaySync,
        status: &mut GatewaySyncStatus,
        pods: &[GatewayPod],
        reports: &[GatewayStatusReport],
        resolved: &Revision,
        now: Timestamp,
    ) {
        record_resolution(status, resolved, 3, now);
        conditions::set(
            &mut status.conditions,
            crate::validation::profiles_valid_condition(&[], 3, now),
        );
        aggregate(
            status,
            &AggregateInput {
                gs,
                pods,
                reports,
                resolved: Some(resolved),
                now,
            },
        );
    }

    fn condition<'a>(status: &'a GatewaySyncStatus, type_: &str) -> &'a Condition {
        conditions::find(&status.conditions, type_).unwrap()
    }

    #[test]
    fn two_of_three_synced() {
        let gs = basic();
        let pods = [pod("a", true), pod("b", true), pod("c", true)];
        let reports = [
            report("a", C1, SyncStatus::Synced),
            report("b", C1, SyncStatus::Synced),
            report("c", C1, SyncStatus::Error),
        ];
        let mut status = GatewaySyncStatus::default();
        run(
            &gs,
            &mut status,
            &pods,
            &reports,
            &revision(C1),
            at("2026-01-01T00:02:00Z"),
        );
        assert_eq!(status.gateway_summary.as_deref(), Some("2/3 synced"));
        let synced = condition(&status, ALL_GATEWAYS_SYNCED);
        assert_eq!(synced.status, "False");
        assert_eq!(synced.reason, reasons::SYNC_FAILED);
        assert_eq!(synced.message, "2 of 3 synced; error: c");
        assert_eq!(
            condition(&status, READY).message,
            "Waiting for gateways to sync"
        );
        let c = &status.discovered_gateways[2];
        assert_eq!(c.message.as_deref(), Some("boom"));
        assert_eq!(c.files_changed, 3);
        assert_eq!(c.last_sync_duration.as_deref(), Some("0.25s"));
        assert_eq!(c.agent_version.as_deref(), Some("0.1.0"));
        assert_eq!(status.profile_count, 1);
        assert_eq!(status.observed_generation, Some(3));
        assert!(condition(&status, REF_SKEW).status == "False");
    }

    #[test]
    fn all_synced_is_ready_and_times_are_kept_on_the_next_pass() {
        let gs = basic();
        let pods = [pod("a", true), pod("b", true)];
        let reports = [
            report("a", C1, SyncStatus::Synced),
            report("b", C1, SyncStatus::Synced),
        ];
        let mut status = GatewaySyncStatus::default();
        let t0 = at("2026-01-01T00:02:00Z");
        run(&gs, &mut status, &pods, &reports, &revision(C1), t0);
        assert!(is_true(&status.conditions, READY));
        assert_eq!(condition(&status, READY).message, "All gateways synced");
        assert_eq!(
            condition(&status, ALL_GATEWAYS_SYNCED).message,
            "2 of 2 synced"
        );
        assert!(is_true(&status.conditions, SIDECAR_INJECTED));
        assert!(conditions::find(&status.conditions, SSH_HOST_KEY_VERIFICATION).is_none());
        let t1 = at("2026-01-01T00:03:00Z");
        run(&gs, &mut status, &pods, &reports, &revision(C1), t1);
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.last_transition_time.0 == t0)
        );
        assert_eq!(status.last_sync_time, Some(Time(t0)));
    }

    #[test]
    fn a_new_commit_makes_synced_gateways_pending_and_skewed() {
        let gs = basic();
        let pods = [pod("a", true), pod("b", true)];
        let reports = [
            report("a", C2, SyncStatus::Synced),
            report("b", C1, SyncStatus::Synced),
        ];
        let mut status = GatewaySyncStatus::default();
        run(
            &gs,
            &mut status,
            &pods,
            &reports,
            &revision(C1),
            at("2026-01-01T00:00:00Z"),
        );
        let t = at("2026-01-01T00:10:00Z");
        run(&gs, &mut status, &pods, &reports, &revision(C2), t);
        assert_eq!(status.last_sync_commit.as_deref(), Some(C2));
        assert_eq!(status.last_sync_commit_short.as_deref(), Some("2222222"));
        assert_eq!(status.last_sync_time, Some(Time(t)));
        assert_eq!(status.gateway_summary.as_deref(), Some("1/2 synced"));
        let b = &status.discovered_gateways[1];
        assert_eq!(b.sync_status, SyncStatus::Pending);
        assert_eq!(b.synced_commit.as_deref(), Some(C1));
        assert_eq!(
            b.message.as_deref(),
            Some("synced to 1111111; waiting for 2222222")
        );
        let skew = condition(&status, REF_SKEW);
        assert_eq!(skew.status, "True");
        assert_eq!(
            skew.message,
            "1 gateway(s) not at 2222222 (main): b at 1111111 (main)"
        );
    }

    #[test]
    fn a_pinned_pod_is_synced_but_skewed() {
        let gs = basic();
        let mut pinned = pod("a", true);
        pinned.ref_override = Some("hotfix".to_owned());
        let reports = [report("a", C2, SyncStatus::Synced)];
        let mut status = GatewaySyncStatus::default();
        run(
            &gs,
            &mut status,
            &[pinned],
            &reports,
            &revision(C1),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(
            status.discovered_gateways[0].sync_status,
            SyncStatus::Synced
        );
        let skew = condition(&status, REF_SKEW);
        assert_eq!(skew.status, "True");
        assert!(
            skew.message.contains("pinned by stoker.io/ref-override"),
            "{}",
            skew.message
        );
    }

    #[test]
    fn missing_sidecar_and_missing_reports() {
        let gs = basic();
        let pods = [pod("a", false), pod("b", true)];
        let mut status = GatewaySyncStatus::default();
        run(
            &gs,
            &mut status,
            &pods,
            &[],
            &revision(C1),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(
            status.discovered_gateways[0].sync_status,
            SyncStatus::MissingSidecar
        );
        assert_eq!(
            status.discovered_gateways[1].sync_status,
            SyncStatus::Pending
        );
        assert_eq!(
            status.discovered_gateways[1].message.as_deref(),
            Some("waiting for the agent's first report")
        );
        assert_eq!(condition(&status, SIDECAR_INJECTED).status, "False");
        assert_eq!(
            condition(&status, ALL_GATEWAYS_SYNCED).message,
            "0 of 2 synced; missing sidecar: a; pending: b"
        );
        assert_eq!(
            condition(&status, ALL_GATEWAYS_SYNCED).reason,
            reasons::SIDECAR_MISSING
        );
    }

    /// As in stoker-operator v0.5.1: only a pod that asked for injection (`stoker.io/inject:
    /// "true"`) and lacks the agent is `MissingSidecar`; one that never asked is `Pending`, even
    /// when an earlier pod of the same name reported `Synced`.
    #[test]
    fn missing_sidecar_only_for_pods_that_asked_for_injection() {
        let gs = basic();
        let not_asked = GatewayPod {
            inject_requested: false,
            ..pod("manual", false)
        };
        let pods = [pod("asked", false), not_asked];
        let earlier = report("manual", C1, SyncStatus::Synced);
        let mut status = GatewaySyncStatus::default();
        run(
            &gs,
            &mut status,
            &pods,
            &[earlier],
            &revision(C1),
            Timestamp::UNIX_EPOCH,
        );
        let [asked, manual] = &status.discovered_gateways[..] else {
            panic!("{:?}", status.discovered_gateways)
        };
        assert_eq!(asked.sync_status, SyncStatus::MissingSidecar);
        assert_eq!(manual.sync_status, SyncStatus::Pending);
        assert!(
            manual
                .message
                .as_deref()
                .unwrap()
                .contains("stoker.io/inject"),
            "{manual:?}"
        );
        assert_eq!(
            condition(&status, SIDECAR_INJECTED).message,
            "1 gateway pod(s) without the stoker-agent sidecar: asked"
        );
    }

    #[test]
    fn reports_of_other_resources_or_pods_are_ignored() {
        let gs = basic();
        let mut other = report("a", C1, SyncStatus::Synced);
        other.cr_name = "other".to_owned();
        let stale = report("gone", C1, SyncStatus::Synced);
        let mut status = GatewaySyncStatus::default();
        run(
            &gs,
            &mut status,
            &[pod("a", true)],
            &[other, stale],
            &revision(C1),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(status.discovered_gateways.len(), 1);
        assert_eq!(
            status.discovered_gateways[0].sync_status,
            SyncStatus::Pending
        );
    }

    #[test]
    fn no_gateways_is_not_ready() {
        let gs = basic();
        let mut status = GatewaySyncStatus::default();
        run(
            &gs,
            &mut status,
            &[],
            &[],
            &revision(C1),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(
            condition(&status, ALL_GATEWAYS_SYNCED).reason,
            reasons::NO_GATEWAYS
        );
        let ready = condition(&status, READY);
        assert_eq!(
            (ready.status.as_str(), ready.message.as_str()),
            ("False", "No gateways discovered")
        );
    }

    #[test]
    fn ssh_without_known_hosts_is_a_warning() {
        let with = |known_hosts: bool| {
            let mut ssh = serde_json::json!({"secretRef": {"name": "s", "key": "k"}});
            if known_hosts {
                ssh["knownHosts"] = serde_json::json!({"secretRef": {"name": "s", "key": "kh"}});
            }
            gs(serde_json::json!({
                "git": {"repo": "git@h:r.git", "ref": "main", "auth": {"sshKey": ssh}},
                "sync": {"profiles": {"p": {}}}
            }))
        };
        let mut status = GatewaySyncStatus::default();
        run(
            &with(false),
            &mut status,
            &[],
            &[],
            &revision(C1),
            Timestamp::UNIX_EPOCH,
        );
        let condition_ = condition(&status, SSH_HOST_KEY_VERIFICATION);
        assert_eq!(
            (condition_.status.as_str(), condition_.reason.as_str()),
            ("False", reasons::HOST_KEY_VERIFICATION_DISABLED)
        );
        run(
            &with(true),
            &mut status,
            &[],
            &[],
            &revision(C1),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(condition(&status, SSH_HOST_KEY_VERIFICATION).status, "True");
        run(
            &basic(),
            &mut status,
            &[],
            &[],
            &revision(C1),
            Timestamp::UNIX_EPOCH,
        );
        assert!(conditions::find(&status.conditions, SSH_HOST_KEY_VERIFICATION).is_none());
    }

    #[test]
    fn paused_invalid_and_unresolved_are_not_ready() {
        let t = Timestamp::UNIX_EPOCH;
        let mut list = Vec::new();
        assert_eq!(ready(&list, true, 1, t).reason, reasons::PAUSED);
        assert_eq!(ready(&list, false, 1, t).message, "Profiles invalid");
        conditions::set(
            &mut list,
            crate::validation::profiles_valid_condition(&[], 1, t),
        );
        assert_eq!(ready(&list, false, 1, t).message, "Ref not resolved");
        let mut status = GatewaySyncStatus::default();
        record_resolution_failure(
            &mut status,
            "main",
            reasons::REF_RESOLUTION_FAILED,
            "repository not found",
            1,
            t,
        );
        assert_eq!(
            status.ref_resolution_status,
            Some(RefResolutionStatus::Error)
        );
        let failed = condition(&status, REF_RESOLVED);
        assert_eq!(failed.message, "resolving main: repository not found");
        assert_eq!(ref_skew(&[], &[], None, 1, t).status, "Unknown");
    }
}
