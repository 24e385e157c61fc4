//! The sidecar's Prometheus metrics (prefix `stoker_`), served on `/metrics`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `stoker_sync_duration_seconds` | histogram | `result` (`success`, `error`) |
//! | `stoker_files_changed_total` | counter | `operation` (`added`, `modified`, `deleted`) |
//! | `stoker_agent_clone_duration_seconds` | histogram (Git fetch into the cache) | — |
//! | `stoker_scan_api_duration_seconds` | histogram (gateway rescan requests) | `result` |
//! | `stoker_sync_errors_total` | counter | `reason` (see [`ErrorReason`]) |
//! | `stoker_agent_syncs_total` | counter | `result` |
//! | `stoker_agent_last_success_timestamp_seconds` | gauge (Unix time of the last successful sync) | — |

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Why a sync failed, as the `reason` label of `stoker_sync_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorReason {
    /// Resolving or fetching from Git.
    Git,
    /// Designer sessions were open and the policy refused (`fail`, or `wait` past its
    /// deadline).
    DesignerSessions,
    /// The gateway rescan failed.
    GatewayScan,
    /// Another gateway request failed (the Designer-session check).
    Gateway,
    /// The profile cannot be used (missing, invalid, a template or mapping error).
    Config,
    /// Writing the live directory failed.
    Filesystem,
    /// Anything else.
    Other,
}

impl ErrorReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorReason::Git => "git",
            ErrorReason::DesignerSessions => "designer_sessions",
            ErrorReason::GatewayScan => "gateway_scan",
            ErrorReason::Gateway => "gateway",
            ErrorReason::Config => "config",
            ErrorReason::Filesystem => "filesystem",
            ErrorReason::Other => "other",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

fn seconds_histogram() -> Histogram {
    // 5 ms … ~80 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Every sidecar metric, in one registry. Cheap to clone.
#[derive(Clone)]
pub struct AgentMetrics {
    registry: Arc<Registry>,
    sync_duration: Family<ResultLabel, Histogram>,
    syncs: Family<ResultLabel, Counter>,
    files_changed: Family<OperationLabel, Counter>,
    clone_duration: Histogram,
    scan_duration: Family<ResultLabel, Histogram>,
    errors: Family<ReasonLabel, Counter>,
    last_success: Gauge<f64, AtomicU64>,
}

impl std::fmt::Debug for AgentMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentMetrics").finish_non_exhaustive()
    }
}

impl Default for AgentMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn result(ok: bool) -> ResultLabel {
    ResultLabel {
        result: if ok { "success" } else { "error" },
    }
}

impl AgentMetrics {
    /// A fresh registry with every metric at zero.
    ///
    /// ```
    /// use stoker_agent::sidecar::metrics::{AgentMetrics, ErrorReason};
    /// let metrics = AgentMetrics::new();
    /// metrics.sync_failed(std::time::Duration::from_millis(5), ErrorReason::Git);
    /// let text = metrics.encode();
    /// assert!(text.contains("stoker_sync_errors_total{reason=\"git\"} 1"));
    /// assert!(text.contains("stoker_agent_clone_duration_seconds"));
    /// ```
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("stoker");
        let sync_duration =
            Family::<ResultLabel, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        registry.register(
            "sync_duration_seconds",
            "Time one sync took (resolve, fetch, Designer check, apply, rescan), by result",
            sync_duration.clone(),
        );
        let syncs = Family::<ResultLabel, Counter>::default();
        registry.register("agent_syncs", "Syncs run, by result", syncs.clone());
        let files_changed = Family::<OperationLabel, Counter>::default();
        registry.register(
            "files_changed",
            "Files the agent added, modified or deleted in the gateway's data directory",
            files_changed.clone(),
        );
        let clone_duration = seconds_histogram();
        registry.register(
            "agent_clone_duration_seconds",
            "Time fetching a commit into the Git cache took (no network when already cached)",
            clone_duration.clone(),
        );
        let scan_duration =
            Family::<ResultLabel, Histogram>::new_with_constructor(seconds_histogram as fn() -> _);
        registry.register(
            "scan_api_duration_seconds",
            "Time the gateway rescan (scan/projects then scan/config) took, by result",
            scan_duration.clone(),
        );
        let errors = Family::<ReasonLabel, Counter>::default();
        registry.register("sync_errors", "Failed syncs, by reason", errors.clone());
        let last_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "agent_last_success_timestamp_seconds",
            "Unix time of the last successful sync",
            last_success.clone(),
        );
        // Show every error reason from the start, so rates and alerts have a series at 0.
        for reason in [
            ErrorReason::Git,
            ErrorReason::DesignerSessions,
            ErrorReason::GatewayScan,
            ErrorReason::Gateway,
            ErrorReason::Config,
            ErrorReason::Filesystem,
            ErrorReason::Other,
        ] {
            let _ = errors.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        AgentMetrics {
            registry: Arc::new(registry),
            sync_duration,
            syncs,
            files_changed,
            clone_duration,
            scan_duration,
            errors,
            last_success,
        }
    }

    /// Records a successful sync and the files it changed.
    pub fn sync_succeeded(&self, took: Duration, added: u64, modified: u64, deleted: u64) {
        self.sync_duration
            .get_or_create(&result(true))
            .observe(took.as_secs_f64());
        self.syncs.get_or_create(&result(true)).inc();
        for (operation, count) in [
            ("added", added),
            ("modified", modified),
            ("deleted", deleted),
        ] {
            self.files_changed
                .get_or_create(&OperationLabel { operation })
                .inc_by(count);
        }
        let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
        self.last_success.set(now);
    }

    /// Records a failed sync.
    pub fn sync_failed(&self, took: Duration, reason: ErrorReason) {
        self.sync_duration
            .get_or_create(&result(false))
            .observe(took.as_secs_f64());
        self.syncs.get_or_create(&result(false)).inc();
        self.errors
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Records files changed outside a whole successful sync (a sync whose rescan then failed).
    pub fn files_changed(&self, added: u64, modified: u64, deleted: u64) {
        for (operation, count) in [
            ("added", added),
            ("modified", modified),
            ("deleted", deleted),
        ] {
            self.files_changed
                .get_or_create(&OperationLabel { operation })
                .inc_by(count);
        }
    }

    /// Records one fetch into the Git cache.
    pub fn fetched(&self, took: Duration) {
        self.clone_duration.observe(took.as_secs_f64());
    }

    /// Records one gateway rescan.
    pub fn scanned(&self, took: Duration, ok: bool) {
        self.scan_duration
            .get_or_create(&result(ok))
            .observe(took.as_secs_f64());
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(%error, "encoding metrics failed");
        }
        text
    }
}
