//! Reporting back: the per-gateway status ConfigMap `stoker-status-{cr}-{pod}` (server-side
//! apply, field manager `stoker-agent`, owned by the pod) and Events on the `GatewaySync`.
//!
//! The report is kept in memory and written when it changes; a write that fails (API server
//! away) is retried on the loop's next turn. A resync that changes nothing and ends like the
//! last one writes nothing, so an idle agent costs the API server no writes.

use crate::crd::{ScanStatus, SyncStatus};
use crate::gateway_status::{
    GatewayStatusReport, SyncResult, pod_owner_reference, status_configmap_name,
};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Reporter as EventReporter};

use super::AgentConfig;

/// The field manager of everything the agent writes.
pub const FIELD_MANAGER: &str = "stoker-agent";

/// The status ConfigMap and the Events recorder of one agent.
pub struct StatusReporter {
    api: Api<ConfigMap>,
    name: String,
    namespace: String,
    pod_namespace: String,
    report: GatewayStatusReport,
    pod_uid: Option<String>,
    owner_uid: Option<String>,
    dirty: bool,
    /// The ConfigMap was written by this process.
    written: bool,
    /// When this process last wrote the ConfigMap.
    last_written: Option<tokio::time::Instant>,
    client: kube::Client,
    reporter: EventReporter,
    cr_name: String,
    /// The agent's version, as reported in `agentVersion`.
    agent_version: &'static str,
}

impl std::fmt::Debug for StatusReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusReporter")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .field("status", &self.report.status)
            .field("dirty", &self.dirty)
            .finish_non_exhaustive()
    }
}

impl StatusReporter {
    /// Starts from the ConfigMap a previous run of this agent left (its history is kept), or
    /// from a fresh `Pending` report. `agent_version` is reported as `agentVersion`.
    pub async fn load(
        client: kube::Client,
        config: &AgentConfig,
        agent_version: &'static str,
    ) -> Self {
        let namespace = config.cr_namespace.clone();
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
        let name = status_configmap_name(&config.cr_name, &config.pod_name);
        let gateway = config
            .gateway_name
            .clone()
            .unwrap_or_else(|| config.pod_name.clone());
        let fresh = || {
            GatewayStatusReport::new(
                &config.cr_name,
                &gateway,
                &config.pod_name,
                agent_version,
                Timestamp::now(),
            )
        };
        let report = match api.get_opt(&name).await {
            Ok(Some(existing)) => match GatewayStatusReport::from_configmap(&existing) {
                Ok(mut report) if report.pod == config.pod_name => {
                    report.agent_version = agent_version.to_owned();
                    report
                }
                Ok(_) => fresh(),
                Err(error) => {
                    tracing::warn!(configmap = %name, %error, "the previous status ConfigMap is unreadable; starting afresh");
                    fresh()
                }
            },
            Ok(None) => fresh(),
            Err(error) => {
                tracing::warn!(configmap = %name, %error, "could not read the previous status ConfigMap; starting afresh");
                fresh()
            }
        };
        let reporter = EventReporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: Some(config.pod_name.clone()),
        };
        StatusReporter {
            api,
            name,
            namespace,
            pod_namespace: config.pod_namespace.clone(),
            report,
            pod_uid: None,
            owner_uid: None,
            // Written at the first real change (not at startup: a restarting agent rewrites
            // nothing it has not re-checked).
            dirty: false,
            written: false,
            last_written: None,
            client,
            reporter,
            cr_name: config.cr_name.clone(),
            agent_version,
        }
    }

    /// The report as it stands.
    pub fn report(&self) -> &GatewayStatusReport {
        &self.report
    }

    /// The pod's UID (for the owner reference) and the GatewaySync's (for Events).
    pub fn set_owners(&mut self, pod_uid: Option<&str>, gateway_sync_uid: Option<&str>) {
        if self.pod_uid.as_deref() != pod_uid {
            self.pod_uid = pod_uid.map(str::to_owned);
            // Written before the pod was known (or for another incarnation of it): write the
            // owner reference now.
            if self.written && self.pod_uid.is_some() {
                self.dirty = true;
            }
        }
        self.owner_uid = gateway_sync_uid.map(str::to_owned);
    }

    /// The gateway's name and profile, as they are now.
    pub fn set_identity(&mut self, gateway: &str, profile: Option<&str>) {
        if self.report.gateway != gateway {
            gateway.clone_into(&mut self.report.gateway);
            self.dirty = true;
        }
        if self.report.profile.as_deref() != profile {
            self.report.profile = profile.map(str::to_owned);
            self.dirty = true;
        }
    }

    /// Records a finished sync, unless it repeats the current state exactly (same outcome,
    /// target and message, nothing written, no rescan). `scan` is the rescan asked after it,
    /// if any. Returns whether it was recorded.
    pub fn record(
        &mut self,
        result: SyncResult,
        projects: Option<Vec<String>>,
        scan: Option<ScanReport>,
    ) -> bool {
        let repeat = is_repeat(&self.report, &result, scan.is_some())
            && projects.as_ref().is_none_or(|p| *p == self.report.projects);
        if repeat {
            return false;
        }
        if let Some(projects) = projects {
            self.report.projects = projects;
        }
        if let Some(scan) = scan {
            self.report.last_scan_result = Some(scan.detail);
            self.report.last_scan_status = Some(scan.status);
        }
        self.report.agent_version = self.agent_version.to_owned();
        self.report.record(result);
        self.dirty = true;
        true
    }

    /// Says what the agent is doing without recording a sync result (waiting for its inputs,
    /// syncing a new commit, paused): `status` and `message` change, history does not.
    pub fn note(
        &mut self,
        status: SyncStatus,
        message: &str,
        reference: Option<&str>,
        commit: Option<&str>,
    ) {
        let report = &mut self.report;
        let same = report.status == status
            && report.message.as_deref() == Some(message)
            && (reference.is_none() || report.reference.as_deref() == reference)
            && (commit.is_none() || report.commit.as_deref() == commit);
        if same {
            return;
        }
        report.status = status;
        report.message = Some(message.to_owned());
        if let Some(reference) = reference {
            report.reference = Some(reference.to_owned());
        }
        if let Some(commit) = commit {
            report.commit = Some(commit.to_owned());
        }
        report.time = Timestamp::now();
        self.dirty = true;
    }

    /// When a heartbeat is due: `every` after this process last wrote the ConfigMap, or now
    /// when it has not written it yet (a restarted agent says it is back).
    pub fn next_heartbeat(&self, every: std::time::Duration) -> tokio::time::Instant {
        self.last_written
            .map_or_else(tokio::time::Instant::now, |at| at + every)
    }

    /// Refreshes `lastHeartbeatTime` when a heartbeat is due ([`Self::next_heartbeat`]), so
    /// that the next [`Self::flush`] writes it. A report written for another reason in the
    /// meantime counts as a heartbeat: an agent that writes anyway adds nothing.
    pub fn heartbeat(&mut self, every: std::time::Duration) {
        if !self.dirty && self.next_heartbeat(every) <= tokio::time::Instant::now() {
            self.report.heartbeat = Some(Timestamp::now());
            self.dirty = true;
        }
    }

    /// True when the ConfigMap lags the report.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Writes the ConfigMap when the report changed (server-side apply, forced: the agent owns
    /// these fields).
    pub async fn flush(&mut self) -> Result<(), String> {
        if !self.dirty {
            return Ok(());
        }
        // An owner reference only to a pod in the same namespace (ownership cannot cross
        // namespaces); without a UID yet, none.
        let owner = self
            .pod_uid
            .as_deref()
            .filter(|_| self.pod_namespace == self.namespace)
            .map(|uid| pod_owner_reference(&self.report.pod, uid));
        let configmap = self
            .report
            .to_configmap(&self.namespace, owner)
            .map_err(|error| error.to_string())?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match self
            .api
            .patch(&self.name, &params, &Patch::Apply(&configmap))
            .await
        {
            Ok(_) => {
                self.dirty = false;
                self.written = true;
                self.last_written = Some(tokio::time::Instant::now());
                tracing::debug!(configmap = %self.name, status = %self.report.status, "status written");
                Ok(())
            }
            Err(error) => Err(format!(
                "writing ConfigMap {}/{}: {error}",
                self.namespace, self.name
            )),
        }
    }

    /// Publishes an Event on the GatewaySync (best effort: a failure is logged).
    pub async fn event(&self, warning: bool, reason: &str, note: String) {
        let reference = ObjectReference {
            api_version: Some(crate::crd::GROUP.to_owned() + "/" + crate::crd::VERSION),
            kind: Some(crate::crd::KIND.to_owned()),
            name: Some(self.cr_name.clone()),
            namespace: Some(self.namespace.clone()),
            uid: self.owner_uid.clone(),
            ..ObjectReference::default()
        };
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.to_owned(),
            note: Some(truncate(&format!("{}: {note}", self.report.pod), 1000)),
            action: "Sync".to_owned(),
            secondary: None,
        };
        if let Err(error) =
            crate::events::publish(&self.client, &self.reporter, &event, &reference).await
        {
            tracing::warn!(%error, reason, "could not publish an Event");
        }
    }
}

/// A gateway rescan the agent asked for: how it went (`lastScanStatus`, which the operator's
/// `ScanFailure` notifications are decided from) and its detail (`lastScanResult`, for people).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// Whether it succeeded.
    pub status: ScanStatus,
    /// The gateway's answer, or the error.
    pub detail: String,
}

impl ScanReport {
    /// A rescan the gateway accepted, with its answer.
    pub fn succeeded(detail: String) -> Self {
        ScanReport {
            status: ScanStatus::Succeeded,
            detail,
        }
    }

    /// A rescan that failed, with the error.
    pub fn failed(detail: String) -> Self {
        ScanReport {
            status: ScanStatus::Failed,
            detail,
        }
    }
}

/// Whether `result` only repeats what `current` already says, so recording it would add
/// nothing but churn: nothing was written and no rescan asked, at the same commit and ref, with
/// the same outcome — for `Synced` whatever the message (a resync's counts differ only in
/// "unchanged"), otherwise with the same message (another error is news).
pub fn is_repeat(current: &GatewayStatusReport, result: &SyncResult, scanned: bool) -> bool {
    // A dry run (`Pending`) wrote nothing, whatever its counts say it would change.
    let nothing_written = result.files_changed() == 0 || result.status == SyncStatus::Pending;
    nothing_written
        && !scanned
        && current.status == result.status
        && current.commit == result.commit
        && current.reference == result.reference
        && (result.status == SyncStatus::Synced || current.message == result.message)
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max.saturating_sub(3);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: SyncStatus, added: u64, message: &str) -> SyncResult {
        SyncResult {
            time: Timestamp::UNIX_EPOCH,
            commit: Some("c1".into()),
            reference: Some("main".into()),
            status,
            files_added: added,
            message: Some(message.into()),
            ..SyncResult::default()
        }
    }

    #[test]
    fn only_news_is_recorded() {
        let mut current = GatewayStatusReport::new("cr", "gw", "pod", "v", Timestamp::UNIX_EPOCH);
        current.record(result(SyncStatus::Synced, 3, "3 added, 0 unchanged"));
        // A no-op resync: its counts differ, it is not news.
        assert!(is_repeat(
            &current,
            &result(SyncStatus::Synced, 0, "0 added, 3 unchanged"),
            false
        ));
        // Files changed (drift repaired), a rescan, another commit: news.
        assert!(!is_repeat(
            &current,
            &result(SyncStatus::Synced, 1, "x"),
            false
        ));
        assert!(!is_repeat(
            &current,
            &result(SyncStatus::Synced, 0, "x"),
            true
        ));
        let mut other = result(SyncStatus::Synced, 0, "x");
        other.commit = Some("c2".into());
        assert!(!is_repeat(&current, &other, false));
        // Errors: the same one again is not news, another one is.
        current.record(result(SyncStatus::Error, 0, "Designer sessions open"));
        assert!(is_repeat(
            &current,
            &result(SyncStatus::Error, 0, "Designer sessions open"),
            false
        ));
        assert!(!is_repeat(
            &current,
            &result(SyncStatus::Error, 0, "git fetch failed"),
            false
        ));
        // A dry run repeating itself is not news, whatever it would change.
        current.record(result(SyncStatus::Pending, 2, "dry run: would add 2"));
        assert!(is_repeat(
            &current,
            &result(SyncStatus::Pending, 2, "dry run: would add 2"),
            false
        ));
    }

    #[test]
    fn notes_are_cut_at_a_character_boundary() {
        assert_eq!(truncate("short", 10), "short");
        let long = "é".repeat(600);
        let cut = truncate(&long, 1000);
        assert!(cut.len() <= 1000 && cut.ends_with("..."));
    }
}
