//! The `GatewaySync` custom resource (`stoker.io/v1alpha1`): spec, status, and the
//! CustomResourceDefinition generated from them.
//!
//! `spec.git` and `spec.sync` are stoker-core's own types ([`GitSpec`], [`SyncSpec`]), the
//! ones `stoker-agent sync --config` parses, so the cluster and the command line read the same
//! document the same way. This module adds `polling`, `gateway`, `agent` and the status.
//!
//! ```
//! use stoker_k8s::crd::GatewaySync;
//! let gs: GatewaySync = serde_yaml::from_str(r#"
//! apiVersion: stoker.io/v1alpha1
//! kind: GatewaySync
//! metadata: {name: site, namespace: plant}
//! spec:
//!   git: {repo: "https://git.example/scada.git", ref: main}
//!   gateway: {api: {secretName: gw-api-key}}
//!   sync:
//!     profiles:
//!       standard:
//!         mappings: [{source: "services/{{.GatewayName}}/projects", destination: projects}]
//! "#).unwrap();
//! assert_eq!(gs.spec.polling.interval, "60s");
//! assert_eq!(gs.spec.gateway.port, 8088);
//! assert_eq!(gs.spec.gateway.api.unwrap().secret_key, "apiKey");
//! ```

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
pub use stoker_core::spec::{
    GitAuthSpec, GitSpec, GithubAppSpec, NumberOrString, SecretKeyRef, SecretRefHolder, SshKeySpec,
};
pub use stoker_core::{
    DesignerSessionPolicy, Mapping, MappingType, Patch, ProfileSpec, SyncDefaults, SyncSpec,
};

use crate::error::{Error, Result};

/// The API group.
pub const GROUP: &str = "stoker.io";
/// The API version.
pub const VERSION: &str = "v1alpha1";
/// The kind.
pub const KIND: &str = "GatewaySync";
/// The CRD's name (`<plural>.<group>`).
pub const CRD_NAME: &str = "gatewaysyncs.stoker.io";
/// Default `spec.polling.interval`.
pub const DEFAULT_POLLING_INTERVAL: &str = "60s";
/// Default `spec.gateway.port`.
pub const DEFAULT_GATEWAY_PORT: u16 = 8088;
/// Default `spec.webhook.secretRef.key`.
pub const DEFAULT_WEBHOOK_SECRET_KEY: &str = "webhook-secret";
/// Default `spec.gateway.api.secretKey`.
pub const DEFAULT_API_SECRET_KEY: &str = "apiKey";

/// `spec` of a `GatewaySync`: which Git ref every discovered Ignition gateway converges to,
/// and how.
// Clippy reads the repeated `printcolumn(type_ = ...)` items of kube's attribute as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "stoker.io",
    version = "v1alpha1",
    kind = "GatewaySync",
    plural = "gatewaysyncs",
    shortname = "gs",
    category = "stoker",
    namespaced,
    status = "GatewaySyncStatus",
    derive = "PartialEq",
    doc = "GatewaySync syncs the configuration of Ignition gateways from a Git ref. The operator \
           resolves spec.git.ref to a commit; the stoker-agent sidecar in each gateway pod \
           (pods annotated stoker.io/cr-name: <this name>) fetches that commit and applies its \
           profile's mappings to the gateway's data directory.",
    printcolumn(
        name = "Ref",
        type_ = "string",
        json_path = ".status.lastSyncRef",
        description = "The Git ref the resolved commit came from"
    ),
    printcolumn(
        name = "Gateways",
        type_ = "string",
        json_path = ".status.gatewaySummary",
        description = "Discovered gateways synced to the resolved commit"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "The Ready condition's status"
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].message",
        description = "The Ready condition's message"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Commit",
        type_ = "string",
        json_path = ".status.lastSyncCommitShort",
        priority = 1,
        description = "The resolved commit (short SHA)"
    ),
    printcolumn(
        name = "Profiles",
        type_ = "integer",
        json_path = ".status.profileCount",
        priority = 1,
        description = "Profiles in spec.sync.profiles"
    ),
    printcolumn(
        name = "Last Sync",
        type_ = "date",
        json_path = ".status.lastSyncTime",
        priority = 1,
        description = "When the resolved commit last changed"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySyncSpec {
    /// The Git repository, the ref to sync, and how to authenticate.
    pub git: GitSpec,
    /// How often the operator re-resolves the ref (webhooks from the Git host make it
    /// immediate; polling is the fallback).
    #[serde(default)]
    pub polling: PollingSpec,
    /// How the agent reaches the Ignition gateway's REST API in its pod (to rescan projects
    /// and config after a sync, and to check for open Designer sessions).
    #[serde(default)]
    pub gateway: GatewaySpec,
    /// Sync profiles (ordered source → destination mappings, excludes, variables, patches) and
    /// the defaults they inherit.
    pub sync: SyncSpec,
    /// Notifications to people (Slack, Microsoft Teams, PagerDuty, any webhook) about the
    /// fleet: one message when every gateway synced a new commit, failures naming the
    /// gateways, ref updates and skew. Absent: no notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerting: Option<crate::alerting::AlertingSpec>,
    /// The injected agent sidecar: image and resources. Usually omitted: the Helm chart's
    /// default agent image is used.
    #[serde(default, skip_serializing_if = "AgentSpec::is_empty")]
    pub agent: AgentSpec,
    /// Stop all syncing: the operator keeps resolving and reporting, agents write nothing.
    #[serde(default)]
    pub paused: bool,
    /// The webhook receiver's secret for this resource, accepted besides the operator's own
    /// (`webhookReceiver.hmac` / `token` in the chart): lets one team sign its Git host's
    /// pushes without sharing a cluster-wide secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookSpec>,
}

/// `spec.webhook`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSpec {
    /// The Secret (same namespace) and key holding this resource's webhook secret. Requests to
    /// `/webhook/{namespace}/{name}` and pushes to `/webhook/push` for this resource pass when
    /// signed with it (HMAC-SHA256, `X-Hub-Signature-256` and the hosts' variants) or when
    /// they present it as a token (`Authorization: Bearer`, `X-Gitlab-Token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<WebhookSecretRef>,
}

/// `spec.webhook.secretRef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSecretRef {
    /// The Secret's name, in the resource's namespace.
    #[schemars(length(min = 1))]
    pub name: String,
    /// The key in the Secret's data (default `webhook-secret`).
    #[serde(default = "default_webhook_secret_key")]
    #[schemars(length(min = 1))]
    pub key: String,
}

/// `spec.polling`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollingSpec {
    /// Re-resolve the ref periodically (default true). Turn off when a webhook from the Git
    /// host or a promotion tool triggers syncs.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How often to re-resolve the ref: a Go duration such as `30s`, `5m` or `1h30m`
    /// (default `60s`; empty means the default). Any string is accepted, as stoker-operator
    /// v0.5.1 did: one that is not a positive duration polls every 60s and is reported in
    /// the `PollingIntervalValid` condition.
    #[serde(default = "default_polling_interval")]
    pub interval: String,
}

impl GatewaySync {
    /// The owner reference that makes this GatewaySync the controller of an object, which is
    /// then garbage-collected with it.
    ///
    /// # Errors
    ///
    /// [`Error::MissingUid`] when it was not read from the API server.
    pub(crate) fn controller_ref(&self) -> Result<OwnerReference> {
        self.controller_owner_ref(&())
            .ok_or_else(|| Error::MissingUid {
                kind: "GatewaySync",
                name: self.name_any(),
            })
    }
}

impl Default for PollingSpec {
    fn default() -> Self {
        PollingSpec {
            enabled: true,
            interval: DEFAULT_POLLING_INTERVAL.to_owned(),
        }
    }
}

impl PollingSpec {
    /// The polling period, or `None` when polling is disabled. An empty interval is the
    /// default (60s); one that is not a positive Go duration is an error, which the caller
    /// reports while polling at the default.
    ///
    /// ```
    /// use stoker_k8s::crd::PollingSpec;
    /// let polling = PollingSpec { enabled: true, interval: "1m30s".into() };
    /// assert_eq!(polling.period().unwrap(), Some(std::time::Duration::from_secs(90)));
    /// let empty = PollingSpec { enabled: true, interval: String::new() };
    /// assert_eq!(empty.period().unwrap(), Some(std::time::Duration::from_secs(60)));
    /// let zero = PollingSpec { enabled: true, interval: "0s".into() };
    /// assert!(zero.period().is_err());
    /// ```
    pub fn period(&self) -> Result<Option<std::time::Duration>> {
        if !self.enabled {
            return Ok(None);
        }
        let interval = if self.interval.is_empty() {
            DEFAULT_POLLING_INTERVAL
        } else {
            self.interval.as_str()
        };
        let period = parse_go_duration(interval)?;
        if period.is_zero() {
            return Err(Error::InvalidDuration {
                value: self.interval.clone(),
                message: "polling needs a positive interval",
            });
        }
        Ok(Some(period))
    }
}

/// `spec.gateway`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// The gateway's HTTP(S) port inside its pod (default 8088).
    #[serde(default = "default_gateway_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: u16,
    /// Use HTTPS to reach the gateway (default false).
    #[serde(default)]
    pub tls: bool,
    /// The Secret holding the Ignition API key the agent sends. Without it the agent calls the
    /// gateway API unauthenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<GatewayApiSpec>,
}

impl Default for GatewaySpec {
    fn default() -> Self {
        GatewaySpec {
            port: DEFAULT_GATEWAY_PORT,
            tls: false,
            api: None,
        }
    }
}

/// `spec.gateway.api`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayApiSpec {
    /// The name of the Secret (same namespace) holding the Ignition API key.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// The key in the Secret's data (default `apiKey`).
    #[serde(default = "default_api_secret_key")]
    #[schemars(length(min = 1))]
    pub secret_key: String,
}

/// `spec.agent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentSpec {
    /// The agent container image; fields left out come from the operator's default (the Helm
    /// chart's `agentImage` values). A pod's `stoker.io/agent-image` annotation wins over both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<AgentImageSpec>,
    /// CPU and memory requests and limits of the agent container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

impl AgentSpec {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.image.is_none() && self.resources.is_none()
    }
}

/// `spec.agent.image`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentImageSpec {
    /// Image repository (`ghcr.io/example/stoker-agent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Image tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Image pull policy: `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
}

/// A container image pull policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(description = "")]
pub enum PullPolicy {
    /// Pull on every start.
    Always,
    /// Pull when the node does not have the image.
    IfNotPresent,
    /// Never pull.
    Never,
}

impl PullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// `status` of a `GatewaySync`, written by the operator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySyncStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The ref last resolved (the spec's, or a webhook's `stoker.io/requested-ref`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_ref: Option<String>,
    /// The commit the ref last resolved to (full SHA); agents converge to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_commit: Option<String>,
    /// The first 7 characters of `lastSyncCommit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_commit_short: Option<String>,
    /// When the resolved commit last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// The state of ref resolution: `NotResolved`, `Resolving`, `Resolved` or `Error` (the
    /// `RefResolved` condition says why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_resolution_status: Option<RefResolutionStatus>,
    /// The number of profiles in `spec.sync.profiles`.
    #[serde(default)]
    pub profile_count: i32,
    /// Discovered gateways synced to the resolved commit, as `kubectl get` shows it
    /// (`2/3 synced`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_summary: Option<String>,
    /// The gateway pods annotated `stoker.io/cr-name: <this name>` that are running, with what
    /// their agents last reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub discovered_gateways: Vec<DiscoveredGateway>,
    /// The resource's conditions: `RefResolved`, `ProfilesValid`, `AllGatewaysSynced`,
    /// `SidecarInjected`, `SSHHostKeyVerification`, `RefSkew`, `Ready`, ...
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// `status.refResolutionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(description = "")]
pub enum RefResolutionStatus {
    /// Not attempted yet.
    NotResolved,
    /// In progress.
    Resolving,
    /// Resolved to `lastSyncCommit`.
    Resolved,
    /// Failed; the `RefResolved` condition says why.
    Error,
}

/// One entry of `status.discoveredGateways`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveredGateway {
    /// The gateway's identity: the pod's `stoker.io/gateway-name` annotation, else its
    /// `app.kubernetes.io/name` label, else the pod name.
    pub name: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod_name: String,
    /// The pod's service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// The profile the pod asks for (`stoker.io/profile`); empty means the default choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The gateway's sync state: `Pending` (not synced to the resolved commit yet, or no report
    /// yet), `Synced`, `Error`, or `MissingSidecar` (the pod asks for injection but has no
    /// agent).
    #[serde(default)]
    pub sync_status: SyncStatus,
    /// When the agent last finished a sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// How long the last sync took (`1.23s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_duration: Option<String>,
    /// The commit the gateway is synced to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_commit: Option<String>,
    /// The ref the gateway is synced to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_ref: Option<String>,
    /// The agent's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// The outcome of the last gateway rescan request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scan_result: Option<String>,
    /// Whether the gateway's last rescan after a sync `Succeeded` or `Failed` (ours; absent
    /// when the agent does not say, as stoker-operator v0.5.1's agents do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scan_status: Option<ScanStatus>,
    /// Files added, modified or deleted by the last sync.
    #[serde(default)]
    pub files_changed: i64,
    /// Ignition projects present after the last sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projects_synced: Vec<String>,
    /// A human-readable detail: the last error, or why the gateway is pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A gateway's sync state, as its agent reports it (`Pending`, `Synced`, `Error`) or as the
/// operator sees it (`MissingSidecar`: the pod has no agent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(description = "")]
pub enum SyncStatus {
    /// Not synced to the resolved commit yet (or not reported yet).
    #[default]
    Pending,
    /// Files applied and the gateway rescanned.
    Synced,
    /// The last sync failed.
    Error,
    /// The pod asks for injection but has no agent sidecar.
    MissingSidecar,
}

impl SyncStatus {
    /// The spelling used in status and ConfigMaps.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncStatus::Pending => "Pending",
            SyncStatus::Synced => "Synced",
            SyncStatus::Error => "Error",
            SyncStatus::MissingSidecar => "MissingSidecar",
        }
    }
}

impl std::str::FromStr for SyncStatus {
    type Err = String;

    fn from_str(value: &str) -> std::result::Result<Self, String> {
        match value {
            "Pending" => Ok(SyncStatus::Pending),
            "Synced" => Ok(SyncStatus::Synced),
            "Error" => Ok(SyncStatus::Error),
            "MissingSidecar" => Ok(SyncStatus::MissingSidecar),
            other => Err(format!(
                "unknown sync status {other:?} (expected Pending, Synced, Error or MissingSidecar)"
            )),
        }
    }
}

impl std::fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the gateway's last rescan went, as its agent reports it (`lastScanStatus`). An agent
/// that does not say (stoker-operator v0.5.1's, or an older Stoker agent) leaves it unknown,
/// which is never taken for a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(description = "")]
pub enum ScanStatus {
    /// The gateway accepted the rescan request.
    Succeeded,
    /// The rescan request failed (the files are in place, the gateway has not loaded them).
    Failed,
}

impl ScanStatus {
    /// The spelling used in status and ConfigMaps.
    pub fn as_str(self) -> &'static str {
        match self {
            ScanStatus::Succeeded => "Succeeded",
            ScanStatus::Failed => "Failed",
        }
    }

    /// The status spelled `value`; `None` for any other spelling (a newer agent's word this
    /// operator does not know is "unknown", not an unreadable report).
    ///
    /// ```
    /// use stoker_k8s::crd::ScanStatus;
    /// assert_eq!(ScanStatus::parse("Failed"), Some(ScanStatus::Failed));
    /// assert_eq!(ScanStatus::parse("failed"), None);
    /// ```
    pub fn parse(value: &str) -> Option<ScanStatus> {
        [ScanStatus::Succeeded, ScanStatus::Failed]
            .into_iter()
            .find(|status| status.as_str() == value)
    }
}

impl std::fmt::Display for ScanStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The CustomResourceDefinition of `GatewaySync`, as kube derives it.
///
/// ```
/// let crd = stoker_k8s::crd::crd();
/// assert_eq!(crd.metadata.name.as_deref(), Some("gatewaysyncs.stoker.io"));
/// ```
pub fn crd() -> CustomResourceDefinition {
    let mut crd = GatewaySync::crd();
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            declare_object_fields(schema);
        }
    }
    crd
}

/// Declares `apiVersion`, `kind` and `metadata` at the schema's root, as Kubernetes' own
/// generators do: `kubectl explain gatewaysync` then lists them, and tools that read the
/// schema (IDE plugins, kubeconform) find every top-level field of a document.
fn declare_object_fields(schema: &mut JSONSchemaProps) {
    let field = |type_: &str, description: &str| JSONSchemaProps {
        type_: Some(type_.to_owned()),
        description: Some(description.to_owned()),
        ..JSONSchemaProps::default()
    };
    let properties = schema.properties.get_or_insert_with(Default::default);
    properties.insert(
        "apiVersion".to_owned(),
        field(
            "string",
            "The API group and version of this object: stoker.io/v1alpha1.",
        ),
    );
    properties.insert(
        "kind".to_owned(),
        field("string", "The kind of this object: GatewaySync."),
    );
    // The API server allows nothing on `metadata` but its type: the fields are its own.
    properties.insert(
        "metadata".to_owned(),
        JSONSchemaProps {
            type_: Some("object".to_owned()),
            ..JSONSchemaProps::default()
        },
    );
}

/// The first line of the generated CRD file.
pub const CRD_FILE_HEADER: &str =
    "# Generated by `cargo run -p stoker-k8s --bin crdgen -- --write`. Do not edit.\n";

/// The path of the CRD in the Helm chart, relative to the workspace root.
pub const CRD_FILE: &str = "charts/stoker/crds/gatewaysyncs.stoker.io.yaml";

/// The CRD as the YAML file the Helm chart ships ([`CRD_FILE`]), header included.
pub fn crd_yaml() -> Result<String> {
    let yaml = serde_yaml::to_string(&crd()).map_err(Error::CrdYaml)?;
    Ok(format!("{CRD_FILE_HEADER}{yaml}"))
}

/// Parses a Go duration as Go's `time.ParseDuration` does (`300ms`, `30s`, `5m`, `1h30m`,
/// `1.5h`, `.5s`, `+2m`, a bare `0`), the syntax of `spec.polling.interval`. A negative
/// duration is an error: nothing Stoker waits for can be negative.
///
/// ```
/// use std::time::Duration;
/// use stoker_k8s::crd::parse_go_duration;
/// assert_eq!(parse_go_duration("1h30m").unwrap(), Duration::from_secs(5400));
/// assert_eq!(parse_go_duration("1.5s").unwrap(), Duration::from_millis(1500));
/// assert_eq!(parse_go_duration(".5s").unwrap(), Duration::from_millis(500));
/// assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
/// assert!(parse_go_duration("5 minutes").is_err());
/// assert!(parse_go_duration("-1m").is_err());
/// ```
pub fn parse_go_duration(value: &str) -> Result<std::time::Duration> {
    let fail = |message| Error::InvalidDuration {
        value: value.to_owned(),
        message,
    };
    let (negative, unsigned) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    // Go accepts a bare zero without a unit, and nothing else without one.
    if unsigned == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if unsigned.is_empty() {
        return Err(fail("empty"));
    }
    let mut rest = unsigned;
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let (nanos, after) = duration_term(rest).map_err(fail)?;
        total_nanos += nanos;
        rest = after;
    }
    if !total_nanos.is_finite() || total_nanos > u64::MAX as f64 {
        return Err(fail("too large"));
    }
    if negative && total_nanos > 0.0 {
        return Err(fail("negative"));
    }
    Ok(std::time::Duration::from_nanos(total_nanos.round() as u64))
}

/// One `<number><unit>` term at the start of `text`: its length in nanoseconds and the rest.
/// The number is digits with an optional fraction, either side of the dot may be empty
/// (`5.`, `.5`) but not both, as in Go.
fn duration_term(text: &str) -> std::result::Result<(f64, &str), &'static str> {
    let number_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or("a number without a unit (ns, us, ms, s, m, h)")?;
    let number = &text[..number_len];
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return Err("expected a number");
    }
    // Rust's float parser takes `5.` and `.5` as Go does.
    let value: f64 = number.parse().map_err(|_| "malformed number")?;
    let rest = &text[number_len..];
    let unit_len = rest
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(rest.len());
    let nanos_per_unit = match &rest[..unit_len] {
        "ns" => 1.0,
        "us" | "µs" | "μs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "" => return Err("a number without a unit (ns, us, ms, s, m, h)"),
        _ => return Err("unknown unit (expected ns, us, ms, s, m or h)"),
    };
    Ok((value * nanos_per_unit, &rest[unit_len..]))
}

fn default_true() -> bool {
    true
}

fn default_polling_interval() -> String {
    DEFAULT_POLLING_INTERVAL.to_owned()
}

fn default_gateway_port() -> u16 {
    DEFAULT_GATEWAY_PORT
}

fn default_webhook_secret_key() -> String {
    DEFAULT_WEBHOOK_SECRET_KEY.to_owned()
}

fn default_api_secret_key() -> String {
    DEFAULT_API_SECRET_KEY.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_parse_as_go_parses_them() {
        for (text, expected) in [
            ("0", Duration::ZERO),
            ("-0", Duration::ZERO),
            ("+0s", Duration::ZERO),
            ("+5s", Duration::from_secs(5)),
            ("5.s", Duration::from_secs(5)),
            (".5s", Duration::from_millis(500)),
            ("1h2m3.5s", Duration::from_millis(3_723_500)),
            ("1µs", Duration::from_micros(1)),
            ("1μs", Duration::from_micros(1)),
            ("2us300ns", Duration::from_nanos(2300)),
            ("90m", Duration::from_secs(5400)),
        ] {
            assert_eq!(parse_go_duration(text).unwrap(), expected, "{text}");
        }
        // Go refuses all of these but the negative one, which Stoker cannot wait for.
        for text in [
            "", "+", "5", ".s", "s", "1..5s", "1.2.3s", "1d", "5 m", " 5m", "5m ", "-1s", "5mm",
        ] {
            assert!(parse_go_duration(text).is_err(), "{text:?} parsed");
        }
    }
}
