//! The sidecar's Prometheus metrics, served on `/metrics` of `METRICS_ADDRESS` (port 8083, the
//! container port `metrics`, as stoker-operator v0.5.1's agent) and of the probe port.
//!
//! Names and labels are v0.5.1's, so that its dashboards and alerts keep working; the last two
//! are ours. docs/metrics.md is the user's reference.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `stoker_agent_sync_duration_seconds` | histogram | `profile` |
//! | `stoker_agent_sync_total` | counter | `profile`, `result` (`success`, `error`) |
//! | `stoker_agent_files_changed` / `_added` / `_modified` / `_deleted` | gauge (last sync) | `profile` |
//! | `stoker_agent_git_fetch_duration_seconds` | histogram | `operation` (`clone`, `fetch`) |
//! | `stoker_agent_git_fetch_total` | counter | `operation`, `result` |
//! | `stoker_agent_scan_duration_seconds` | histogram | — |
//! | `stoker_agent_scan_total` | counter | `result` |
//! | `stoker_agent_designer_sessions_blocked` | gauge (1 blocked) | — |
//! | `stoker_agent_designer_sessions_active` | gauge | — |
//! | `stoker_agent_last_sync_timestamp_seconds` | gauge | — |
//! | `stoker_agent_last_sync_success` | gauge (1 success) | — |
//! | `stoker_agent_sync_skipped_total` | counter | `reason` (see [`SkipReason`]) |
//! | `stoker_agent_gateway_startup_duration_seconds` | histogram | — |
//! | `stoker_agent_sync_errors_total` (ours) | counter | `profile`, `reason` (see [`ErrorReason`]) |
//! | `stoker_agent_file_changes_total` (ours) | counter | `profile`, `operation` (`added`, `modified`, `deleted`) |

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Why a sync failed, as the `reason` label of `stoker_agent_sync_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorReason {
    /// Resolving or fetching from Git.
    Git,
    /// Designer sessions were open and the policy refused (`fail`, or `wait` past its
    /// deadline). Counted as a skipped sync (`designer_blocked`), as v0.5.1 did, not as an
    /// error.
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

/// A failed pipeline run's label: its error's category ([`stoker_sync::Error::category`]).
/// `GatewayScan` is not a category: the rescan after a sync is not part of the pipeline.
impl From<stoker_sync::ErrorCategory> for ErrorReason {
    fn from(category: stoker_sync::ErrorCategory) -> Self {
        use stoker_core::error::ErrorCategory as General;
        use stoker_sync::ErrorCategory as Category;
        match category {
            Category::General(General::Git) => ErrorReason::Git,
            Category::General(General::Gateway) => ErrorReason::Gateway,
            Category::General(General::Config) => ErrorReason::Config,
            Category::General(General::Filesystem) => ErrorReason::Filesystem,
            Category::General(General::Other) => ErrorReason::Other,
            Category::DesignerSessions => ErrorReason::DesignerSessions,
        }
    }
}

/// Why no sync ran when one could have, as the `reason` label of
/// `stoker_agent_sync_skipped_total` (v0.5.1's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// Something changed, but a failed sync's retry delay has not passed yet.
    Backoff,
    /// The GatewaySync or the profile is paused.
    Paused,
    /// Something changed, but nothing this gateway syncs (same commit, same profile).
    CommitUnchanged,
    /// The profile cannot be used (missing or invalid).
    ProfileError,
    /// Designer sessions are open and the policy refused to sync.
    DesignerBlocked,
}

impl SkipReason {
    const ALL: [SkipReason; 5] = [
        SkipReason::Backoff,
        SkipReason::Paused,
        SkipReason::CommitUnchanged,
        SkipReason::ProfileError,
        SkipReason::DesignerBlocked,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Backoff => "backoff",
            SkipReason::Paused => "paused",
            SkipReason::CommitUnchanged => "commit_unchanged",
            SkipReason::ProfileError => "profile_error",
            SkipReason::DesignerBlocked => "designer_blocked",
        }
    }
}

/// What a fetch into the Git cache was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FetchOperation {
    /// The cache had no repository yet.
    Clone,
    /// The cache had the repository (when it already held the commit, nothing went over the
    /// network).
    Fetch,
}

impl FetchOperation {
    fn as_str(self) -> &'static str {
        match self {
            FetchOperation::Clone => "clone",
            FetchOperation::Fetch => "fetch",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProfileLabel {
    profile: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProfileResult {
    profile: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProfileReason {
    profile: String,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProfileOperation {
    profile: String,
    operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationResult {
    operation: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

// v0.5.1's buckets, with finer ones below them: Stoker's syncs and fetches often take
// milliseconds, and every bucket boundary v0.5.1 had is still there for existing queries.
const SYNC_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
];
const FETCH_BUCKETS: [f64; 11] = [0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0];
const SCAN_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0];
const STARTUP_BUCKETS: [f64; 8] = [1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0];

fn sync_histogram() -> Histogram {
    Histogram::new(SYNC_BUCKETS)
}

fn fetch_histogram() -> Histogram {
    Histogram::new(FETCH_BUCKETS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn result(ok: bool) -> &'static str {
    if ok { "success" } else { "error" }
}

/// Every sidecar metric, in one registry. Cheap to clone.
#[derive(Clone)]
pub struct AgentMetrics {
    registry: Arc<Registry>,
    sync_duration: Histograms<ProfileLabel>,
    sync_total: Family<ProfileResult, Counter>,
    files_changed: Family<ProfileLabel, Gauge>,
    files_added: Family<ProfileLabel, Gauge>,
    files_modified: Family<ProfileLabel, Gauge>,
    files_deleted: Family<ProfileLabel, Gauge>,
    fetch_duration: Histograms<OperationLabel>,
    fetch_total: Family<OperationResult, Counter>,
    scan_duration: Histogram,
    scan_total: Family<ResultLabel, Counter>,
    designer_blocked: Gauge,
    designer_active: Gauge,
    last_sync_timestamp: FloatGauge,
    last_sync_success: Gauge,
    skipped: Family<ReasonLabel, Counter>,
    startup_duration: Histogram,
    errors: Family<ProfileReason, Counter>,
    file_changes: Family<ProfileOperation, Counter>,
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

impl AgentMetrics {
    /// A fresh registry with every metric at zero.
    ///
    /// ```
    /// use stoker_agent::sidecar::metrics::{AgentMetrics, ErrorReason};
    /// let metrics = AgentMetrics::new();
    /// metrics.sync_failed("standard", std::time::Duration::from_millis(5), ErrorReason::Git);
    /// let text = metrics.encode();
    /// assert!(text.contains("stoker_agent_sync_total{profile=\"standard\",result=\"error\"} 1"));
    /// assert!(text.contains("stoker_agent_sync_errors_total{profile=\"standard\",reason=\"git\"} 1"));
    /// assert!(text.contains("stoker_agent_last_sync_success 0"));
    /// ```
    #[allow(clippy::too_many_lines)] // one registration per metric, nothing else
    pub fn new() -> Self {
        let mut root = Registry::default();
        let r = root.sub_registry_with_prefix("stoker_agent");
        let sync_duration = Family::new_with_constructor(sync_histogram as fn() -> _);
        r.register(
            "sync_duration_seconds",
            "Time one sync took (fetch, Designer check, apply, rescan), by profile",
            sync_duration.clone(),
        );
        let sync_total = Family::default();
        r.register(
            "sync",
            "Syncs run, by profile and result",
            sync_total.clone(),
        );
        let [files_changed, files_added, files_modified, files_deleted] = [
            (
                "files_changed",
                "Files the last sync added, modified or deleted",
            ),
            ("files_added", "Files the last sync added"),
            ("files_modified", "Files the last sync modified"),
            ("files_deleted", "Files the last sync deleted"),
        ]
        .map(|(name, help)| {
            let family = Family::<ProfileLabel, Gauge>::default();
            r.register(name, help, family.clone());
            family
        });
        let fetch_duration = Family::new_with_constructor(fetch_histogram as fn() -> _);
        r.register(
            "git_fetch_duration_seconds",
            "Time fetching a commit into the Git cache took, by operation",
            fetch_duration.clone(),
        );
        let fetch_total = Family::default();
        r.register(
            "git_fetch",
            "Fetches into the Git cache, by operation and result",
            fetch_total.clone(),
        );
        let scan_duration = Histogram::new(SCAN_BUCKETS);
        r.register(
            "scan_duration_seconds",
            "Time the gateway rescan (scan/projects then scan/config) took",
            scan_duration.clone(),
        );
        let scan_total = Family::default();
        r.register("scan", "Gateway rescans, by result", scan_total.clone());
        let designer_blocked = Gauge::default();
        r.register(
            "designer_sessions_blocked",
            "1 while open Designer sessions keep the agent from syncing",
            designer_blocked.clone(),
        );
        let designer_active = Gauge::default();
        r.register(
            "designer_sessions_active",
            "Designer sessions open at the last check",
            designer_active.clone(),
        );
        let last_sync_timestamp = FloatGauge::default();
        r.register(
            "last_sync_timestamp_seconds",
            "Unix time of the last successful sync",
            last_sync_timestamp.clone(),
        );
        let last_sync_success = Gauge::default();
        r.register(
            "last_sync_success",
            "1 when the last sync succeeded, 0 when it failed",
            last_sync_success.clone(),
        );
        let skipped = Family::default();
        r.register("sync_skipped", "Syncs not run, by reason", skipped.clone());
        let startup_duration = Histogram::new(STARTUP_BUCKETS);
        r.register(
            "gateway_startup_duration_seconds",
            "Time from the agent's start to the gateway first answering",
            startup_duration.clone(),
        );
        let errors = Family::default();
        r.register(
            "sync_errors",
            "Failed syncs, by profile and reason",
            errors.clone(),
        );
        let file_changes = Family::default();
        r.register(
            "file_changes",
            "Files added, modified or deleted in the gateway's data directory, by profile",
            file_changes.clone(),
        );
        // Every skip reason and rescan result from the start, so rates and alerts have a
        // series at 0.
        for reason in SkipReason::ALL {
            let _ = skipped.get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            });
        }
        for ok in [true, false] {
            let _ = scan_total.get_or_create(&ResultLabel { result: result(ok) });
        }
        AgentMetrics {
            registry: Arc::new(root),
            sync_duration,
            sync_total,
            files_changed,
            files_added,
            files_modified,
            files_deleted,
            fetch_duration,
            fetch_total,
            scan_duration,
            scan_total,
            designer_blocked,
            designer_active,
            last_sync_timestamp,
            last_sync_success,
            skipped,
            startup_duration,
            errors,
            file_changes,
        }
    }

    fn ran(&self, profile: &str, took: Duration, ok: bool) {
        let labels = ProfileLabel {
            profile: profile.to_owned(),
        };
        self.sync_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.sync_total
            .get_or_create(&ProfileResult {
                profile: profile.to_owned(),
                result: result(ok),
            })
            .inc();
        self.last_sync_success.set(i64::from(ok));
        // The sync went past the Designer check.
        self.designer_blocked.set(0);
    }

    /// Records a successful sync and the files it changed.
    pub fn sync_succeeded(
        &self,
        profile: &str,
        took: Duration,
        added: u64,
        modified: u64,
        deleted: u64,
    ) {
        self.ran(profile, took, true);
        self.files_changed(profile, added, modified, deleted);
        let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
        self.last_sync_timestamp.set(now);
    }

    /// Records a failed sync.
    pub fn sync_failed(&self, profile: &str, took: Duration, reason: ErrorReason) {
        self.ran(profile, took, false);
        self.errors
            .get_or_create(&ProfileReason {
                profile: profile.to_owned(),
                reason: reason.as_str(),
            })
            .inc();
    }

    /// Records the files a sync changed (also one whose rescan then failed: the files are in
    /// place).
    pub fn files_changed(&self, profile: &str, added: u64, modified: u64, deleted: u64) {
        let labels = ProfileLabel {
            profile: profile.to_owned(),
        };
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.files_changed.get_or_create(&labels).set(gauge(
            added.saturating_add(modified).saturating_add(deleted),
        ));
        self.files_added.get_or_create(&labels).set(gauge(added));
        self.files_modified
            .get_or_create(&labels)
            .set(gauge(modified));
        self.files_deleted
            .get_or_create(&labels)
            .set(gauge(deleted));
        for (operation, count) in [
            ("added", added),
            ("modified", modified),
            ("deleted", deleted),
        ] {
            self.file_changes
                .get_or_create(&ProfileOperation {
                    profile: profile.to_owned(),
                    operation,
                })
                .inc_by(count);
        }
    }

    /// Records a sync not run.
    pub fn skipped(&self, reason: SkipReason) {
        self.skipped
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
        if reason == SkipReason::DesignerBlocked {
            self.designer_blocked.set(1);
        }
    }

    /// Records the Designer sessions a check found open.
    pub fn designer_sessions(&self, open: usize) {
        self.designer_active
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// Records one fetch into the Git cache.
    pub fn fetched(&self, operation: FetchOperation, took: Duration, ok: bool) {
        let operation = operation.as_str();
        self.fetch_duration
            .get_or_create(&OperationLabel { operation })
            .observe(took.as_secs_f64());
        self.fetch_total
            .get_or_create(&OperationResult {
                operation,
                result: result(ok),
            })
            .inc();
    }

    /// Records one gateway rescan.
    pub fn scanned(&self, took: Duration, ok: bool) {
        self.scan_duration.observe(took.as_secs_f64());
        self.scan_total
            .get_or_create(&ResultLabel { result: result(ok) })
            .inc();
    }

    /// Records how long after the agent's start the gateway first answered.
    pub fn gateway_started(&self, took: Duration) {
        self.startup_duration.observe(took.as_secs_f64());
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

#[cfg(test)]
mod tests {
    use super::*;
    use stoker_testkit::metrics::{AGENT, compare, parse};

    #[test]
    fn every_listed_metric_is_registered_with_its_labels_and_nothing_else() {
        let metrics = AgentMetrics::new();
        let took = Duration::from_millis(4);
        metrics.sync_succeeded("standard", took, 2, 1, 0);
        metrics.sync_failed("standard", took, ErrorReason::Filesystem);
        metrics.fetched(FetchOperation::Clone, took, true);
        metrics.scanned(took, true);
        metrics.designer_sessions(2);
        metrics.skipped(SkipReason::Paused);
        metrics.gateway_started(took);
        let problems = compare(&parse(&metrics.encode()), AGENT, "stoker_", &[]);
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn last_sync_gauges_describe_the_last_sync_and_counters_add_up() {
        let metrics = AgentMetrics::new();
        metrics.sync_succeeded("p", Duration::ZERO, 3, 2, 1);
        metrics.sync_succeeded("p", Duration::ZERO, 0, 1, 0);
        let text = metrics.encode();
        for expected in [
            "stoker_agent_files_changed{profile=\"p\"} 1",
            "stoker_agent_files_added{profile=\"p\"} 0",
            "stoker_agent_files_modified{profile=\"p\"} 1",
            "stoker_agent_file_changes_total{profile=\"p\",operation=\"added\"} 3",
            "stoker_agent_file_changes_total{profile=\"p\",operation=\"modified\"} 3",
            "stoker_agent_sync_total{profile=\"p\",result=\"success\"} 2",
            "stoker_agent_last_sync_success 1",
        ] {
            assert!(text.contains(expected), "{expected} in\n{text}");
        }
    }

    #[test]
    fn a_designer_block_is_a_skip_that_the_next_sync_clears() {
        let metrics = AgentMetrics::new();
        assert!(
            metrics
                .encode()
                .contains("stoker_agent_sync_skipped_total{reason=\"designer_blocked\"} 0")
        );
        metrics.skipped(SkipReason::DesignerBlocked);
        let text = metrics.encode();
        assert!(
            text.contains("stoker_agent_designer_sessions_blocked 1"),
            "{text}"
        );
        assert!(
            text.contains("stoker_agent_sync_skipped_total{reason=\"designer_blocked\"} 1"),
            "{text}"
        );
        metrics.sync_succeeded("p", Duration::ZERO, 0, 0, 0);
        assert!(
            metrics
                .encode()
                .contains("stoker_agent_designer_sessions_blocked 0")
        );
    }
}
