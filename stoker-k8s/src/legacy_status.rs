//! Reading stoker-operator v0.5.1's agents during a migration.
//!
//! v0.5.1's agents report in one ConfigMap per resource, `stoker-status-{cr}`
//! ([`legacy_status_configmap_name`]), shared by all of its gateways: each data key is a gateway
//! (the agent's gateway name, which defaults to the pod name) and each value a JSON object
//! ([`LegacyGatewayStatus`]). Stoker's agents write one ConfigMap per pod instead
//! ([`crate::gateway_status`]).
//!
//! While a fleet moves from v0.5.1's agents to Stoker's, the operator reads both: a discovered
//! gateway without a report of Stoker's takes its entry of the shared ConfigMap
//! ([`legacy_reports`]), looked up by pod name, then by gateway name, as v0.5.1's controller
//! did. Stoker's own report always wins. An entry that does not parse is logged and counts as
//! no report; it never fails the reconciliation.
//!
//! ```
//! use stoker_k8s::crd::SyncStatus;
//! use stoker_k8s::legacy_status::LegacyGatewayStatus;
//! let entry = LegacyGatewayStatus::parse(
//!     "stoker-status-site",
//!     "ignition-0",
//!     r#"{"syncStatus":"Synced","syncedCommit":"abc123","syncedRef":"main",
//!         "lastSyncTime":"2026-03-01T12:00:00Z","lastSyncDuration":"1.5s",
//!         "agentVersion":"0.5.1","lastScanResult":"projects=200 config=200",
//!         "filesChanged":3,"projectsSynced":["Main"]}"#,
//! )
//! .unwrap();
//! let report = entry.to_report("stoker-status-site", "ignition-0", "site", "ignition", "ignition-0").unwrap();
//! assert_eq!(report.status, SyncStatus::Synced);
//! assert_eq!(report.commit.as_deref(), Some("abc123"));
//! assert_eq!(report.files_changed(), 3);
//! ```

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use serde::Deserialize;

use crate::annotations::COMPONENT_LABEL;
use crate::crd::{SyncStatus, parse_go_duration};
use crate::discovery::GatewayPod;
use crate::error::{Error, Result};
use crate::gateway_status::{GatewayStatusReport, ReportOrigin};

/// The prefix of v0.5.1's shared status ConfigMap's name.
pub const LEGACY_STATUS_PREFIX: &str = "stoker-status-";

/// The name of v0.5.1's shared status ConfigMap of the resource `cr_name`:
/// `stoker-status-{cr}`, spelt as v0.5.1 spelt it (no shortening).
///
/// ```
/// assert_eq!(stoker_k8s::legacy_status::legacy_status_configmap_name("site"), "stoker-status-site");
/// ```
pub fn legacy_status_configmap_name(cr_name: &str) -> String {
    format!("{LEGACY_STATUS_PREFIX}{cr_name}")
}

/// The resource a v0.5.1 shared status ConfigMap belongs to, from its name; `None` for any
/// other ConfigMap.
///
/// Stoker's own per-pod ConfigMaps (`stoker-status-{cr}-{pod}`) share the prefix, so a name
/// alone could be either (resource `a-b`, or resource `a` and pod `b`): Stoker's always carry
/// the `app.kubernetes.io/component` label, v0.5.1's never do.
pub fn legacy_status_owner(configmap: &ConfigMap) -> Option<String> {
    if configmap.labels().contains_key(COMPONENT_LABEL) {
        return None;
    }
    configmap
        .metadata
        .name
        .as_deref()?
        .strip_prefix(LEGACY_STATUS_PREFIX)
        .filter(|cr| !cr.is_empty())
        .map(str::to_owned)
}

/// One value of v0.5.1's shared status ConfigMap: what a v0.5.1 agent last reported. Fields it
/// omits take their zero value, as in Go; fields this version does not know are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LegacyGatewayStatus {
    /// `Pending`, `Synced` or `Error`.
    pub sync_status: String,
    /// The commit the gateway is synced to (or was trying).
    pub synced_commit: String,
    /// The ref.
    pub synced_ref: String,
    /// When the agent wrote the entry (RFC 3339).
    pub last_sync_time: String,
    /// How long the last sync took (a Go duration, `2.5s`).
    pub last_sync_duration: String,
    /// The agent's version.
    pub agent_version: String,
    /// The outcome of the last gateway rescan.
    pub last_scan_result: String,
    /// Files changed by the last sync (v0.5.1 counts them together).
    pub files_changed: i64,
    /// Ignition projects synced (Go writes `null` for none).
    pub projects_synced: Option<Vec<String>>,
    /// The error, when `syncStatus` is `Error`.
    pub error_message: String,
    /// The profile used.
    pub profile_name: String,
    /// The sync was a dry run.
    pub dry_run: bool,
    /// Files a dry run would create.
    pub dry_run_diff_added: i64,
    /// Files a dry run would change.
    pub dry_run_diff_modified: i64,
    /// Files a dry run would remove.
    pub dry_run_diff_deleted: i64,
    /// The agent waits for Designer sessions to close.
    pub designer_sessions_blocked: bool,
}

impl LegacyGatewayStatus {
    /// Parses the entry `key` of the ConfigMap `configmap` (both name it in errors).
    pub fn parse(configmap: &str, key: &str, json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|source| Error::InvalidLegacyStatus {
            configmap: configmap.to_owned(),
            key: key.to_owned(),
            problem: "not a JSON GatewayStatus object".to_owned(),
            source: Some(source),
        })
    }

    /// The entry as a report of the gateway `gateway` (pod `pod`) of the resource `cr_name`,
    /// marked [`ReportOrigin::StokerOperatorV051`]. An unknown `syncStatus` or a
    /// `lastSyncTime` that is not RFC 3339 is an error naming the ConfigMap and the key; a
    /// `lastSyncDuration` that does not parse is left out.
    pub fn to_report(
        &self,
        configmap: &str,
        key: &str,
        cr_name: &str,
        gateway: &str,
        pod: &str,
    ) -> Result<GatewayStatusReport> {
        let invalid = |problem: String| Error::InvalidLegacyStatus {
            configmap: configmap.to_owned(),
            key: key.to_owned(),
            problem,
            source: None,
        };
        let status = match self.sync_status.as_str() {
            // Go's zero value: nothing said yet.
            "" | "Pending" => SyncStatus::Pending,
            "Synced" => SyncStatus::Synced,
            "Error" => SyncStatus::Error,
            other => {
                return Err(invalid(format!(
                    "syncStatus {other:?} is not Pending, Synced or Error"
                )));
            }
        };
        let time: Timestamp = self.last_sync_time.parse().map_err(|_| {
            invalid(format!(
                "lastSyncTime {:?} is not an RFC 3339 time",
                self.last_sync_time
            ))
        })?;
        let mut report = GatewayStatusReport::new(cr_name, gateway, pod, &self.agent_version, time);
        report.origin = ReportOrigin::StokerOperatorV051;
        report.status = status;
        report.commit = non_empty(&self.synced_commit);
        report.reference = non_empty(&self.synced_ref);
        report.profile = non_empty(&self.profile_name);
        report.duration = parse_go_duration(&self.last_sync_duration).ok();
        report.last_scan_result = non_empty(&self.last_scan_result);
        // v0.5.1 counts changed files together; only the total is shown.
        report.files_modified = u64::try_from(self.files_changed).unwrap_or(0);
        report.projects = self.projects_synced.clone().unwrap_or_default();
        report.message = self.message();
        Ok(report)
    }

    /// The entry's detail: its error, else why it waits or what a dry run found.
    fn message(&self) -> Option<String> {
        if !self.error_message.is_empty() {
            Some(self.error_message.clone())
        } else if self.designer_sessions_blocked {
            Some("Designer sessions blocked sync".to_owned())
        } else if self.dry_run {
            Some(format!(
                "dry run: {} to add, {} to modify, {} to delete",
                self.dry_run_diff_added, self.dry_run_diff_modified, self.dry_run_diff_deleted
            ))
        } else {
            None
        }
    }
}

fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// Reports for the discovered `pods` of the resource `cr_name` that have none in `own`, from
/// the entries of v0.5.1's shared status ConfigMap `configmap` (looked up by pod name, then by
/// gateway name). An entry that cannot be read is logged with the resource, the ConfigMap and
/// the key, and that gateway simply has no report.
pub fn legacy_reports(
    cr_name: &str,
    configmap: &ConfigMap,
    pods: &[GatewayPod],
    own: &[GatewayStatusReport],
) -> Vec<GatewayStatusReport> {
    let empty = BTreeMap::new();
    let data = configmap.data.as_ref().unwrap_or(&empty);
    let name = configmap.name_any();
    pods.iter()
        .filter(|pod| {
            !own.iter()
                .any(|report| report.cr_name == cr_name && report.pod == pod.pod_name)
        })
        .filter_map(|pod| {
            let (key, json) = [&pod.pod_name, &pod.gateway_name]
                .into_iter()
                .find_map(|key| Some((key, data.get(key.as_str())?)))?;
            // v0.5.1 skipped empty values too.
            if json.is_empty() {
                return None;
            }
            let parsed = LegacyGatewayStatus::parse(&name, key, json).and_then(|entry| {
                entry.to_report(&name, key, cr_name, &pod.gateway_name, &pod.pod_name)
            });
            match parsed {
                Ok(report) => Some(report),
                Err(error) => {
                    tracing::warn!(
                        error = %stoker_core::error::chain(&error),
                        resource = cr_name,
                        configmap = %name,
                        key = %key,
                        "ignored an unreadable entry of a stoker-operator v0.5.1 status ConfigMap"
                    );
                    None
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ObjectMeta;

    fn pod(pod_name: &str, gateway_name: &str) -> GatewayPod {
        GatewayPod {
            gateway_name: gateway_name.to_owned(),
            pod_name: pod_name.to_owned(),
            namespace: "plant".to_owned(),
            pod_uid: None,
            profile: None,
            service_account_name: "default".to_owned(),
            sidecar_injected: true,
            inject_requested: true,
            ref_override: None,
            ordinal: 0,
            labels: BTreeMap::new(),
        }
    }

    fn configmap(name: &str, labels: &[(&str, &str)], data: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Default::default()
        }
    }

    /// What v0.5.1's agent writes after a sync that failed at the rescan.
    const ERROR_ENTRY: &str = r#"{"syncStatus":"Error","syncedCommit":"c0ffee","syncedRef":"v2",
        "lastSyncTime":"2026-03-01T12:00:00Z","lastSyncDuration":"1m2.5s","agentVersion":"0.5.1",
        "lastScanResult":"projects=500 error","filesChanged":4,"projectsSynced":null,
        "errorMessage":"projects=500 error","profileName":"edge"}"#;

    #[test]
    fn every_field_v051_writes_is_mapped() {
        let entry = LegacyGatewayStatus::parse("cm", "gw", ERROR_ENTRY).unwrap();
        let report = entry
            .to_report("cm", "gw", "site", "north", "ignition-0")
            .unwrap();
        assert_eq!(report.origin, ReportOrigin::StokerOperatorV051);
        assert_eq!(
            (
                report.cr_name.as_str(),
                report.gateway.as_str(),
                report.pod.as_str()
            ),
            ("site", "north", "ignition-0")
        );
        assert_eq!(report.status, SyncStatus::Error);
        assert_eq!(report.commit.as_deref(), Some("c0ffee"));
        assert_eq!(report.reference.as_deref(), Some("v2"));
        assert_eq!(report.profile.as_deref(), Some("edge"));
        assert_eq!(report.time, "2026-03-01T12:00:00Z".parse().unwrap());
        assert_eq!(
            report.duration,
            Some(std::time::Duration::from_millis(62_500))
        );
        assert_eq!(report.agent_version, "0.5.1");
        assert_eq!(
            report.last_scan_result.as_deref(),
            Some("projects=500 error")
        );
        assert_eq!(report.files_changed(), 4);
        assert!(report.projects.is_empty());
        assert_eq!(report.message.as_deref(), Some("projects=500 error"));
        assert_eq!(report.heartbeat, None);
        assert!(report.history.is_empty());
    }

    #[test]
    fn missing_fields_take_go_zero_values_and_unknown_ones_are_ignored() {
        let entry = LegacyGatewayStatus::parse(
            "cm",
            "gw",
            r#"{"syncStatus":"Synced","lastSyncTime":"2026-03-01T12:00:00+01:00","futureField":{"x":1}}"#,
        )
        .unwrap();
        let report = entry.to_report("cm", "gw", "site", "gw", "gw").unwrap();
        assert_eq!(report.status, SyncStatus::Synced);
        assert_eq!(report.time, "2026-03-01T11:00:00Z".parse().unwrap());
        assert_eq!(report.commit, None);
        assert_eq!(report.reference, None);
        assert_eq!(report.duration, None);
        assert_eq!(report.files_changed(), 0);
        assert_eq!(report.message, None);
        assert_eq!(report.agent_version, "");
    }

    #[test]
    fn designer_blocks_and_dry_runs_are_said_in_the_message() {
        let blocked = LegacyGatewayStatus {
            sync_status: "Pending".into(),
            last_sync_time: "2026-03-01T12:00:00Z".into(),
            designer_sessions_blocked: true,
            ..Default::default()
        };
        let report = blocked.to_report("cm", "gw", "site", "gw", "gw").unwrap();
        assert_eq!(report.status, SyncStatus::Pending);
        assert_eq!(
            report.message.as_deref(),
            Some("Designer sessions blocked sync")
        );
        let dry = LegacyGatewayStatus {
            sync_status: "Synced".into(),
            last_sync_time: "2026-03-01T12:00:00Z".into(),
            dry_run: true,
            dry_run_diff_added: 1,
            dry_run_diff_modified: 2,
            dry_run_diff_deleted: 3,
            ..Default::default()
        };
        let report = dry.to_report("cm", "gw", "site", "gw", "gw").unwrap();
        assert_eq!(
            report.message.as_deref(),
            Some("dry run: 1 to add, 2 to modify, 3 to delete")
        );
    }

    #[test]
    fn unreadable_entries_are_errors_naming_the_configmap_and_key() {
        let error = LegacyGatewayStatus::parse("stoker-status-site", "ignition-0", "{not json")
            .unwrap_err();
        let text = stoker_core::error::chain(&error);
        assert!(
            text.contains("stoker-status-site") && text.contains("\"ignition-0\""),
            "{text}"
        );
        // A field of the wrong type is as unreadable.
        assert!(LegacyGatewayStatus::parse("cm", "gw", r#"{"filesChanged":"3"}"#).is_err());
        let status = LegacyGatewayStatus {
            sync_status: "Syncing".into(),
            last_sync_time: "2026-03-01T12:00:00Z".into(),
            ..Default::default()
        };
        let text = status
            .to_report("cm", "gw", "site", "gw", "gw")
            .unwrap_err()
            .to_string();
        assert!(text.contains("\"Syncing\""), "{text}");
        let time = LegacyGatewayStatus {
            sync_status: "Synced".into(),
            last_sync_time: "yesterday".into(),
            ..Default::default()
        };
        let text = time
            .to_report("cm", "gw", "site", "gw", "gw")
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("lastSyncTime") && text.contains("yesterday"),
            "{text}"
        );
    }

    #[test]
    fn entries_fill_only_gateways_without_a_report_of_ours() {
        let synced =
            r#"{"syncStatus":"Synced","syncedCommit":"aaa","lastSyncTime":"2026-03-01T12:00:00Z"}"#;
        let cm = configmap(
            "stoker-status-site",
            &[("stoker.io/cr-name", "site")],
            &[
                // By pod name.
                ("ignition-0", synced),
                // By gateway name, as an agent whose GATEWAY_NAME was set writes it.
                ("south", synced),
                // Malformed: that gateway has no report, the others are unaffected.
                ("ignition-2", "{\"syncStatus\":"),
                ("ignition-3", synced),
                // Empty: skipped as v0.5.1 skipped it.
                ("ignition-4", ""),
            ],
        );
        let pods = [
            pod("ignition-0", "north"),
            pod("ignition-1", "south"),
            pod("ignition-2", "ignition-2"),
            pod("ignition-3", "ignition-3"),
            pod("ignition-4", "ignition-4"),
            pod("ignition-5", "ignition-5"),
        ];
        // Ours for ignition-3 wins; one of another resource for ignition-0 does not count.
        let own = [
            GatewayStatusReport::new(
                "site",
                "ignition-3",
                "ignition-3",
                "v",
                Timestamp::UNIX_EPOCH,
            ),
            GatewayStatusReport::new("other", "north", "ignition-0", "v", Timestamp::UNIX_EPOCH),
        ];
        let reports = legacy_reports("site", &cm, &pods, &own);
        let found: Vec<(&str, &str)> = reports
            .iter()
            .map(|r| (r.pod.as_str(), r.gateway.as_str()))
            .collect();
        assert_eq!(found, [("ignition-0", "north"), ("ignition-1", "south")]);
        assert!(reports.iter().all(|r| r.cr_name == "site"
            && r.status == SyncStatus::Synced
            && r.commit.as_deref() == Some("aaa")));
        // The pod name is looked up first.
        let both = configmap(
            "stoker-status-site",
            &[],
            &[
                (
                    "north",
                    r#"{"syncStatus":"Error","lastSyncTime":"2026-03-01T12:00:00Z"}"#,
                ),
                ("ignition-0", synced),
            ],
        );
        let reports = legacy_reports("site", &both, &pods[..1], &[]);
        assert_eq!(reports[0].status, SyncStatus::Synced);
    }

    #[test]
    fn only_unlabelled_stoker_status_configmaps_are_v051s() {
        let legacy = configmap(
            "stoker-status-site-a",
            &[("app.kubernetes.io/managed-by", "stoker-agent")],
            &[],
        );
        assert_eq!(legacy_status_owner(&legacy).as_deref(), Some("site-a"));
        // Ours for resource `site`, pod `a`: the same name, but labelled.
        let ours = configmap(
            "stoker-status-site-a",
            &[("app.kubernetes.io/component", "gateway-status")],
            &[],
        );
        assert_eq!(legacy_status_owner(&ours), None);
        for other in ["stoker-status-", "stoker-metadata-site", "site"] {
            assert_eq!(
                legacy_status_owner(&configmap(other, &[], &[])),
                None,
                "{other}"
            );
        }
    }
}
