//! The operator's Prometheus metrics (prefix `stoker_`), with `prometheus-client`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `stoker_reconcile_total` | counter | `result` (`ok`, `error`) |
//! | `stoker_reconcile_duration_seconds` | histogram | — |
//! | `stoker_ref_resolve_duration_seconds` | histogram | `result` |
//! | `stoker_gateways_discovered` | gauge | `namespace`, `name` (the GatewaySync) |
//! | `stoker_gateways_synced` | gauge | `namespace`, `name` |
//! | `stoker_last_sync_timestamp` | gauge (Unix seconds of `status.lastSyncTime`) | `namespace`, `name` |
//! | `stoker_webhook_injector_injections_total` | counter | `namespace`, `result` (`injected`, `skipped`, `denied`, `error`) |
//! | `stoker_webhook_validations_total` | counter | `namespace`, `result` (`allowed`, `denied`, `error`) |
//! | `stoker_webhook_admission_duration_seconds` | histogram | `webhook` (`mutate-v1-pod`, `validate-gatewaysync`) |
//! | `stoker_controller_github_app_token_expiry_timestamp_seconds` | gauge (Unix seconds at which the agents' GitHub App token expires) | `namespace`, `name` |

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `result="ok"` or `result="error"`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok` or `error`.
    pub result: &'static str,
}

/// Which GatewaySync a gauge describes.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// The GatewaySync's namespace.
    pub namespace: String,
    /// The GatewaySync's name.
    pub name: String,
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

fn resource_labels(namespace: &str, name: &str) -> ResourceLabels {
    ResourceLabels {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    }
}

fn seconds_histogram() -> Histogram {
    // 1 ms … ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// All operator metrics, registered in one registry.
///
/// ```
/// let metrics = stoker_k8s::metrics::OperatorMetrics::new();
/// metrics.reconciled(std::time::Duration::from_millis(12), true);
/// assert!(metrics.encode().unwrap().contains("stoker_reconcile_total"));
/// ```
#[derive(Clone)]
pub struct OperatorMetrics {
    registry: Arc<Registry>,
    reconcile_total: Family<ResultLabel, Counter>,
    reconcile_duration: Histogram,
    ref_resolve_duration: Family<ResultLabel, Histogram>,
    gateways_discovered: Family<ResourceLabels, Gauge>,
    gateways_synced: Family<ResourceLabels, Gauge>,
    last_sync_timestamp: Family<ResourceLabels, Gauge>,
    injections: Family<AdmissionLabels, Counter>,
    validations: Family<AdmissionLabels, Counter>,
    admission_duration: Family<WebhookLabel, Histogram>,
    github_app_token_expiry: Family<ResourceLabels, Gauge>,
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
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("stoker");
        let reconcile_total = Family::<ResultLabel, Counter>::default();
        registry.register(
            "reconcile",
            "GatewaySync reconciliations, by result",
            reconcile_total.clone(),
        );
        let reconcile_duration = seconds_histogram();
        registry.register(
            "reconcile_duration_seconds",
            "Time one GatewaySync reconciliation took",
            reconcile_duration.clone(),
        );
        let ref_resolve_duration =
            Family::<ResultLabel, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        registry.register(
            "ref_resolve_duration_seconds",
            "Time resolving a Git ref to a commit took (no clone), by result",
            ref_resolve_duration.clone(),
        );
        let gateways_discovered = Family::<ResourceLabels, Gauge>::default();
        registry.register(
            "gateways_discovered",
            "Running gateway pods annotated for a GatewaySync",
            gateways_discovered.clone(),
        );
        let gateways_synced = Family::<ResourceLabels, Gauge>::default();
        registry.register(
            "gateways_synced",
            "Gateways whose agent reports Synced at the resolved commit",
            gateways_synced.clone(),
        );
        let last_sync_timestamp = Family::<ResourceLabels, Gauge>::default();
        registry.register(
            "last_sync_timestamp",
            "Unix time at which a GatewaySync last resolved a new commit",
            last_sync_timestamp.clone(),
        );
        let injections = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "webhook_injector_injections",
            "Pod admissions by the agent injector, by namespace and result",
            injections.clone(),
        );
        let validations = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "webhook_validations",
            "GatewaySync admissions by the validating webhook, by namespace and result",
            validations.clone(),
        );
        let admission_duration =
            Family::<WebhookLabel, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        registry.register(
            "webhook_admission_duration_seconds",
            "Time the operator took to answer one admission request, by webhook",
            admission_duration.clone(),
        );
        let github_app_token_expiry = Family::<ResourceLabels, Gauge>::default();
        registry.register(
            "controller_github_app_token_expiry_timestamp_seconds",
            "Unix time at which the GitHub App installation token kept for a GatewaySync's agents expires",
            github_app_token_expiry.clone(),
        );
        OperatorMetrics {
            registry: Arc::new(registry),
            injections,
            validations,
            admission_duration,
            reconcile_total,
            reconcile_duration,
            ref_resolve_duration,
            gateways_discovered,
            gateways_synced,
            last_sync_timestamp,
            github_app_token_expiry,
        }
    }

    fn result(ok: bool) -> ResultLabel {
        ResultLabel {
            result: if ok { "ok" } else { "error" },
        }
    }

    /// Records one reconciliation.
    pub fn reconciled(&self, took: Duration, ok: bool) {
        self.reconcile_total.get_or_create(&Self::result(ok)).inc();
        self.reconcile_duration.observe(took.as_secs_f64());
    }

    /// Records one ref resolution.
    pub fn ref_resolved(&self, took: Duration, ok: bool) {
        self.ref_resolve_duration
            .get_or_create(&Self::result(ok))
            .observe(took.as_secs_f64());
    }

    /// Sets a GatewaySync's gauges.
    pub fn set_gateways(
        &self,
        namespace: &str,
        name: &str,
        discovered: usize,
        synced: usize,
        last_sync_unix: Option<i64>,
    ) {
        let labels = ResourceLabels {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        let as_gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.gateways_discovered
            .get_or_create(&labels)
            .set(as_gauge(discovered));
        self.gateways_synced
            .get_or_create(&labels)
            .set(as_gauge(synced));
        if let Some(at) = last_sync_unix {
            self.last_sync_timestamp.get_or_create(&labels).set(at);
        }
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

    /// Sets when the GitHub App token kept for a GatewaySync's agents expires (Unix seconds).
    pub fn set_github_app_token_expiry(&self, namespace: &str, name: &str, expires_at_unix: i64) {
        self.github_app_token_expiry
            .get_or_create(&resource_labels(namespace, name))
            .set(expires_at_unix);
    }

    /// Drops the token expiry of a GatewaySync that no longer uses a GitHub App.
    pub fn forget_github_app_token(&self, namespace: &str, name: &str) {
        self.github_app_token_expiry
            .remove(&resource_labels(namespace, name));
    }

    /// Drops a deleted GatewaySync's gauges.
    pub fn forget(&self, namespace: &str, name: &str) {
        let labels = resource_labels(namespace, name);
        self.gateways_discovered.remove(&labels);
        self.gateways_synced.remove(&labels);
        self.last_sync_timestamp.remove(&labels);
        self.github_app_token_expiry.remove(&labels);
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
mod tests {
    use super::*;

    #[test]
    fn the_github_app_token_expiry_is_a_gauge_per_resource_until_forgotten() {
        let metrics = OperatorMetrics::new();
        metrics.set_github_app_token_expiry("plant", "site", 1_767_272_400);
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(
                "# TYPE stoker_controller_github_app_token_expiry_timestamp_seconds gauge"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "stoker_controller_github_app_token_expiry_timestamp_seconds{namespace=\"plant\",name=\"site\"} 1767272400"
            ),
            "{text}"
        );
        metrics.forget_github_app_token("plant", "site");
        assert!(!metrics.encode().unwrap().contains("name=\"site\""));
    }
}
