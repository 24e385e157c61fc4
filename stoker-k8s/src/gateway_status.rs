//! The agent → controller half of the ConfigMap protocol: one status ConfigMap per gateway pod.
//!
//! Each agent writes only its own ConfigMap, so agents never contend for one object.
//!
//! - **Name**: `stoker-status-{cr}-{pod}` ([`status_configmap_name`]), shortened with a hash
//!   when longer than 253 characters.
//! - **Labels** (to list them): `app.kubernetes.io/component: gateway-status`,
//!   `stoker.io/cr-name: {cr}`, `stoker.io/pod-name: {pod}`,
//!   `app.kubernetes.io/managed-by: stoker-agent` ([`status_configmap_selector`] is the
//!   selector the operator lists with). Label values longer than 63 characters are shortened
//!   with a hash; the data holds the full names.
//! - **Owner**: the gateway pod ([`pod_owner_reference`]), so the ConfigMap goes when the pod
//!   does.
//! - **Data** ([`keys`]): `crName`, `gateway`, `pod`, `profile`, `commit`, `ref`, `syncStatus`
//!   (`Pending`, `Synced`, `Error`), `filesAdded`, `filesModified`, `filesDeleted`,
//!   `filesUnchanged`, `message`, `agentVersion`, `lastSyncTime` (RFC 3339),
//!   `lastSyncDuration` (a Go duration, `1.234s`), `projectsSynced` (JSON array),
//!   `lastScanResult`, `lastScanStatus` (`Succeeded` or `Failed`: how the last rescan went;
//!   absent from agents that do not say), `history` (JSON array of the last [`HISTORY_LIMIT`] results, newest
//!   first), `lastHeartbeatTime` (RFC 3339: the agent refreshes it when it has written
//!   nothing for two sync periods, so the operator can tell a quiet agent from a gone one).
//!
//! ```
//! use jiff::Timestamp;
//! use stoker_k8s::crd::SyncStatus;
//! use stoker_k8s::gateway_status::{GatewayStatusReport, SyncResult};
//! let now: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
//! let mut report = GatewayStatusReport::new("site", "blue", "ignition-0", "0.1.0", now);
//! report.record(SyncResult {
//!     time: now,
//!     commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
//!     reference: Some("main".into()),
//!     status: SyncStatus::Synced,
//!     files_added: 3,
//!     ..Default::default()
//! });
//! let data = report.to_data().unwrap();
//! assert_eq!(data["syncStatus"], "Synced");
//! assert_eq!(GatewayStatusReport::from_data("cm", &data).unwrap(), report);
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::annotations::{
    COMPONENT_GATEWAY_STATUS, COMPONENT_LABEL, LABEL_CR_NAME, LABEL_POD_NAME, MANAGED_BY_AGENT,
    MANAGED_BY_LABEL, label_value, object_name,
};
use crate::crd::{ScanStatus, SyncStatus, parse_go_duration};
use crate::error::{Error, Result};
use crate::metadata::{Reader, configmap_data};

/// How many past results a status ConfigMap keeps in `history`.
pub const HISTORY_LIMIT: usize = 10;

/// The status ConfigMap's keys.
pub mod keys {
    /// The `GatewaySync`'s name.
    pub const CR_NAME: &str = "crName";
    /// The gateway's name.
    pub const GATEWAY: &str = "gateway";
    /// The pod's name.
    pub const POD: &str = "pod";
    /// The profile in use.
    pub const PROFILE: &str = "profile";
    /// The commit the gateway is synced to (or was trying).
    pub const COMMIT: &str = "commit";
    /// The ref.
    pub const REF: &str = "ref";
    /// `Pending`, `Synced` or `Error`.
    pub const SYNC_STATUS: &str = "syncStatus";
    /// Files added by the last sync.
    pub const FILES_ADDED: &str = "filesAdded";
    /// Files modified by the last sync.
    pub const FILES_MODIFIED: &str = "filesModified";
    /// Files deleted by the last sync.
    pub const FILES_DELETED: &str = "filesDeleted";
    /// Files left unchanged by the last sync.
    pub const FILES_UNCHANGED: &str = "filesUnchanged";
    /// A human-readable detail (the error).
    pub const MESSAGE: &str = "message";
    /// The agent's version.
    pub const AGENT_VERSION: &str = "agentVersion";
    /// When the report was written (RFC 3339).
    pub const LAST_SYNC_TIME: &str = "lastSyncTime";
    /// How long the last sync took (Go duration).
    pub const LAST_SYNC_DURATION: &str = "lastSyncDuration";
    /// JSON array of Ignition project names.
    pub const PROJECTS_SYNCED: &str = "projectsSynced";
    /// The outcome of the last gateway rescan.
    pub const LAST_SCAN_RESULT: &str = "lastScanResult";
    /// Whether the last gateway rescan `Succeeded` or `Failed`.
    pub const LAST_SCAN_STATUS: &str = "lastScanStatus";
    /// JSON array of past results, newest first.
    pub const HISTORY: &str = "history";
    /// When the agent last said it is alive (RFC 3339), written when nothing else was for a
    /// while.
    pub const LAST_HEARTBEAT_TIME: &str = "lastHeartbeatTime";
}

/// The status ConfigMap's name for a gateway pod: `stoker-status-{cr}-{pod}`.
///
/// ```
/// assert_eq!(stoker_k8s::gateway_status::status_configmap_name("site", "ignition-0"), "stoker-status-site-ignition-0");
/// ```
pub fn status_configmap_name(cr_name: &str, pod_name: &str) -> String {
    object_name("stoker-status", &[cr_name, pod_name])
}

/// The label selector listing every gateway status ConfigMap of the resource `cr_name`.
///
/// ```
/// assert_eq!(
///     stoker_k8s::gateway_status::status_configmap_selector("site"),
///     "app.kubernetes.io/component=gateway-status,stoker.io/cr-name=site"
/// );
/// ```
pub fn status_configmap_selector(cr_name: &str) -> String {
    format!(
        "{COMPONENT_LABEL}={COMPONENT_GATEWAY_STATUS},{LABEL_CR_NAME}={}",
        label_value(cr_name)
    )
}

/// An owner reference to the gateway pod (the agent reads its pod's UID from the downward API),
/// so the status ConfigMap is garbage-collected with the pod.
pub fn pod_owner_reference(pod_name: &str, pod_uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Pod".to_owned(),
        name: pod_name.to_owned(),
        uid: pod_uid.to_owned(),
        controller: None,
        block_owner_deletion: None,
    }
}

/// One sync attempt, as kept in `history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncResult {
    /// When it finished.
    pub time: Timestamp,
    /// The commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The ref.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The outcome.
    pub status: SyncStatus,
    /// Files added.
    #[serde(default)]
    pub files_added: u64,
    /// Files modified.
    #[serde(default)]
    pub files_modified: u64,
    /// Files deleted.
    #[serde(default)]
    pub files_deleted: u64,
    /// Files unchanged.
    #[serde(default)]
    pub files_unchanged: u64,
    /// How long it took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The error or detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Default for SyncResult {
    fn default() -> Self {
        SyncResult {
            time: Timestamp::UNIX_EPOCH,
            commit: None,
            reference: None,
            status: SyncStatus::Pending,
            files_added: 0,
            files_modified: 0,
            files_deleted: 0,
            files_unchanged: 0,
            duration_ms: None,
            message: None,
        }
    }
}

impl SyncResult {
    /// Files added, modified or deleted.
    pub fn files_changed(&self) -> u64 {
        self.files_added + self.files_modified + self.files_deleted
    }
}

/// Which kind of agent a [`GatewayStatusReport`] comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ReportOrigin {
    /// A Stoker agent's own status ConfigMap: it refreshes its report at least every two sync
    /// periods, so its silence means something.
    #[default]
    Agent,
    /// An entry of stoker-operator v0.5.1's shared ConfigMap `stoker-status-{cr}`
    /// ([`crate::legacy_status`]): those agents write only when they sync, so their silence
    /// says nothing about whether they are alive.
    StokerOperatorV051,
}

/// The content of a gateway status ConfigMap, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayStatusReport {
    /// The `GatewaySync`'s name.
    pub cr_name: String,
    /// The gateway's name.
    pub gateway: String,
    /// The pod's name.
    pub pod: String,
    /// The profile in use.
    pub profile: Option<String>,
    /// The commit of the last sync.
    pub commit: Option<String>,
    /// The ref of the last sync.
    pub reference: Option<String>,
    /// `Pending`, `Synced` or `Error`.
    pub status: SyncStatus,
    /// Files added by the last sync.
    pub files_added: u64,
    /// Files modified by the last sync.
    pub files_modified: u64,
    /// Files deleted by the last sync.
    pub files_deleted: u64,
    /// Files unchanged by the last sync.
    pub files_unchanged: u64,
    /// A human-readable detail.
    pub message: Option<String>,
    /// The agent's version.
    pub agent_version: String,
    /// When the report was last written.
    pub time: Timestamp,
    /// How long the last sync took.
    pub duration: Option<Duration>,
    /// Ignition projects present after the last sync.
    pub projects: Vec<String>,
    /// The outcome of the last gateway rescan.
    pub last_scan_result: Option<String>,
    /// Whether the last gateway rescan succeeded; `None`: the agent did not say (an older
    /// agent, stoker-operator v0.5.1's, or no rescan yet).
    pub last_scan_status: Option<ScanStatus>,
    /// Past results, newest first, at most [`HISTORY_LIMIT`].
    pub history: Vec<SyncResult>,
    /// When the agent last refreshed the report only to say it is alive.
    pub heartbeat: Option<Timestamp>,
    /// Where the report was read from (not written to the ConfigMap).
    pub origin: ReportOrigin,
}

impl GatewayStatusReport {
    /// A `Pending` report with nothing synced yet.
    pub fn new(
        cr_name: &str,
        gateway: &str,
        pod: &str,
        agent_version: &str,
        now: Timestamp,
    ) -> Self {
        GatewayStatusReport {
            cr_name: cr_name.to_owned(),
            gateway: gateway.to_owned(),
            pod: pod.to_owned(),
            profile: None,
            commit: None,
            reference: None,
            status: SyncStatus::Pending,
            files_added: 0,
            files_modified: 0,
            files_deleted: 0,
            files_unchanged: 0,
            message: None,
            agent_version: agent_version.to_owned(),
            time: now,
            duration: None,
            projects: Vec::new(),
            last_scan_result: None,
            last_scan_status: None,
            history: Vec::new(),
            heartbeat: None,
            origin: ReportOrigin::Agent,
        }
    }

    /// When the agent was last heard from: the later of the report's time and its heartbeat.
    pub fn last_seen(&self) -> Timestamp {
        self.heartbeat.map_or(self.time, |beat| beat.max(self.time))
    }

    /// Records a finished sync: the report's current fields take its values and it goes first
    /// into `history` (trimmed to [`HISTORY_LIMIT`]).
    pub fn record(&mut self, result: SyncResult) {
        self.commit = result.commit.clone();
        self.reference = result.reference.clone();
        self.status = result.status;
        self.files_added = result.files_added;
        self.files_modified = result.files_modified;
        self.files_deleted = result.files_deleted;
        self.files_unchanged = result.files_unchanged;
        self.message = result.message.clone();
        self.time = result.time;
        self.duration = result.duration_ms.map(Duration::from_millis);
        self.history.insert(0, result);
        self.history.truncate(HISTORY_LIMIT);
    }

    /// Files added, modified or deleted by the last sync.
    pub fn files_changed(&self) -> u64 {
        self.files_added + self.files_modified + self.files_deleted
    }

    /// The ConfigMap `data`.
    pub fn to_data(&self) -> Result<BTreeMap<String, String>> {
        let mut data = BTreeMap::new();
        let mut put = |key: &str, value: String| {
            data.insert(key.to_owned(), value);
        };
        put(keys::CR_NAME, self.cr_name.clone());
        put(keys::GATEWAY, self.gateway.clone());
        put(keys::POD, self.pod.clone());
        if let Some(profile) = &self.profile {
            put(keys::PROFILE, profile.clone());
        }
        if let Some(commit) = &self.commit {
            put(keys::COMMIT, commit.clone());
        }
        if let Some(reference) = &self.reference {
            put(keys::REF, reference.clone());
        }
        put(keys::SYNC_STATUS, self.status.as_str().to_owned());
        put(keys::FILES_ADDED, self.files_added.to_string());
        put(keys::FILES_MODIFIED, self.files_modified.to_string());
        put(keys::FILES_DELETED, self.files_deleted.to_string());
        put(keys::FILES_UNCHANGED, self.files_unchanged.to_string());
        if let Some(message) = &self.message {
            put(keys::MESSAGE, message.clone());
        }
        put(keys::AGENT_VERSION, self.agent_version.clone());
        put(keys::LAST_SYNC_TIME, self.time.to_string());
        if let Some(duration) = self.duration {
            put(keys::LAST_SYNC_DURATION, format_duration(duration));
        }
        if !self.projects.is_empty() {
            put(
                keys::PROJECTS_SYNCED,
                serde_json::to_string(&self.projects).map_err(|source| Error::Serialize {
                    what: "projectsSynced",
                    source,
                })?,
            );
        }
        if let Some(result) = &self.last_scan_result {
            put(keys::LAST_SCAN_RESULT, result.clone());
        }
        if let Some(status) = self.last_scan_status {
            put(keys::LAST_SCAN_STATUS, status.as_str().to_owned());
        }
        put(
            keys::HISTORY,
            serde_json::to_string(&self.history).map_err(|source| Error::Serialize {
                what: "history",
                source,
            })?,
        );
        if let Some(heartbeat) = self.heartbeat {
            put(keys::LAST_HEARTBEAT_TIME, heartbeat.to_string());
        }
        Ok(data)
    }

    /// Reads the ConfigMap `data`; `configmap` names it in errors.
    pub fn from_data(configmap: &str, data: &BTreeMap<String, String>) -> Result<Self> {
        let reader = Reader { configmap, data };
        let count = |key| -> Result<u64> { Ok(reader.parsed(key)?.unwrap_or(0)) };
        let duration = reader
            .optional(keys::LAST_SYNC_DURATION)
            .map(|value| {
                parse_go_duration(value)
                    .map_err(|error| reader.invalid(keys::LAST_SYNC_DURATION, error.to_string()))
            })
            .transpose()?;
        Ok(GatewayStatusReport {
            cr_name: reader.required(keys::CR_NAME)?.to_owned(),
            gateway: reader.required(keys::GATEWAY)?.to_owned(),
            pod: reader.required(keys::POD)?.to_owned(),
            profile: reader.optional(keys::PROFILE).map(str::to_owned),
            commit: reader.optional(keys::COMMIT).map(str::to_owned),
            reference: reader.optional(keys::REF).map(str::to_owned),
            status: reader.parsed(keys::SYNC_STATUS)?.unwrap_or_default(),
            files_added: count(keys::FILES_ADDED)?,
            files_modified: count(keys::FILES_MODIFIED)?,
            files_deleted: count(keys::FILES_DELETED)?,
            files_unchanged: count(keys::FILES_UNCHANGED)?,
            message: reader.optional(keys::MESSAGE).map(str::to_owned),
            agent_version: reader
                .optional(keys::AGENT_VERSION)
                .unwrap_or_default()
                .to_owned(),
            time: reader
                .parsed(keys::LAST_SYNC_TIME)?
                .unwrap_or(Timestamp::UNIX_EPOCH),
            duration,
            projects: reader.json(keys::PROJECTS_SYNCED)?.unwrap_or_default(),
            last_scan_result: reader.optional(keys::LAST_SCAN_RESULT).map(str::to_owned),
            last_scan_status: reader
                .optional(keys::LAST_SCAN_STATUS)
                .and_then(ScanStatus::parse),
            history: reader.json(keys::HISTORY)?.unwrap_or_default(),
            heartbeat: reader.parsed(keys::LAST_HEARTBEAT_TIME)?,
            origin: ReportOrigin::Agent,
        })
    }

    /// The ConfigMap in `namespace`, labelled for [`status_configmap_selector`], owned by
    /// `owner` (the pod, see [`pod_owner_reference`]) when given.
    pub fn to_configmap(
        &self,
        namespace: &str,
        owner: Option<OwnerReference>,
    ) -> Result<ConfigMap> {
        Ok(ConfigMap {
            metadata: ObjectMeta {
                name: Some(status_configmap_name(&self.cr_name, &self.pod)),
                namespace: Some(namespace.to_owned()),
                labels: Some(BTreeMap::from([
                    (
                        COMPONENT_LABEL.to_owned(),
                        COMPONENT_GATEWAY_STATUS.to_owned(),
                    ),
                    (LABEL_CR_NAME.to_owned(), label_value(&self.cr_name)),
                    (LABEL_POD_NAME.to_owned(), label_value(&self.pod)),
                    (MANAGED_BY_LABEL.to_owned(), MANAGED_BY_AGENT.to_owned()),
                ])),
                owner_references: owner.map(|owner| vec![owner]),
                ..Default::default()
            },
            data: Some(self.to_data()?),
            ..Default::default()
        })
    }

    /// Reads a status ConfigMap.
    pub fn from_configmap(configmap: &ConfigMap) -> Result<Self> {
        let (name, data) = configmap_data(configmap, "stoker-status");
        Self::from_data(name, data)
    }
}

/// Formats a duration as a Go duration in seconds with millisecond precision (`1.234s`).
///
/// ```
/// use std::time::Duration;
/// assert_eq!(stoker_k8s::gateway_status::format_duration(Duration::from_millis(1234)), "1.234s");
/// assert_eq!(stoker_k8s::gateway_status::format_duration(Duration::from_secs(2)), "2s");
/// ```
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    let (seconds, rest) = (millis / 1000, millis % 1000);
    if rest == 0 {
        format!("{seconds}s")
    } else {
        let fraction = format!("{rest:03}");
        format!("{seconds}.{}s", fraction.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn result(i: u64, status: SyncStatus) -> SyncResult {
        SyncResult {
            time: at("2026-03-01T12:00:00Z"),
            commit: Some(format!("{i:040x}")),
            reference: Some("main".into()),
            status,
            files_modified: i,
            duration_ms: Some(1500),
            message: (status == SyncStatus::Error).then(|| "gateway unreachable".to_owned()),
            ..Default::default()
        }
    }

    #[test]
    fn a_heartbeat_round_trips_and_counts_as_being_seen() {
        let mut report =
            GatewayStatusReport::new("site", "gw", "pod", "v", at("2026-01-01T00:00:00Z"));
        assert_eq!(report.last_seen(), at("2026-01-01T00:00:00Z"));
        assert!(
            !report
                .to_data()
                .unwrap()
                .contains_key(keys::LAST_HEARTBEAT_TIME)
        );
        report.heartbeat = Some(at("2026-01-01T00:05:00Z"));
        let data = report.to_data().unwrap();
        assert_eq!(data[keys::LAST_HEARTBEAT_TIME], "2026-01-01T00:05:00Z");
        assert_eq!(GatewayStatusReport::from_data("cm", &data).unwrap(), report);
        assert_eq!(report.last_seen(), at("2026-01-01T00:05:00Z"));
        // A report written after the heartbeat is the latest word.
        report.time = at("2026-01-01T00:06:00Z");
        assert_eq!(report.last_seen(), at("2026-01-01T00:06:00Z"));
    }

    #[test]
    fn a_full_report_round_trips() {
        let mut report = GatewayStatusReport::new(
            "site",
            "blue",
            "ignition-0",
            "0.1.0",
            at("2026-03-01T11:00:00Z"),
        );
        report.profile = Some("standard".into());
        report.projects = vec!["Main".into(), "Shared".into()];
        report.last_scan_result = Some("projects 200, config 200".into());
        report.record(result(1, SyncStatus::Synced));
        report.record(result(2, SyncStatus::Error));
        let data = report.to_data().unwrap();
        assert_eq!(data[keys::SYNC_STATUS], "Error");
        assert_eq!(data[keys::MESSAGE], "gateway unreachable");
        assert_eq!(data[keys::LAST_SYNC_DURATION], "1.5s");
        assert_eq!(data[keys::LAST_SYNC_TIME], "2026-03-01T12:00:00Z");
        assert_eq!(data[keys::PROJECTS_SYNCED], r#"["Main","Shared"]"#);
        assert_eq!(GatewayStatusReport::from_data("cm", &data).unwrap(), report);
        assert_eq!(report.files_changed(), 2);
    }

    #[test]
    fn the_scan_status_is_typed_and_absent_means_unknown() {
        let mut report = GatewayStatusReport::new("c", "g", "p", "v", Timestamp::UNIX_EPOCH);
        let data = report.to_data().unwrap();
        assert!(!data.contains_key(keys::LAST_SCAN_STATUS));
        // A report without the key (an older agent) reads as unknown, never as a failure.
        assert_eq!(
            GatewayStatusReport::from_data("cm", &data)
                .unwrap()
                .last_scan_status,
            None
        );
        report.last_scan_status = Some(ScanStatus::Failed);
        let mut data = report.to_data().unwrap();
        assert_eq!(data[keys::LAST_SCAN_STATUS], "Failed");
        assert_eq!(GatewayStatusReport::from_data("cm", &data).unwrap(), report);
        // A word this operator does not know is unknown too, and the rest of the report reads.
        data.insert(keys::LAST_SCAN_STATUS.into(), "Deferred".into());
        let read = GatewayStatusReport::from_data("cm", &data).unwrap();
        assert_eq!((read.last_scan_status, read.pod.as_str()), (None, "p"));
    }

    #[test]
    fn history_keeps_the_newest_results() {
        let mut report = GatewayStatusReport::new("c", "g", "p", "v", Timestamp::UNIX_EPOCH);
        for i in 0..(HISTORY_LIMIT as u64 + 5) {
            report.record(result(i, SyncStatus::Synced));
        }
        assert_eq!(report.history.len(), HISTORY_LIMIT);
        assert_eq!(report.history[0].files_modified, HISTORY_LIMIT as u64 + 4);
        assert_eq!(report.history[0].files_changed(), HISTORY_LIMIT as u64 + 4);
    }

    #[test]
    fn bad_values_are_named() {
        let report = GatewayStatusReport::new("c", "g", "p", "v", Timestamp::UNIX_EPOCH);
        let mut data = report.to_data().unwrap();
        data.insert(keys::SYNC_STATUS.into(), "Done".into());
        let error = GatewayStatusReport::from_data("stoker-status-c-p", &data)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("syncStatus") && error.contains("Done"),
            "{error}"
        );
        data.remove(keys::SYNC_STATUS);
        data.remove(keys::POD);
        let error = GatewayStatusReport::from_data("x", &data)
            .unwrap_err()
            .to_string();
        assert_eq!(error, "ConfigMap x: missing key \"pod\"");
    }

    #[test]
    fn the_configmap_is_named_labelled_and_owned_by_the_pod() {
        let report =
            GatewayStatusReport::new("site", "blue", "ignition-0", "v", Timestamp::UNIX_EPOCH);
        let configmap = report
            .to_configmap("plant", Some(pod_owner_reference("ignition-0", "uid-9")))
            .unwrap();
        assert_eq!(
            configmap.metadata.name.as_deref(),
            Some("stoker-status-site-ignition-0")
        );
        let labels = configmap.metadata.labels.clone().unwrap();
        for pair in status_configmap_selector("site").split(',') {
            let (key, value) = pair.split_once('=').unwrap();
            assert_eq!(labels[key], value);
        }
        let owner = &configmap.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Pod", "uid-9"));
        assert_eq!(
            GatewayStatusReport::from_configmap(&configmap).unwrap(),
            report
        );
    }

    #[test]
    fn durations_format_like_go() {
        assert_eq!(format_duration(Duration::from_millis(50)), "0.05s");
        assert_eq!(
            parse_go_duration(&format_duration(Duration::from_millis(1234))).unwrap(),
            Duration::from_millis(1234)
        );
    }
}
