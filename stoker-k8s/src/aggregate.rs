//! Status aggregation: discovered pods + agents' status reports + the resolved revision →
//! `status.discoveredGateways`, the `GATEWAYS` column, and the conditions `AllGatewaysSynced`,
//! `SidecarInjected`, `AgentReady`, `RefSkew`, `SSHHostKeyVerification` and `Ready`.
//!
//! The reconciler sets `RefResolved` ([`record_resolution`] / [`record_resolution_failure`])
//! and `ProfilesValid` ([`crate::validation`]) first, then calls [`aggregate`].
//!
//! The conditions stoker-operator v0.5.1 has (`RefResolved`, `ProfilesValid`,
//! `AllGatewaysSynced`, `SidecarInjected`, `SSHHostKeyVerification`, `Ready`) carry its
//! reasons and messages, word for word where users match on them (`kubectl wait`, alerts):
//! counts only. Which gateway is behind and why is in `status.discoveredGateways[].message`
//! and in Events ([`crate::events`]).
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

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;

use crate::conditions::{
    self, AGENT_READY, ALL_GATEWAYS_SYNCED, PROFILES_VALID, READY, REF_RESOLVED, REF_SKEW,
    SIDECAR_INJECTED, SSH_HOST_KEY_VERIFICATION, Status, reasons,
};
use crate::crd::{
    DiscoveredGateway, GatewaySync, GatewaySyncSpec, GatewaySyncStatus, RefResolutionStatus,
    SyncStatus,
};
use crate::discovery::GatewayPod;
use crate::gateway_status::{GatewayStatusReport, ReportOrigin, format_duration};
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
    /// [`crate::gateway_status::status_configmap_selector`], and for gateways without one the
    /// entries of stoker-operator v0.5.1's shared ConfigMap, [`crate::legacy_status`]); reports
    /// of other resources or of pods no longer discovered are ignored.
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
    // The message is the commit alone, as in v0.5.1.
    conditions::set(
        &mut status.conditions,
        conditions::new(
            REF_RESOLVED,
            Status::True,
            reasons::REF_RESOLVED,
            revision.commit.clone(),
            generation,
            now,
        ),
    );
}

/// Records a failed resolution: `RefResolved=False` with `reason` (`RefResolutionFailed`, or
/// `GitHubAppExchangeFailed` when there was no token to resolve with), message
/// `Ref resolution failed (retry in 20s): <error>` as in v0.5.1 (without the parenthesis when
/// no retry is scheduled), `refResolutionStatus: Error`. The last resolved commit stays in the
/// status (agents keep it).
pub fn record_resolution_failure(
    status: &mut GatewaySyncStatus,
    reason: &str,
    error: &str,
    retry_in: Option<Duration>,
    generation: i64,
    now: Timestamp,
) {
    status.ref_resolution_status = Some(RefResolutionStatus::Error);
    let message = match retry_in {
        Some(delay) => format!(
            "Ref resolution failed (retry in {}): {error}",
            go_seconds(delay)
        ),
        None => format!("Ref resolution failed: {error}"),
    };
    conditions::set(
        &mut status.conditions,
        conditions::new(
            REF_RESOLVED,
            Status::False,
            reason,
            message,
            generation,
            now,
        ),
    );
}

/// A duration rounded to the second, spelt as Go's `time.Duration` prints it (`30s`, `1m0s`,
/// `1h2m3s`): v0.5.1's condition messages carry it.
///
/// ```
/// use std::time::Duration;
/// use stoker_k8s::aggregate::go_seconds;
/// assert_eq!(go_seconds(Duration::from_millis(29_600)), "30s");
/// assert_eq!(go_seconds(Duration::from_secs(120)), "2m0s");
/// assert_eq!(go_seconds(Duration::from_secs(3723)), "1h2m3s");
/// assert_eq!(go_seconds(Duration::ZERO), "0s");
/// ```
pub fn go_seconds(duration: Duration) -> String {
    let total = (duration.as_millis() + 500) / 1000;
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    if hours > 0 {
        format!("{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{minutes}m{seconds}s")
    } else {
        format!("{seconds}s")
    }
}

/// Fills the status from the input: `observedGeneration`, `profileCount`,
/// `discoveredGateways`, `gatewaySummary` and the conditions `AllGatewaysSynced`,
/// `SidecarInjected` (only with gateways), `AgentReady`, `RefSkew`, `SSHHostKeyVerification`
/// (removed unless SSH auth is used) and `Ready` (from the conditions already present, so set
/// `RefResolved` and `ProfilesValid` first). Transition times of conditions whose status did
/// not change are kept.
pub fn aggregate(status: &mut GatewaySyncStatus, input: &AggregateInput<'_>) {
    let generation = input.gs.metadata.generation.unwrap_or_default();
    let now = input.now;
    let spec = &input.gs.spec;
    let cr_name = input.gs.name_any();
    let mut gateways = merge_gateways(&cr_name, input.pods, input.reports, input.resolved);
    let sightings = agent_sightings(&cr_name, spec, input.pods, input.reports);
    for (gateway, sighting) in gateways.iter_mut().zip(&sightings) {
        if let Some(silence) = sighting.silence(now) {
            let last = gateway.message.take().unwrap_or_default();
            gateway.message = Some(format!(
                "no word from the agent for {} (it reports at least every {}; {AGENT_SILENCE_PERIODS} sync periods without a word is not ready); its last report: {last}",
                go_seconds(silence),
                go_seconds(sighting.sync_period * 2),
            ));
        }
    }

    status.observed_generation = Some(generation);
    status.profile_count = i32::try_from(spec.sync.profiles.len()).unwrap_or(i32::MAX);
    status.gateway_summary = Some(gateway_summary(&gateways));
    let list = &mut status.conditions;
    conditions::set(list, all_gateways_synced(&gateways, generation, now));
    match sidecar_injected(&gateways, generation, now) {
        Some(condition) => {
            conditions::set(list, condition);
        }
        None => {
            conditions::remove(list, SIDECAR_INJECTED);
        }
    }
    conditions::set(list, agent_ready(&sightings, generation, now));
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
                gateway.last_scan_status = report.last_scan_status;
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

/// `AllGatewaysSynced`, as v0.5.1 sets it: `True` (`SyncSucceeded`) when there is at least
/// one gateway and all are `Synced`; with none, `False` `NoGatewaysDiscovered`; otherwise
/// `False` `SyncInProgress` (failed gateways too: their errors are in their own status).
/// Message `{synced}/{total} synced`, plus ` ({n} missing sidecar)` when some pods lack the
/// agent.
///
/// ```
/// use stoker_k8s::aggregate::all_gateways_synced;
/// let none = all_gateways_synced(&[], 1, jiff::Timestamp::UNIX_EPOCH);
/// assert_eq!((none.reason.as_str(), none.message.as_str()), ("NoGatewaysDiscovered", "0/0 synced"));
/// ```
pub fn all_gateways_synced(
    gateways: &[DiscoveredGateway],
    generation: i64,
    now: Timestamp,
) -> Condition {
    let total = gateways.len();
    let synced = count(gateways, SyncStatus::Synced);
    let missing = count(gateways, SyncStatus::MissingSidecar);
    let mut message = format!("{synced}/{total} synced");
    let (status, reason) = if total == 0 {
        (Status::False, reasons::NO_GATEWAYS)
    } else if synced == total {
        (Status::True, reasons::SYNC_SUCCEEDED)
    } else {
        if missing > 0 {
            message.push_str(&format!(" ({missing} missing sidecar)"));
        }
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

/// `SidecarInjected`, only when there are gateways (`None`: the condition is removed): `True`
/// when no discovered pod is `MissingSidecar`, else `False` with how many (the pods are named
/// in `discoveredGateways` and in `MissingSidecar` Events).
pub fn sidecar_injected(
    gateways: &[DiscoveredGateway],
    generation: i64,
    now: Timestamp,
) -> Option<Condition> {
    if gateways.is_empty() {
        return None;
    }
    let missing = count(gateways, SyncStatus::MissingSidecar);
    Some(if missing == 0 {
        conditions::new(
            SIDECAR_INJECTED,
            Status::True,
            reasons::SIDECAR_PRESENT,
            "All gateways have stoker-agent sidecar",
            generation,
            now,
        )
    } else {
        conditions::new(
            SIDECAR_INJECTED,
            Status::False,
            reasons::SIDECAR_MISSING,
            format!("{missing} gateway(s) missing stoker-agent sidecar"),
            generation,
            now,
        )
    })
}

/// How many sync periods an agent may stay silent before `AgentReady` turns `False`. Agents
/// refresh their report at least every two periods (a heartbeat when nothing else changed),
/// so one lost write does not flap the condition.
pub const AGENT_SILENCE_PERIODS: u32 = 3;

/// One discovered gateway's agent, as `AgentReady` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSighting {
    /// The pod.
    pub pod: String,
    /// The pod has the agent.
    pub has_agent: bool,
    /// When its agent was last heard from ([`GatewayStatusReport::last_seen`]), if ever.
    pub last_seen: Option<Timestamp>,
    /// Its profile's `syncPeriod`.
    pub sync_period: Duration,
    /// The agent refreshes its report while idle (Stoker's do; stoker-operator v0.5.1's write
    /// only when they sync, so a long silence of theirs is not held against them).
    pub heartbeats: bool,
}

impl AgentSighting {
    /// True when the pod has the agent and it was heard from within
    /// [`AGENT_SILENCE_PERIODS`] sync periods before `now`.
    pub fn is_reporting(&self, now: Timestamp) -> bool {
        self.has_agent && self.last_seen.is_some() && self.silence(now).is_none()
    }

    /// How long the agent has been silent, when that is longer than allowed; `None` while it
    /// is within bounds or was never heard from (then it is simply waited for).
    pub fn silence(&self, now: Timestamp) -> Option<Duration> {
        let last_seen = self.last_seen?;
        let silent = Duration::from_secs(
            u64::try_from(now.as_second().saturating_sub(last_seen.as_second())).unwrap_or(0),
        );
        (self.has_agent && self.heartbeats && silent > self.sync_period * AGENT_SILENCE_PERIODS)
            .then_some(silent)
    }
}

/// The sync period of the profile a pod uses: its `stoker.io/profile`, else the only profile,
/// else `default` (as the agent chooses); the profile's `syncPeriod`, else the defaults', else
/// 30 s.
pub fn sync_period(spec: &GatewaySyncSpec, profile: Option<&str>) -> Duration {
    let profiles = &spec.sync.profiles;
    let name = profile.or_else(|| {
        if profiles.len() == 1 {
            profiles.keys().next().map(String::as_str)
        } else {
            Some("default")
        }
    });
    let seconds = name
        .and_then(|name| profiles.get(name))
        .and_then(|p| p.sync_period)
        .or(spec.sync.defaults.sync_period)
        .unwrap_or(stoker_core::profile::DEFAULT_SYNC_PERIOD);
    Duration::from_secs(u64::from(seconds.max(1)))
}

/// One [`AgentSighting`] per discovered pod, in the pods' order.
pub fn agent_sightings(
    cr_name: &str,
    spec: &GatewaySyncSpec,
    pods: &[GatewayPod],
    reports: &[GatewayStatusReport],
) -> Vec<AgentSighting> {
    pods.iter()
        .map(|pod| {
            let report = reports
                .iter()
                .find(|r| r.cr_name == cr_name && r.pod == pod.pod_name);
            AgentSighting {
                pod: pod.pod_name.clone(),
                has_agent: pod.sidecar_injected,
                last_seen: report.map(GatewayStatusReport::last_seen),
                sync_period: sync_period(spec, pod.profile.as_deref()),
                heartbeats: report.is_none_or(|r| r.origin == ReportOrigin::Agent),
            }
        })
        .collect()
}

/// `AgentReady` (ours): `True` (`AgentsReporting`) when every discovered gateway's agent was
/// heard from within [`AGENT_SILENCE_PERIODS`] sync periods (a v0.5.1 agent, which sends no
/// heartbeat, once it has reported at all); `False` (`AgentsNotReporting`)
/// when one is missing, has not reported yet or went silent; `False` `NoGatewaysDiscovered`
/// without gateways. Message `{reporting}/{total} agents reporting`; which one is silent is in
/// its `discoveredGateways[].message`.
pub fn agent_ready(sightings: &[AgentSighting], generation: i64, now: Timestamp) -> Condition {
    let total = sightings.len();
    let reporting = sightings.iter().filter(|s| s.is_reporting(now)).count();
    let message = format!("{reporting}/{total} agents reporting");
    let (status, reason) = if total == 0 {
        (Status::False, reasons::NO_GATEWAYS)
    } else if reporting == total {
        (Status::True, reasons::AGENTS_REPORTING)
    } else {
        (Status::False, reasons::AGENTS_NOT_REPORTING)
    };
    conditions::new(AGENT_READY, status, reason, message, generation, now)
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

/// `Ready`, as v0.5.1 sets it: `True` (`SyncSucceeded`, `All gateways synced`) when
/// `RefResolved`, `ProfilesValid` and `AllGatewaysSynced` are all `True`; otherwise `False`
/// with the first thing missing: `Paused` / `Reconciliation paused` when `spec.paused` is set,
/// else `Reconciling` with `Profiles invalid`, `Ref not resolved` or
/// `Waiting for gateways to sync` (also with no gateway at all). The message is the `STATUS`
/// column.
pub fn ready(list: &[Condition], paused: bool, generation: i64, now: Timestamp) -> Condition {
    let (status, reason, message) = if paused {
        (Status::False, reasons::PAUSED, "Reconciliation paused")
    } else if !conditions::is_true(list, PROFILES_VALID) {
        (Status::False, reasons::RECONCILING, "Profiles invalid")
    } else if !conditions::is_true(list, REF_RESOLVED) {
        (Status::False, reasons::RECONCILING, "Ref not resolved")
    } else if !conditions::is_true(list, ALL_GATEWAYS_SYNCED) {
        (
            Status::False,
            reasons::RECONCILING,
            "Waiting for gateways to sync",
        )
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

    /// [`run`] at the first commit and the epoch, for tests where neither matters.
    fn run_at_epoch(
        gs: &GatewaySync,
        status: &mut GatewaySyncStatus,
        pods: &[GatewayPod],
        reports: &[GatewayStatusReport],
    ) {
        run(
            gs,
            status,
            pods,
            reports,
            &revision(C1),
            Timestamp::UNIX_EPOCH,
        );
    }

    /// A condition's status, reason and message, to assert all three at once.
    fn said(c: &Condition) -> (&str, &str, &str) {
        (c.status.as_str(), c.reason.as_str(), c.message.as_str())
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
        let now = at("2026-01-01T00:02:00Z");
        run(&gs, &mut status, &pods, &reports, &revision(C1), now);
        assert_eq!(status.gateway_summary.as_deref(), Some("2/3 synced"));
        let synced = condition(&status, ALL_GATEWAYS_SYNCED);
        assert_eq!(synced.status, "False");
        // As v0.5.1: counts only, `SyncInProgress` even with a failed gateway (its error is
        // in its own entry).
        assert_eq!(synced.reason, reasons::SYNC_IN_PROGRESS);
        assert_eq!(synced.message, "2/3 synced");
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
        let t0 = at("2026-01-01T00:01:30Z");
        run(&gs, &mut status, &pods, &reports, &revision(C1), t0);
        assert!(is_true(&status.conditions, READY));
        let ready = condition(&status, READY);
        assert_eq!(
            (ready.reason.as_str(), ready.message.as_str()),
            ("SyncSucceeded", "All gateways synced")
        );
        let synced = condition(&status, ALL_GATEWAYS_SYNCED);
        assert_eq!(
            (synced.reason.as_str(), synced.message.as_str()),
            ("SyncSucceeded", "2/2 synced")
        );
        let sidecars = condition(&status, SIDECAR_INJECTED);
        assert_eq!(
            said(sidecars),
            (
                "True",
                "SidecarPresent",
                "All gateways have stoker-agent sidecar"
            )
        );
        let agents = condition(&status, AGENT_READY);
        assert_eq!(
            said(agents),
            ("True", "AgentsReporting", "2/2 agents reporting")
        );
        assert_eq!(condition(&status, REF_RESOLVED).message, C1);
        assert!(conditions::find(&status.conditions, SSH_HOST_KEY_VERIFICATION).is_none());
        let t1 = at("2026-01-01T00:02:00Z");
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
        let now = at("2026-01-01T00:00:00Z");
        run(&gs, &mut status, &pods, &reports, &revision(C1), now);
        let t = at("2026-01-01T00:02:00Z");
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
        run_at_epoch(&gs, &mut status, &[pinned], &reports);
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
        run_at_epoch(&gs, &mut status, &pods, &[]);
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
            "0/2 synced (1 missing sidecar)"
        );
        assert_eq!(
            condition(&status, ALL_GATEWAYS_SYNCED).reason,
            reasons::SYNC_IN_PROGRESS
        );
        assert_eq!(
            condition(&status, SIDECAR_INJECTED).reason,
            "SidecarMissing"
        );
        // Neither has reported: no agent is ready.
        let agents = condition(&status, AGENT_READY);
        assert_eq!(
            said(agents),
            ("False", "AgentsNotReporting", "0/2 agents reporting")
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
        run_at_epoch(&gs, &mut status, &pods, &[earlier]);
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
            "1 gateway(s) missing stoker-agent sidecar"
        );
    }

    #[test]
    fn reports_of_other_resources_or_pods_are_ignored() {
        let gs = basic();
        let mut other = report("a", C1, SyncStatus::Synced);
        other.cr_name = "other".to_owned();
        let stale = report("gone", C1, SyncStatus::Synced);
        let mut status = GatewaySyncStatus::default();
        run_at_epoch(&gs, &mut status, &[pod("a", true)], &[other, stale]);
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
        // A gateway first, then none: `SidecarInjected` goes with it.
        run_at_epoch(&gs, &mut status, &[pod("a", true)], &[]);
        assert!(conditions::find(&status.conditions, SIDECAR_INJECTED).is_some());
        run_at_epoch(&gs, &mut status, &[], &[]);
        let synced = condition(&status, ALL_GATEWAYS_SYNCED);
        assert_eq!(
            said(synced),
            ("False", "NoGatewaysDiscovered", "0/0 synced")
        );
        let ready = condition(&status, READY);
        assert_eq!(
            said(ready),
            ("False", "Reconciling", "Waiting for gateways to sync")
        );
        assert!(conditions::find(&status.conditions, SIDECAR_INJECTED).is_none());
        let agents = condition(&status, AGENT_READY);
        assert_eq!(
            said(agents),
            ("False", "NoGatewaysDiscovered", "0/0 agents reporting")
        );
    }

    #[test]
    fn ready_says_the_first_thing_missing() {
        let t = Timestamp::UNIX_EPOCH;
        let valid = crate::validation::profiles_valid_condition(&[], 1, t);
        let resolved = conditions::new(REF_RESOLVED, Status::True, reasons::REF_RESOLVED, C1, 1, t);
        let synced = |ok: bool| {
            conditions::new(
                ALL_GATEWAYS_SYNCED,
                Status::from_bool(ok),
                reasons::SYNC_SUCCEEDED,
                "",
                1,
                t,
            )
        };
        let say = |list: &[Condition], paused: bool| {
            let c = ready(list, paused, 1, t);
            (c.status, c.reason, c.message)
        };
        let triple = |s: &str, r: &str, m: &str| (s.to_owned(), r.to_owned(), m.to_owned());
        let all = [valid.clone(), resolved.clone(), synced(true)];
        assert_eq!(
            say(&all, false),
            triple("True", "SyncSucceeded", "All gateways synced")
        );
        assert_eq!(
            say(&all, true),
            triple("False", "Paused", "Reconciliation paused")
        );
        assert_eq!(
            say(&[resolved.clone(), synced(true)], false),
            triple("False", "Reconciling", "Profiles invalid")
        );
        assert_eq!(
            say(&[valid.clone(), synced(true)], false),
            triple("False", "Reconciling", "Ref not resolved")
        );
        assert_eq!(
            say(&[valid, resolved, synced(false)], false),
            triple("False", "Reconciling", "Waiting for gateways to sync")
        );
    }

    fn sighting(has_agent: bool, last_seen: Option<&str>) -> AgentSighting {
        AgentSighting {
            pod: "p".to_owned(),
            has_agent,
            last_seen: last_seen.map(at),
            sync_period: Duration::from_secs(30),
            heartbeats: true,
        }
    }

    #[test]
    fn an_agent_is_ready_while_heard_from_within_three_sync_periods() {
        let now = at("2026-01-01T00:10:00Z");
        assert!(sighting(true, Some("2026-01-01T00:08:30Z")).is_reporting(now));
        assert_eq!(
            sighting(true, Some("2026-01-01T00:08:30Z")).silence(now),
            None
        );
        let silent = sighting(true, Some("2026-01-01T00:08:29Z"));
        assert!(!silent.is_reporting(now));
        assert_eq!(silent.silence(now), Some(Duration::from_secs(91)));
        // Never heard from, or no agent at all: not ready, but not "silent" either.
        assert!(!sighting(true, None).is_reporting(now));
        assert_eq!(sighting(true, None).silence(now), None);
        assert!(!sighting(false, Some("2026-01-01T00:09:59Z")).is_reporting(now));
        // A clock ahead of ours is not held against the agent.
        assert!(sighting(true, Some("2026-01-01T00:11:00Z")).is_reporting(now));

        let all = [sighting(true, Some("2026-01-01T00:09:00Z")), silent];
        let c = agent_ready(&all, 1, now);
        assert_eq!(
            said(&c),
            ("False", "AgentsNotReporting", "1/2 agents reporting")
        );
        let c = agent_ready(&all[..1], 1, now);
        assert_eq!(
            (c.status.as_str(), c.message.as_str()),
            ("True", "1/1 agents reporting")
        );
    }

    #[test]
    fn a_heartbeat_keeps_a_quiet_agent_ready_and_a_silent_one_is_named() {
        let gs = basic();
        let pods = [pod("a", true), pod("b", true)];
        let mut quiet = report("a", C1, SyncStatus::Synced);
        quiet.heartbeat = Some(at("2026-01-01T00:09:00Z"));
        let silent = report("b", C1, SyncStatus::Synced);
        let mut status = GatewaySyncStatus::default();
        let now = at("2026-01-01T00:10:00Z");
        run(
            &gs,
            &mut status,
            &pods,
            &[quiet, silent],
            &revision(C1),
            now,
        );
        assert_eq!(
            condition(&status, AGENT_READY).message,
            "1/2 agents reporting"
        );
        assert_eq!(
            status.discovered_gateways[0].message.as_deref(),
            None,
            "the quiet agent is fine"
        );
        let b = status.discovered_gateways[1].message.as_deref().unwrap();
        assert!(
            b.starts_with("no word from the agent for 9m0s (it reports at least every 1m0s"),
            "{b}"
        );
        // Silence does not make a synced gateway unsynced: it only says it may be stale.
        assert_eq!(status.gateway_summary.as_deref(), Some("2/2 synced"));
    }

    #[test]
    fn a_v051_agents_quiet_is_not_silence() {
        let gs = basic();
        let pods = [pod("a", true)];
        // Written an hour ago by a v0.5.1 agent, which writes only when it syncs.
        let mut legacy = report("a", C1, SyncStatus::Synced);
        legacy.origin = ReportOrigin::StokerOperatorV051;
        let mut status = GatewaySyncStatus::default();
        let now = at("2026-01-01T01:00:00Z");
        run(&gs, &mut status, &pods, &[legacy], &revision(C1), now);
        assert_eq!(status.gateway_summary.as_deref(), Some("1/1 synced"));
        assert_eq!(
            condition(&status, AGENT_READY).message,
            "1/1 agents reporting"
        );
        assert_eq!(status.discovered_gateways[0].message, None);
        assert_eq!(
            status.discovered_gateways[0].synced_commit.as_deref(),
            Some(C1)
        );
    }

    #[test]
    fn the_sync_period_is_the_pods_profiles() {
        let gs = gs(serde_json::json!({
            "git": {"repo": "r", "ref": "main"},
            "sync": {
                "defaults": {"syncPeriod": 60},
                "profiles": {"default": {"syncPeriod": 10}, "edge": {}}
            }
        }));
        assert_eq!(
            sync_period(&gs.spec, Some("default")),
            Duration::from_secs(10)
        );
        assert_eq!(sync_period(&gs.spec, Some("edge")), Duration::from_secs(60));
        assert_eq!(sync_period(&gs.spec, None), Duration::from_secs(10));
        assert_eq!(sync_period(&basic().spec, None), Duration::from_secs(30));
        assert_eq!(
            sync_period(&basic().spec, Some("nope")),
            Duration::from_secs(30)
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
        run_at_epoch(&with(false), &mut status, &[], &[]);
        let condition_ = condition(&status, SSH_HOST_KEY_VERIFICATION);
        assert_eq!(
            (condition_.status.as_str(), condition_.reason.as_str()),
            ("False", reasons::HOST_KEY_VERIFICATION_DISABLED)
        );
        run_at_epoch(&with(true), &mut status, &[], &[]);
        assert_eq!(condition(&status, SSH_HOST_KEY_VERIFICATION).status, "True");
        run_at_epoch(&basic(), &mut status, &[], &[]);
        assert!(conditions::find(&status.conditions, SSH_HOST_KEY_VERIFICATION).is_none());
    }

    #[test]
    fn paused_invalid_and_unresolved_are_not_ready() {
        let t = Timestamp::UNIX_EPOCH;
        let mut list = Vec::new();
        assert_eq!(ready(&list, true, 1, t).reason, reasons::PAUSED);
        assert_eq!(ready(&list, true, 1, t).message, "Reconciliation paused");
        assert_eq!(ready(&list, false, 1, t).message, "Profiles invalid");
        conditions::set(
            &mut list,
            crate::validation::profiles_valid_condition(&[], 1, t),
        );
        assert_eq!(ready(&list, false, 1, t).message, "Ref not resolved");
        let mut status = GatewaySyncStatus::default();
        record_resolution_failure(
            &mut status,
            reasons::REF_RESOLUTION_FAILED,
            "repository not found",
            Some(Duration::from_secs(5)),
            1,
            t,
        );
        assert_eq!(
            status.ref_resolution_status,
            Some(RefResolutionStatus::Error)
        );
        let failed = condition(&status, REF_RESOLVED);
        assert_eq!(
            failed.message,
            "Ref resolution failed (retry in 5s): repository not found"
        );
        record_resolution_failure(
            &mut status,
            reasons::REF_RESOLUTION_FAILED,
            "gone",
            None,
            1,
            t,
        );
        assert_eq!(
            condition(&status, REF_RESOLVED).message,
            "Ref resolution failed: gone"
        );
        assert_eq!(ref_skew(&[], &[], None, 1, t).status, "Unknown");
    }
}
