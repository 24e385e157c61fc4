//! The operator's Prometheus metrics, with `prometheus-client`.
//!
//! Names and labels are stoker-operator v0.5.1's (`stoker_controller_*` with `name` and
//! `namespace`, `stoker_webhook_*`), so that dashboards and alerts written for it keep working;
//! the few metrics it did not have are ours and carry the same prefixes. docs/metrics.md is the
//! user's reference.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `stoker_controller_reconcile_total` | counter | `name`, `namespace`, `result` (`success`, `error`, `requeue`) |
//! | `stoker_controller_reconcile_duration_seconds` | histogram | `name`, `namespace` |
//! | `stoker_controller_ref_resolve_duration_seconds` | histogram | `name`, `namespace` |
//! | `stoker_controller_ref_resolve_total` (ours) | counter | `name`, `namespace`, `result` (`success`, `error`) |
//! | `stoker_controller_gateways_discovered` | gauge | `name`, `namespace` |
//! | `stoker_controller_gateways_synced` | gauge | `name`, `namespace` |
//! | `stoker_controller_gateways_missing_sidecar` | gauge | `name`, `namespace` |
//! | `stoker_controller_cr_ready` | gauge (1 Ready) | `name`, `namespace` |
//! | `stoker_controller_cr_paused` | gauge (1 paused) | `name`, `namespace` |
//! | `stoker_controller_cr_info` | gauge (always 1) | `name`, `namespace`, `git_repo`, `git_ref`, `auth_type`, `polling_interval` |
//! | `stoker_controller_condition_status` | gauge (1 True) | `name`, `namespace`, `type` |
//! | `stoker_controller_gateway_sync_status` | gauge (0 Pending, 1 Synced, 2 Error, 3 MissingSidecar) | `name`, `namespace`, `gateway` |
//! | `stoker_controller_gateway_last_sync_timestamp_seconds` | gauge | `name`, `namespace`, `gateway` |
//! | `stoker_controller_last_sync_timestamp_seconds` (ours) | gauge (when the resolved commit last changed) | `name`, `namespace` |
//! | `stoker_controller_github_app_token_expiry_timestamp_seconds` | gauge | `app_id`, `installation_id`, and ours: `name`, `namespace` |
//! | `stoker_controller_notifications_total` (ours) | counter | `name`, `namespace`, `type` (`slack`, `msteams`, `pagerduty`, `generic`), `result` (`delivered`, `failed`, `dropped`, `deduplicated`) |
//! | `stoker_webhook_injector_injections_total` | counter | `namespace`, `result` (`injected`, `skipped`, and ours: `denied`, `error`) |
//! | `stoker_webhook_receiver_requests_total` | counter | `source`, `status_code` |
//! | `stoker_webhook_validations_total` (ours) | counter | `namespace`, `result` (`allowed`, `denied`, `error`) |
//! | `stoker_webhook_admission_duration_seconds` (ours) | histogram | `webhook` (`mutate-v1-pod`, `validate-gatewaysync`) |

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::crd::{GatewaySync, GatewaySyncStatus, SyncStatus};
use crate::error::Error;

/// How one reconciliation ended, as the `result` label of
/// `stoker_controller_reconcile_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReconcileResult {
    /// Done; the next one is a scheduled resync.
    Success,
    /// Failed on the Kubernetes API or inside the operator; retried with backoff.
    Error,
    /// The ref or its credentials could not be resolved (Git, a Secret, the GitHub App): the
    /// status says so and the resource is retried with backoff, as v0.5.1 counted it.
    Requeue,
}

impl ReconcileResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileResult::Success => "success",
            ReconcileResult::Error => "error",
            ReconcileResult::Requeue => "requeue",
        }
    }

    /// The result of a reconciliation's outcome.
    pub fn of(outcome: &crate::error::Result<Action>) -> Self {
        use kube::runtime::finalizer::Error as Finalizer;
        let Err(error) = outcome else {
            return ReconcileResult::Success;
        };
        let inner = match error {
            Error::Finalizer(boxed) => match boxed.as_ref() {
                Finalizer::ApplyFailed(inner) | Finalizer::CleanupFailed(inner) => inner,
                _ => return ReconcileResult::Error,
            },
            other => other,
        };
        match inner {
            Error::Source(_)
            | Error::MissingSecret { .. }
            | Error::GithubAppExchange { .. }
            | Error::GithubAppTokenUnavailable { .. } => ReconcileResult::Requeue,
            _ => ReconcileResult::Error,
        }
    }
}

/// Which GatewaySync a series describes.
#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ResourceLabels {
    /// The GatewaySync's name.
    pub name: String,
    /// The GatewaySync's namespace.
    pub namespace: String,
}

impl ResourceLabels {
    fn new(namespace: &str, name: &str) -> Self {
        ResourceLabels {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceResultLabels {
    name: String,
    namespace: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ConditionLabels {
    name: String,
    namespace: String,
    r#type: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct GatewayLabels {
    name: String,
    namespace: String,
    gateway: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct InfoLabels {
    name: String,
    namespace: String,
    git_repo: String,
    git_ref: String,
    auth_type: &'static str,
    polling_interval: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    app_id: String,
    installation_id: String,
    name: String,
    namespace: String,
}

/// One admission answer: the object's namespace and what was answered.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// The admitted object's namespace.
    pub namespace: String,
    /// `injected`, `skipped`, `denied` or `error` (pods); `allowed`, `denied` or `error`
    /// (GatewaySyncs).
    pub result: &'static str,
}

/// Which webhook answered.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabel {
    /// `mutate-v1-pod` or `validate-gatewaysync`.
    pub webhook: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    name: String,
    namespace: String,
    r#type: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReceiverLabels {
    source: String,
    status_code: String,
}

/// The series a GatewaySync has whose label values come and go (gateways, condition types,
/// its info labels, its token), so that the ones gone can be removed.
#[derive(Debug, Default)]
struct Seen {
    gateways: BTreeSet<GatewayLabels>,
    conditions: BTreeSet<ConditionLabels>,
    info: Option<InfoLabels>,
    token: Option<TokenLabels>,
}

fn seconds_histogram() -> Histogram {
    // 1 ms … ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn as_gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The `gateway_sync_status` value of a gateway, as v0.5.1 numbered them.
pub fn sync_status_value(status: SyncStatus) -> i64 {
    match status {
        SyncStatus::Pending => 0,
        SyncStatus::Synced => 1,
        SyncStatus::Error => 2,
        SyncStatus::MissingSidecar => 3,
    }
}

/// The `auth_type` label of `cr_info`: `none`, `ssh`, `token` or `githubApp`.
pub fn auth_type(gs: &GatewaySync) -> &'static str {
    match &gs.spec.git.auth {
        Some(auth) if auth.ssh_key.is_some() => "ssh",
        Some(auth) if auth.token.is_some() => "token",
        Some(auth) if auth.github_app.is_some() => "githubApp",
        _ => "none",
    }
}

/// The `type` label values of `stoker_controller_notifications_total`.
const NOTIFICATION_TYPES: [&str; 4] = ["slack", "msteams", "pagerduty", "generic"];
/// Its `result` label values.
const NOTIFICATION_RESULTS: [&str; 4] = ["delivered", "failed", "dropped", "deduplicated"];

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// All operator metrics, registered in one registry.
///
/// ```
/// use stoker_k8s::metrics::{OperatorMetrics, ReconcileResult};
/// let metrics = OperatorMetrics::new();
/// metrics.reconciled("plant", "site", std::time::Duration::from_millis(12), ReconcileResult::Success);
/// assert!(metrics.encode().unwrap().contains(
///     "stoker_controller_reconcile_total{name=\"site\",namespace=\"plant\",result=\"success\"} 1"
/// ));
/// ```
#[derive(Clone)]
pub struct OperatorMetrics {
    registry: Arc<Registry>,
    reconcile_total: Family<ResourceResultLabels, Counter>,
    reconcile_duration: Histograms<ResourceLabels>,
    ref_resolve_duration: Histograms<ResourceLabels>,
    ref_resolve_total: Family<ResourceResultLabels, Counter>,
    gateways_discovered: Family<ResourceLabels, Gauge>,
    gateways_synced: Family<ResourceLabels, Gauge>,
    gateways_missing_sidecar: Family<ResourceLabels, Gauge>,
    cr_ready: Family<ResourceLabels, Gauge>,
    cr_paused: Family<ResourceLabels, Gauge>,
    cr_info: Family<InfoLabels, Gauge>,
    condition_status: Family<ConditionLabels, Gauge>,
    gateway_sync_status: Family<GatewayLabels, Gauge>,
    gateway_last_sync: Family<GatewayLabels, Gauge>,
    last_sync_timestamp: Family<ResourceLabels, Gauge>,
    github_app_token_expiry: Family<TokenLabels, Gauge>,
    notifications: Family<NotificationLabels, Counter>,
    injections: Family<AdmissionLabels, Counter>,
    receiver_requests: Family<ReceiverLabels, Counter>,
    validations: Family<AdmissionLabels, Counter>,
    admission_duration: Histograms<WebhookLabel>,
    seen: Arc<Mutex<HashMap<ResourceLabels, Seen>>>,
}

impl std::fmt::Debug for OperatorMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorMetrics").finish_non_exhaustive()
    }
}

impl Default for OperatorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl OperatorMetrics {
    /// A fresh registry with every metric at zero.
    #[allow(clippy::too_many_lines)] // one registration per metric, nothing else
    pub fn new() -> Self {
        let mut root = Registry::default();
        let controller = root.sub_registry_with_prefix("stoker_controller");
        let reconcile_total = Family::default();
        controller.register(
            "reconcile",
            "GatewaySync reconciliations, by result",
            reconcile_total.clone(),
        );
        let reconcile_duration = Family::new_with_constructor(seconds_histogram as fn() -> _);
        controller.register(
            "reconcile_duration_seconds",
            "Time one GatewaySync reconciliation took",
            reconcile_duration.clone(),
        );
        let ref_resolve_duration = Family::new_with_constructor(seconds_histogram as fn() -> _);
        controller.register(
            "ref_resolve_duration_seconds",
            "Time resolving the Git ref to a commit took (no clone)",
            ref_resolve_duration.clone(),
        );
        let ref_resolve_total = Family::default();
        controller.register(
            "ref_resolve",
            "Git ref resolutions, by result",
            ref_resolve_total.clone(),
        );
        let gauges: [(&str, &str); 5] = [
            (
                "gateways_discovered",
                "Running gateway pods annotated for the GatewaySync",
            ),
            (
                "gateways_synced",
                "Gateways whose agent reports Synced at the resolved commit",
            ),
            (
                "gateways_missing_sidecar",
                "Gateway pods that asked for the agent but run without it",
            ),
            (
                "cr_ready",
                "1 when the GatewaySync's Ready condition is True",
            ),
            ("cr_paused", "1 when the GatewaySync is paused"),
        ];
        let [
            gateways_discovered,
            gateways_synced,
            gateways_missing_sidecar,
            cr_ready,
            cr_paused,
        ] = gauges.map(|(name, help)| {
            let family = Family::<ResourceLabels, Gauge>::default();
            controller.register(name, help, family.clone());
            family
        });
        let cr_info = Family::default();
        controller.register(
            "cr_info",
            "Always 1; its labels describe the GatewaySync, for joins in PromQL",
            cr_info.clone(),
        );
        let condition_status = Family::default();
        controller.register(
            "condition_status",
            "Each condition of the GatewaySync: 1 True, 0 otherwise",
            condition_status.clone(),
        );
        let gateway_sync_status = Family::default();
        controller.register(
            "gateway_sync_status",
            "Each gateway's sync status: 0 Pending, 1 Synced, 2 Error, 3 MissingSidecar",
            gateway_sync_status.clone(),
        );
        let gateway_last_sync = Family::default();
        controller.register(
            "gateway_last_sync_timestamp_seconds",
            "Unix time of each gateway's last sync, as its agent reported it",
            gateway_last_sync.clone(),
        );
        let last_sync_timestamp = Family::default();
        controller.register(
            "last_sync_timestamp_seconds",
            "Unix time at which the GatewaySync's resolved commit last changed",
            last_sync_timestamp.clone(),
        );
        let github_app_token_expiry = Family::default();
        controller.register(
            "github_app_token_expiry_timestamp_seconds",
            "Unix time at which the GitHub App installation token kept for the agents expires",
            github_app_token_expiry.clone(),
        );
        let notifications = Family::default();
        controller.register(
            "notifications",
            "Notifications to spec.alerting webhooks, by webhook type and result",
            notifications.clone(),
        );
        let webhook = root.sub_registry_with_prefix("stoker_webhook");
        let injections = Family::default();
        webhook.register(
            "injector_injections",
            "Pod admissions by the agent injector, by namespace and result",
            injections.clone(),
        );
        let receiver_requests = Family::default();
        webhook.register(
            "receiver_requests",
            "Requests to the Git push receiver, by source and answered status code",
            receiver_requests.clone(),
        );
        let validations = Family::default();
        webhook.register(
            "validations",
            "GatewaySync admissions by the validating webhook, by namespace and result",
            validations.clone(),
        );
        let admission_duration = Family::new_with_constructor(seconds_histogram as fn() -> _);
        webhook.register(
            "admission_duration_seconds",
            "Time the operator took to answer one admission request, by webhook",
            admission_duration.clone(),
        );
        OperatorMetrics {
            registry: Arc::new(root),
            reconcile_total,
            reconcile_duration,
            ref_resolve_duration,
            ref_resolve_total,
            gateways_discovered,
            gateways_synced,
            gateways_missing_sidecar,
            cr_ready,
            cr_paused,
            cr_info,
            condition_status,
            gateway_sync_status,
            gateway_last_sync,
            last_sync_timestamp,
            github_app_token_expiry,
            notifications,
            injections,
            receiver_requests,
            validations,
            admission_duration,
            seen: Arc::default(),
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<ResourceLabels, Seen>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts one notification outcome of a GatewaySync's webhook: `type_` is the webhook's
    /// type (`slack`, `msteams`, `pagerduty`, `generic`), `result` `delivered`, `failed`,
    /// `dropped` or `deduplicated`.
    pub fn notification(&self, namespace: &str, name: &str, type_: &str, result: &str) {
        let (Some(r#type), Some(result)) = (
            NOTIFICATION_TYPES.into_iter().find(|t| *t == type_),
            NOTIFICATION_RESULTS.into_iter().find(|r| *r == result),
        ) else {
            return;
        };
        self.notifications
            .get_or_create(&NotificationLabels {
                name: name.to_owned(),
                namespace: namespace.to_owned(),
                r#type,
                result,
            })
            .inc();
    }

    /// Records one reconciliation of a GatewaySync.
    pub fn reconciled(&self, namespace: &str, name: &str, took: Duration, result: ReconcileResult) {
        self.reconcile_total
            .get_or_create(&ResourceResultLabels {
                name: name.to_owned(),
                namespace: namespace.to_owned(),
                result: result.as_str(),
            })
            .inc();
        self.reconcile_duration
            .get_or_create(&ResourceLabels::new(namespace, name))
            .observe(took.as_secs_f64());
    }

    /// Records one ref resolution of a GatewaySync.
    pub fn ref_resolved(&self, namespace: &str, name: &str, took: Duration, ok: bool) {
        self.ref_resolve_duration
            .get_or_create(&ResourceLabels::new(namespace, name))
            .observe(took.as_secs_f64());
        self.ref_resolve_total
            .get_or_create(&ResourceResultLabels {
                name: name.to_owned(),
                namespace: namespace.to_owned(),
                result: if ok { "success" } else { "error" },
            })
            .inc();
    }

    /// Sets every gauge of a GatewaySync from its spec and the status just computed: gateway
    /// counts, each gateway's status and last sync, each condition, Ready, paused and the
    /// info labels. Series of gateways and conditions no longer there are removed.
    pub fn observe(&self, gs: &GatewaySync, status: &GatewaySyncStatus) {
        let namespace = gs.namespace().unwrap_or_default();
        let resource = ResourceLabels::new(&namespace, &gs.name_any());
        let gateways = &status.discovered_gateways;
        let count =
            |wanted: SyncStatus| gateways.iter().filter(|g| g.sync_status == wanted).count();
        self.gateways_discovered
            .get_or_create(&resource)
            .set(as_gauge(gateways.len()));
        self.gateways_synced
            .get_or_create(&resource)
            .set(as_gauge(count(SyncStatus::Synced)));
        self.gateways_missing_sidecar
            .get_or_create(&resource)
            .set(as_gauge(count(SyncStatus::MissingSidecar)));
        self.cr_paused
            .get_or_create(&resource)
            .set(i64::from(gs.spec.paused));
        if let Some(at) = &status.last_sync_time {
            self.last_sync_timestamp
                .get_or_create(&resource)
                .set(at.0.as_second());
        }

        let mut now_gateways = BTreeSet::new();
        for gateway in gateways {
            let labels = GatewayLabels {
                name: resource.name.clone(),
                namespace: resource.namespace.clone(),
                gateway: gateway.name.clone(),
            };
            self.gateway_sync_status
                .get_or_create(&labels)
                .set(sync_status_value(gateway.sync_status));
            if let Some(at) = &gateway.last_sync_time {
                self.gateway_last_sync
                    .get_or_create(&labels)
                    .set(at.0.as_second());
            }
            now_gateways.insert(labels);
        }

        let mut now_conditions = BTreeSet::new();
        let mut ready = false;
        for condition in &status.conditions {
            let labels = ConditionLabels {
                name: resource.name.clone(),
                namespace: resource.namespace.clone(),
                r#type: condition.type_.clone(),
            };
            let is_true = condition.status == "True";
            ready |= is_true && condition.type_ == crate::conditions::READY;
            self.condition_status
                .get_or_create(&labels)
                .set(i64::from(is_true));
            now_conditions.insert(labels);
        }
        self.cr_ready.get_or_create(&resource).set(i64::from(ready));

        let info = InfoLabels {
            name: resource.name.clone(),
            namespace: resource.namespace.clone(),
            git_repo: gs.spec.git.repo.clone(),
            git_ref: gs.spec.git.reference.clone(),
            auth_type: auth_type(gs),
            polling_interval: gs.spec.polling.interval.clone(),
        };
        self.cr_info.get_or_create(&info).set(1);

        let mut seen = self.seen();
        let entry = seen.entry(resource).or_default();
        for gone in entry.gateways.difference(&now_gateways) {
            self.gateway_sync_status.remove(gone);
            self.gateway_last_sync.remove(gone);
        }
        for gone in entry.conditions.difference(&now_conditions) {
            self.condition_status.remove(gone);
        }
        if let Some(old) = entry.info.replace(info.clone())
            && old != info
        {
            self.cr_info.remove(&old);
        }
        entry.gateways = now_gateways;
        entry.conditions = now_conditions;
    }

    /// Records one pod admission.
    pub fn injection(&self, namespace: &str, result: &'static str, took: Duration) {
        let labels = AdmissionLabels {
            namespace: namespace.to_owned(),
            result,
        };
        self.injections.get_or_create(&labels).inc();
        self.admission_duration
            .get_or_create(&WebhookLabel {
                webhook: "mutate-v1-pod",
            })
            .observe(took.as_secs_f64());
    }

    /// Records one GatewaySync admission.
    pub fn validation(&self, namespace: &str, result: &'static str, took: Duration) {
        let labels = AdmissionLabels {
            namespace: namespace.to_owned(),
            result,
        };
        self.validations.get_or_create(&labels).inc();
        self.admission_duration
            .get_or_create(&WebhookLabel {
                webhook: "validate-gatewaysync",
            })
            .observe(took.as_secs_f64());
    }

    /// Records one request to the Git push receiver: where it came from (`github`, `gitlab`,
    /// `kargo`, `unknown`, …) and the status code answered.
    pub fn receiver_request(&self, source: &str, status_code: u16) {
        self.receiver_requests
            .get_or_create(&ReceiverLabels {
                source: source.to_owned(),
                status_code: status_code.to_string(),
            })
            .inc();
    }

    /// Sets when the GitHub App token kept for a GatewaySync's agents expires (Unix seconds).
    pub fn set_github_app_token_expiry(
        &self,
        namespace: &str,
        name: &str,
        app: &crate::crd::GithubAppSpec,
        expires_at_unix: i64,
    ) {
        let labels = TokenLabels {
            app_id: app.app_id.to_string(),
            installation_id: app.installation_id.to_string(),
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        };
        self.github_app_token_expiry
            .get_or_create(&labels)
            .set(expires_at_unix);
        let mut seen = self.seen();
        let entry = seen
            .entry(ResourceLabels::new(namespace, name))
            .or_default();
        if let Some(old) = entry.token.replace(labels.clone())
            && old != labels
        {
            self.github_app_token_expiry.remove(&old);
        }
    }

    /// Drops the token expiry of a GatewaySync that no longer uses a GitHub App.
    pub fn forget_github_app_token(&self, namespace: &str, name: &str) {
        let mut seen = self.seen();
        if let Some(old) = seen
            .get_mut(&ResourceLabels::new(namespace, name))
            .and_then(|entry| entry.token.take())
        {
            self.github_app_token_expiry.remove(&old);
        }
    }

    /// Drops every series of a deleted GatewaySync.
    pub fn forget(&self, namespace: &str, name: &str) {
        self.forget_github_app_token(namespace, name);
        let resource = ResourceLabels::new(namespace, name);
        for family in [
            &self.gateways_discovered,
            &self.gateways_synced,
            &self.gateways_missing_sidecar,
            &self.cr_ready,
            &self.cr_paused,
            &self.last_sync_timestamp,
        ] {
            family.remove(&resource);
        }
        self.reconcile_duration.remove(&resource);
        self.ref_resolve_duration.remove(&resource);
        for result in ["success", "error", "requeue"] {
            let labels = ResourceResultLabels {
                name: name.to_owned(),
                namespace: namespace.to_owned(),
                result,
            };
            self.reconcile_total.remove(&labels);
            self.ref_resolve_total.remove(&labels);
        }
        for r#type in NOTIFICATION_TYPES {
            for result in NOTIFICATION_RESULTS {
                self.notifications.remove(&NotificationLabels {
                    name: name.to_owned(),
                    namespace: namespace.to_owned(),
                    r#type,
                    result,
                });
            }
        }
        if let Some(seen) = self.seen().remove(&resource) {
            for gateway in &seen.gateways {
                self.gateway_sync_status.remove(gateway);
                self.gateway_last_sync.remove(gateway);
            }
            for condition in &seen.conditions {
                self.condition_status.remove(condition);
            }
            if let Some(info) = &seen.info {
                self.cr_info.remove(info);
            }
        }
    }

    /// The registry, for serving.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
