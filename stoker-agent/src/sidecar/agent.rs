//! The sidecar's loop: plan from the watched inputs, sync when the plan changed, the resync
//! period passed, a retry is due, or the gateway first answered; report; wait.
//!
//! One sync runs at a time. A failure is retried with exponential backoff
//! (`RETRY_INITIAL_SECONDS` doubling up to `RETRY_MAX_SECONDS`); a new commit or profile
//! change is picked up at once, whatever the backoff. The first sync runs before `/startupz`
//! passes: when the gateway is not answering yet (in Kubernetes it has not even started — the
//! agent is a native sidecar whose startup probe gates it), the files are written without a
//! Designer check or rescan, and once the gateway first answers the agent syncs again and asks
//! for a rescan whatever changed (the post-commissioning scan).

use std::sync::Arc;
use std::time::Duration;

use stoker_core::error::chain;
use stoker_core::ignition::IgnitionGateway;
use stoker_core::profile::DesignerSessionPolicy;
use stoker_core::{Health, SyncReport};
use stoker_k8s::crd::SyncStatus;
use stoker_k8s::gateway_status::SyncResult;
use stoker_sync::pipeline::{CheckFailure, Outcome, Pipeline, SyncJob};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::sidecar::config::SidecarConfig;
use crate::sidecar::gateway::{GatewayCache, GatewayOptions, recorded_rescan, scan_now};
use crate::sidecar::metrics::{AgentMetrics, ErrorReason, SkipReason};
use crate::sidecar::plan::{Attempt, Desired, Inputs, Observed, Plan, plan};
use crate::sidecar::report::{ScanReport, StatusReporter};
use crate::sidecar::source::{PinnedSource, SourceCache, SourceKey};
use crate::sidecar::state::{GatewayTracker, Progress, Rescan};
use stoker_k8s::probes::Probes;

pub use crate::sidecar::state::GATEWAY_POLL;

/// How soon a status write that failed (API server away) is tried again.
pub const STATUS_RETRY: Duration = Duration::from_secs(5);

/// Event reasons published on the GatewaySync (shared with the operator).
pub use stoker_k8s::events::reasons;

/// An agent that has written nothing for this many sync periods refreshes its report's
/// heartbeat, so the operator's `AgentReady` (3 periods) tells a quiet agent from a gone one
/// while an idle agent writes at most once every two periods.
pub const HEARTBEAT_PERIODS: u32 = 2;

/// Open Designer sessions that stopped a sync (from the pipeline's error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// The open sessions.
    pub sessions: Vec<String>,
}

/// The loop's state.
pub struct Agent {
    config: SidecarConfig,
    metrics: AgentMetrics,
    probes: Probes,
    status: StatusReporter,
    sources: SourceCache,
    gateways: GatewayCache,
    gateway_options: GatewayOptions,
    inputs: watch::Receiver<Inputs>,
    shutdown: watch::Receiver<bool>,
    /// The last sync attempted (successful or not).
    last: Option<Desired>,
    /// The last non-sync plan reported (to report it once).
    last_other: Option<Plan>,
    /// Consecutive failed syncs.
    failures: u32,
    /// When the next resync (or retry) is due.
    next_run: Option<Instant>,
    /// The gateway: answered yet, rescanned yet, owed a rescan, to be polled.
    gateway: GatewayTracker,
    /// Started yet (`/startupz`), fetched yet (a Git failure before is `CloneFailed`).
    progress: Progress,
    /// The current profile's sync period (for the heartbeat).
    sync_period: Duration,
}

/// A sync that failed: why, for the metrics' label, the status and the Events.
struct Failure {
    reason: ErrorReason,
    message: String,
    /// The open sessions, when they held the sync back.
    blocked: Option<Blocked>,
}

impl Failure {
    fn new(reason: ErrorReason, message: String) -> Self {
        Failure {
            reason,
            message,
            blocked: None,
        }
    }

    /// A failed pipeline run, classified.
    fn of(error: &stoker_sync::Error) -> Self {
        let blocked = match error {
            stoker_sync::Error::DesignerSessionsOpen { sessions, .. } => Some(Blocked {
                sessions: sessions.clone(),
            }),
            _ => None,
        };
        Failure {
            reason: ErrorReason::from(error.category()),
            message: chain(error),
            blocked,
        }
    }
}

/// How a sync ended, for the loop's bookkeeping.
enum Ended {
    /// Files in place (or a dry run computed).
    Ok,
    /// Failed; retry with backoff.
    Failed,
}

impl Agent {
    /// A loop over `inputs`, stopping when `shutdown` turns true.
    pub fn new(
        config: SidecarConfig,
        metrics: AgentMetrics,
        probes: Probes,
        status: StatusReporter,
        inputs: watch::Receiver<Inputs>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let gateway_options = GatewayOptions {
            api_key_file: config.api_key_file.clone(),
            ca_file: config.gateway_ca_file.clone(),
            insecure_skip_tls_verify: config.gateway_insecure_skip_tls_verify,
        };
        Agent {
            config,
            metrics,
            probes,
            status,
            sources: SourceCache::default(),
            gateways: GatewayCache::default(),
            gateway_options,
            inputs,
            shutdown,
            last: None,
            last_other: None,
            failures: 0,
            next_run: None,
            gateway: GatewayTracker::new(),
            progress: Progress::Starting,
            sync_period: Duration::from_secs(u64::from(stoker_core::profile::DEFAULT_SYNC_PERIOD)),
        }
    }

    /// Runs until shutdown (or until the watches are gone). An in-flight sync gets
    /// `SHUTDOWN_GRACE_SECONDS` to finish.
    pub async fn run(mut self) {
        // Whether the loop woke for a change of its inputs (not a timer): such a wake-up that
        // does not sync is a skipped sync.
        let mut woken_by_inputs = false;
        loop {
            if *self.shutdown.borrow() {
                break;
            }
            let inputs = self.inputs.borrow_and_update().clone();
            let pod_uid = match &inputs.pod {
                Observed::Present(pod) => pod.pod_uid.clone(),
                _ => None,
            };
            self.status
                .set_owners(pod_uid.as_deref(), inputs.owner_uid.as_deref());
            if let Observed::Present(pod) = &inputs.pod {
                let gateway = self
                    .config
                    .agent
                    .gateway_name
                    .clone()
                    .unwrap_or_else(|| pod.gateway_name.clone());
                let profile = self.status.report().profile.clone();
                self.status.set_identity(&gateway, profile.as_deref());
            }

            let mut wake: Option<Instant> = None;
            match plan(&self.config.agent, &inputs) {
                Plan::Sync(desired) => {
                    if self.is_due(&desired).await {
                        let mut shutdown = self.shutdown.clone();
                        let grace = self.config.shutdown_grace;
                        let sync = self.sync(&desired);
                        tokio::pin!(sync);
                        tokio::select! {
                            () = &mut sync => {}
                            _ = shutdown.wait_for(|stop| *stop) => {
                                tracing::info!(grace_s = grace.as_secs(), "shutting down: letting the sync in flight finish");
                                if tokio::time::timeout(grace, &mut sync).await.is_err() {
                                    tracing::warn!(grace_s = grace.as_secs(), "the sync in flight did not finish in time; exiting (the next start converges: writes are atomic per file)");
                                }
                                break;
                            }
                        }
                        // Re-plan at once: inputs may have changed during the sync.
                        woken_by_inputs = false;
                        continue;
                    }
                    if woken_by_inputs {
                        self.metrics.skipped(if self.failures > 0 {
                            SkipReason::Backoff
                        } else {
                            SkipReason::CommitUnchanged
                        });
                    }
                    wake = earliest(self.next_run, self.gateway.next_poll());
                }
                other => self.report_other(other).await,
            }
            woken_by_inputs = false;

            // Once running, a quiet agent still says it is alive now and then.
            let heartbeat_every = self.sync_period * HEARTBEAT_PERIODS;
            if self.progress.started() {
                self.status.heartbeat(heartbeat_every);
            }
            if let Err(error) = self.status.flush().await {
                tracing::warn!(%error, "could not write the status ConfigMap; retrying");
                wake = earliest(wake, Some(Instant::now() + STATUS_RETRY));
            }
            if self.progress.started() {
                wake = earliest(wake, Some(self.status.next_heartbeat(heartbeat_every)));
            }

            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let mut shutdown = self.shutdown.clone();
            tokio::select! {
                changed = self.inputs.changed() => {
                    woken_by_inputs = true;
                    if changed.is_err() {
                        tracing::error!("the watches stopped; exiting");
                        self.probes.set_healthy(Err("the watches stopped".to_owned()));
                        break;
                    }
                }
                () = sleep => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
        }
        if let Err(error) = self.status.flush().await {
            tracing::warn!(%error, "could not write the final status");
        }
        tracing::info!("sync loop stopped");
    }

    /// Whether `desired` should sync now: it differs from the last attempt, a resync or retry
    /// is due, or the gateway answered for the first time.
    async fn is_due(&mut self, desired: &Desired) -> bool {
        if self.last.as_ref() != Some(desired) {
            return true;
        }
        let now = Instant::now();
        if self.next_run.is_some_and(|at| now >= at) {
            return true;
        }
        if self.gateway.poll_due(now)
            && let Ok(gateway) = self
                .gateways
                .get(&desired.gateway_url, &self.gateway_options)
            && matches!(gateway.liveness().await, Ok(Health::Up))
        {
            self.gateway_answered();
            tracing::info!(url = %desired.gateway_url, "the gateway answers now: syncing and asking it to rescan");
            return true;
        }
        false
    }

    /// Reports a plan that does not sync (waiting, invalid, paused), once per distinct plan.
    async fn report_other(&mut self, other: Plan) {
        match &other {
            Plan::Invalid(_) => self.metrics.skipped(SkipReason::ProfileError),
            Plan::Paused(_) => self.metrics.skipped(SkipReason::Paused),
            _ => {}
        }
        if self.last_other.as_ref() == Some(&other) {
            return;
        }
        self.last = None;
        self.next_run = None;
        match &other {
            Plan::Starting(reason) => {
                tracing::debug!(%reason, "starting");
                if !self.progress.started() {
                    self.probes.set_started(Err(reason.clone()));
                }
            }
            Plan::Wait(reason) => {
                tracing::info!(%reason, "waiting");
                if !self.progress.started() {
                    self.probes.set_started(Err(reason.clone()));
                }
                self.status.note(SyncStatus::Pending, reason, None, None);
            }
            Plan::Invalid(attempt) => {
                tracing::error!(error = %attempt.message, "cannot sync");
                if !self.progress.started() {
                    self.probes.set_started(Err(attempt.message.clone()));
                }
                let gateway = self.status.report().gateway.clone();
                self.status
                    .set_identity(&gateway, attempt.profile.as_deref());
                let recorded = self
                    .status
                    .record(failure_result(attempt, None), None, None);
                if recorded {
                    self.status
                        .event(true, reasons::SYNC_FAILED, attempt.message.clone())
                        .await;
                }
            }
            Plan::Paused(attempt) => {
                tracing::info!(reason = %attempt.message, "paused");
                self.mark_started(Progress::Started);
                let status = match self.status.report().status {
                    SyncStatus::Synced => SyncStatus::Synced,
                    _ => SyncStatus::Pending,
                };
                self.status.note(status, &attempt.message, None, None);
                self.status
                    .event(false, reasons::SYNC_PAUSED, attempt.message.clone())
                    .await;
            }
            Plan::Sync(_) => {}
        }
        self.last_other = Some(other);
    }

    /// The gateway answered: the first time, how long it took since the agent started.
    fn gateway_answered(&mut self) {
        if let Some(took) = self.gateway.answered() {
            self.metrics.gateway_started(took);
        }
    }

    /// The agent has come this far: `Started` (paused), or `Fetched` (a sync's files in
    /// place, or a dry run computed). The first time, `/startupz` and `/readyz` pass.
    fn mark_started(&mut self, progress: Progress) {
        if !self.progress.started() {
            self.probes.set_started(Ok(()));
            self.probes.set_ready(Ok(()));
            tracing::info!("initial sync done: /startupz and /readyz pass");
        }
        self.progress = self.progress.max(progress);
    }

    fn backoff(&self) -> Duration {
        let exponent = self.failures.saturating_sub(1).min(20);
        self.config
            .retry_initial
            .saturating_mul(1u32 << exponent)
            .min(self.config.retry_max)
    }

    /// Runs one sync of `desired` and records its outcome.
    #[tracing::instrument(skip_all, fields(reference = %desired.reference, profile = %desired.profile.name, commit = desired.pinned_commit.as_deref().unwrap_or("(resolve)")))]
    async fn sync(&mut self, desired: &Desired) {
        let started = std::time::Instant::now();
        let new_target = self.last.as_ref().is_none_or(|last| {
            last.reference != desired.reference || last.pinned_commit != desired.pinned_commit
        });
        let changed_plan = self.last.as_ref() != Some(desired);
        self.last = Some(desired.clone());
        self.sync_period = desired.sync_period;
        self.last_other = None;
        let gateway_name = desired.context.gateway_name.clone().unwrap_or_default();
        self.status
            .set_identity(&gateway_name, Some(&desired.profile.name));
        if new_target && self.status.report().commit.as_deref() != desired.pinned_commit.as_deref()
        {
            let target = match &desired.pinned_commit {
                Some(commit) => format!("{} at {}", desired.reference, short(commit)),
                None => format!("{} (ref override)", desired.reference),
            };
            self.status.note(
                SyncStatus::Pending,
                &format!("syncing {target}"),
                Some(&desired.reference),
                desired.pinned_commit.as_deref(),
            );
            if let Err(error) = self.status.flush().await {
                tracing::debug!(%error, "could not write the Pending status");
            }
        }
        if changed_plan {
            tracing::info!(dry_run = desired.dry_run, "syncing");
        } else {
            tracing::debug!("resyncing");
        }

        let ended = match self.sync_inner(desired, started, changed_plan).await {
            Ok(ended) => ended,
            Err(failure) => {
                self.fail(desired, failure, started.elapsed()).await;
                Ended::Failed
            }
        };
        let now = Instant::now();
        match ended {
            Ended::Ok => {
                self.failures = 0;
                self.next_run = Some(now + desired.sync_period);
                // `Ok` comes only from a run that fetched.
                self.mark_started(Progress::Fetched);
            }
            Ended::Failed => {
                self.failures = self.failures.saturating_add(1);
                let delay = self.backoff();
                tracing::info!(
                    failures = self.failures,
                    retry_in_s = delay.as_secs(),
                    "sync failed; retrying with backoff"
                );
                self.next_run = Some(now + delay);
            }
        }
        if let Err(error) = self.status.flush().await {
            tracing::warn!(%error, "could not write the status ConfigMap; retrying");
        }
    }

    /// Whether the gateway answers (never asked in a dry run); one that does not is polled.
    async fn gateway_up(&mut self, desired: &Desired, gateway: &IgnitionGateway) -> bool {
        // In a dry run the gateway is never asked anything.
        let up = !desired.dry_run
            && match gateway.liveness().await {
                Ok(Health::Up) => {
                    self.gateway_answered();
                    true
                }
                Ok(health) => {
                    tracing::info!(?health, url = %desired.gateway_url, "the gateway is not answering yet: syncing the files only; it will be asked to rescan once it answers");
                    false
                }
                Err(error) => {
                    tracing::warn!(error = %chain(&error), url = %desired.gateway_url, "cannot reach the gateway: syncing the files only");
                    false
                }
            };
        self.gateway
            .checked((!desired.dry_run).then_some(up), Instant::now());
        up
    }

    /// Runs the engine's pipeline for `desired`; with the gateway when it is `up`.
    async fn run_pipeline(
        &mut self,
        desired: &Desired,
        gateway: &IgnitionGateway,
        up: bool,
    ) -> Result<Outcome, Failure> {
        let git = self
            .sources
            .get(
                &SourceKey {
                    url: desired.repo.clone(),
                    auth: desired.auth.clone(),
                },
                &self.config.repo_path,
                self.config.agent.git.ca_file.as_deref(),
            )
            .map_err(|error| Failure::new(ErrorReason::Git, chain(&error)))?;
        let pinned = desired
            .pinned_commit
            .clone()
            .map(|commit| (desired.reference.clone(), commit));
        let source = PinnedSource::new(git, pinned, self.metrics.clone());
        let mut pipeline = Pipeline::new(Arc::new(source));
        pipeline.designer_wait = self.config.designer_wait;
        if up {
            let metrics = self.metrics.clone();
            pipeline = pipeline
                .with_gateway(Arc::new(gateway.clone()))
                .with_check_failure(CheckFailure::SyncUnderProceed)
                .on_designer_sessions(move |open| metrics.designer_sessions(open.len()));
        }
        pipeline
            .run(SyncJob {
                reference: desired.reference.clone(),
                profile: desired.profile.clone(),
                context: desired.context.clone(),
                live: self.config.data_path.clone(),
                dry_run: desired.dry_run,
            })
            .await
            .map_err(|error| Failure::of(&error))
    }

    /// The sync proper; an `Err` is a failure to report with its reason.
    async fn sync_inner(
        &mut self,
        desired: &Desired,
        started: std::time::Instant,
        changed_plan: bool,
    ) -> Result<Ended, Failure> {
        let gateway = self
            .gateways
            .get(&desired.gateway_url, &self.gateway_options)
            .map_err(|error| Failure::new(ErrorReason::Config, chain(&error)))?;
        let up = self.gateway_up(desired, &gateway).await;
        let outcome = self.run_pipeline(desired, &gateway, up).await;
        let Outcome { report, rescan, .. } = outcome?;
        let mut result = synced_result(desired, &report, started);
        let counts = file_counts(&report);

        if report.dry_run {
            self.record_dry_run(desired, &report, result, &counts, started)
                .await;
            return Ok(Ended::Ok);
        }

        let scan_text = match self.rescan_after(&gateway, &report, rescan, up).await {
            Ok(scan_text) => scan_text,
            Err(error) => {
                self.record_rescan_failure(desired, &report, result, &counts, &error, started)
                    .await;
                return Ok(Ended::Failed);
            }
        };

        result.message = Some(if self.gateway.rescan() == Rescan::Owed {
            format!("{counts}; the gateway is not answering yet: rescan when it does")
        } else {
            counts.clone()
        });
        self.metrics.sync_succeeded(
            &desired.profile.name,
            started.elapsed(),
            result.files_added,
            result.files_modified,
            result.files_deleted,
        );
        log_synced(&report, scan_text.as_deref(), started, changed_plan);
        let recorded = self.status.record(
            result,
            Some(report.projects.clone()),
            scan_text.map(ScanReport::succeeded),
        );
        if recorded && report.changed() > 0 {
            let note = format!(
                "synced {} at {}: {counts}",
                desired.reference,
                short(&report.revision.id)
            );
            self.status
                .event(false, reasons::SYNC_COMPLETED, note)
                .await;
        }
        Ok(Ended::Ok)
    }

    /// The gateway's rescan after files landed: the pipeline's, or one owed from an earlier
    /// sync (the gateway did not answer then) now that it answers. `Ok(None)`: none ran;
    /// `Ok(Some(_))`: what the rescan said, for the status.
    async fn rescan_after(
        &mut self,
        gateway: &IgnitionGateway,
        report: &SyncReport,
        rescan: stoker_sync::pipeline::Rescan,
        up: bool,
    ) -> Result<Option<String>, stoker_core::Error> {
        if report.changed() > 0 && !up {
            self.gateway.files_unscanned();
        }
        let mut scan = recorded_rescan(&self.metrics, rescan);
        if up && scan.is_none() && self.gateway.scan_owed() {
            scan = Some(scan_now(gateway, &self.metrics).await);
        }
        let Some(outcome) = scan.transpose()? else {
            return Ok(None);
        };
        if self.gateway.rescanned() {
            // The post-commissioning scan.
            self.status
                .event(
                    false,
                    reasons::GATEWAY_RESCANNED,
                    format!("the gateway answers; rescan requested ({outcome})"),
                )
                .await;
        }
        Ok(Some(outcome.to_string()))
    }

    /// Records a dry run: `Pending`, with what it would change.
    async fn record_dry_run(
        &mut self,
        desired: &Desired,
        report: &SyncReport,
        mut result: SyncResult,
        counts: &str,
        started: std::time::Instant,
    ) {
        let commit = &report.revision.id;
        result.status = SyncStatus::Pending;
        result.message = Some(format!(
            "dry run (dryRun: true) at {}: would change {}; nothing written",
            short(commit),
            counts
        ));
        self.metrics
            .sync_succeeded(&desired.profile.name, started.elapsed(), 0, 0, 0);
        let changed = report.changed() > 0;
        if self.status.record(result, None, None) && changed {
            let note = format!(
                "dry run of {} at {}: would change {counts}",
                desired.reference,
                short(commit)
            );
            self.status
                .event(false, reasons::DRY_RUN_COMPLETED, note)
                .await;
        }
    }

    /// Records files that landed but were not rescanned: `Error`, with the reason; the agent
    /// is started all the same (the files are in place: the gateway may start).
    async fn record_rescan_failure(
        &mut self,
        desired: &Desired,
        report: &SyncReport,
        mut result: SyncResult,
        counts: &str,
        error: &stoker_core::Error,
        started: std::time::Instant,
    ) {
        self.gateway.rescan_failed();
        let error = chain(error);
        let message = format!(
            "files synced at {} ({counts}), but the gateway rescan failed: {error}",
            short(&report.revision.id)
        );
        let (added, modified, deleted) = (
            result.files_added,
            result.files_modified,
            result.files_deleted,
        );
        result.status = SyncStatus::Error;
        result.message = Some(message.clone());
        let profile = &desired.profile.name;
        self.metrics
            .files_changed(profile, added, modified, deleted);
        self.metrics
            .sync_failed(profile, started.elapsed(), ErrorReason::GatewayScan);
        tracing::warn!(%error, "sync applied, rescan failed");
        if self.status.record(
            result,
            Some(report.projects.clone()),
            Some(ScanReport::failed(format!("failed: {error}"))),
        ) {
            self.status.event(true, reasons::SYNC_FAILED, message).await;
        }
        self.mark_started(Progress::Fetched);
    }

    async fn fail(&mut self, desired: &Desired, failure: Failure, took: Duration) {
        let Failure {
            reason,
            message,
            blocked,
        } = failure;
        tracing::error!(error = %message, reason = reason.as_str(), "sync failed");
        if reason == ErrorReason::DesignerSessions {
            // v0.5.1 counted a sync held back by Designer sessions as skipped, not failed.
            self.metrics.skipped(SkipReason::DesignerBlocked);
        } else {
            self.metrics
                .sync_failed(&desired.profile.name, took, reason);
        }
        if !self.progress.started() {
            self.probes
                .set_started(Err(format!("initial sync failed (retrying): {message}")));
        }
        let attempt = Attempt {
            message: message.clone(),
            profile: Some(desired.profile.name.clone()),
            reference: Some(desired.reference.clone()),
            commit: desired.pinned_commit.clone(),
        };
        let mut result = failure_result(&attempt, Some(took));
        result.commit = desired
            .pinned_commit
            .clone()
            .or_else(|| self.status.report().commit.clone());
        if !self.status.record(result, None, None) {
            // The same failure again: it was told already.
            return;
        }
        let events = failure_events(
            reason,
            &message,
            self.progress.fetched(),
            blocked.as_ref(),
            desired.profile.designer_session_policy,
            self.config.designer_wait,
        );
        for (reason, note) in events {
            self.status.event(true, reason, note).await;
        }
    }
}

/// The Warning Events of a failed sync, as v0.5.1 publishes them: a Git failure before any
/// fetch succeeded is `CloneFailed` (`Initial clone failed: …`); open Designer sessions give
/// `DesignerSessionsBlocked`, then `SyncFailed`, then `SyncSkipped`; anything else is
/// `SyncFailed`.
pub fn failure_events(
    reason: ErrorReason,
    message: &str,
    fetched: bool,
    blocked: Option<&Blocked>,
    policy: DesignerSessionPolicy,
    designer_wait: Duration,
) -> Vec<(&'static str, String)> {
    if reason == ErrorReason::Git && !fetched {
        return vec![(
            reasons::CLONE_FAILED,
            format!("Initial clone failed: {message}"),
        )];
    }
    let Some(blocked) = blocked else {
        return vec![(reasons::SYNC_FAILED, message.to_owned())];
    };
    let sessions = blocked.sessions.join(", ");
    let (how, policy) = match policy {
        DesignerSessionPolicy::Wait => (
            format!(
                "Designer sessions blocked sync ({} timeout): {sessions}",
                stoker_k8s::aggregate::go_seconds(designer_wait)
            ),
            "wait",
        ),
        DesignerSessionPolicy::Fail | DesignerSessionPolicy::Proceed => (
            format!("Designer sessions blocked sync: {sessions}"),
            "fail",
        ),
    };
    vec![
        (reasons::DESIGNER_SESSIONS_BLOCKED, how),
        (reasons::SYNC_FAILED, message.to_owned()),
        (
            reasons::SYNC_SKIPPED,
            format!("Sync skipped: designer sessions blocked sync (policy={policy})"),
        ),
    ]
}

/// The status message of a sync with warnings: the first few, and how many more.
fn warnings_message(warnings: &[String]) -> Option<String> {
    const SHOWN: usize = 3;
    if warnings.is_empty() {
        return None;
    }
    let mut message = format!(
        "synced with {} warning(s): {}",
        warnings.len(),
        warnings[..warnings.len().min(SHOWN)].join("; ")
    );
    if warnings.len() > SHOWN {
        message.push_str(&format!("; and {} more", warnings.len() - SHOWN));
    }
    Some(message)
}

/// The status' result of a pipeline run that went through (a dry run's too, before it says
/// so).
fn synced_result(
    desired: &Desired,
    report: &SyncReport,
    started: std::time::Instant,
) -> SyncResult {
    SyncResult {
        time: jiff::Timestamp::now(),
        commit: Some(report.revision.id.clone()),
        reference: Some(desired.reference.clone()),
        status: SyncStatus::Synced,
        files_added: report.added.len() as u64,
        files_modified: report.modified.len() as u64,
        files_deleted: report.deleted.len() as u64,
        files_unchanged: report.unchanged,
        duration_ms: Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
        // What the sync left or skipped (a data directory not adopted, symlinks in the
        // repository) is news for whoever reads the status, not only the logs.
        message: warnings_message(&report.warnings),
    }
}

/// A sync's file counts in words.
fn file_counts(report: &SyncReport) -> String {
    format!(
        "{} added, {} modified, {} deleted, {} unchanged",
        report.added.len(),
        report.modified.len(),
        report.deleted.len(),
        report.unchanged
    )
}

/// Logs a sync that went through: at `info` when it changed something (files, a rescan, the
/// plan), else at `debug`.
fn log_synced(
    report: &SyncReport,
    scan_text: Option<&str>,
    started: std::time::Instant,
    changed_plan: bool,
) {
    let commit = short(&report.revision.id);
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    if report.changed() > 0 || scan_text.is_some() || changed_plan {
        tracing::info!(
            %commit,
            added = report.added.len() as u64,
            modified = report.modified.len() as u64,
            deleted = report.deleted.len() as u64,
            unchanged = report.unchanged,
            elapsed_ms,
            scan = scan_text.unwrap_or("-"),
            "synced"
        );
    } else {
        tracing::debug!(%commit, unchanged = report.unchanged, elapsed_ms, "resynced: nothing changed");
    }
}

fn failure_result(attempt: &Attempt, took: Option<Duration>) -> SyncResult {
    SyncResult {
        time: jiff::Timestamp::now(),
        commit: attempt.commit.clone(),
        reference: attempt.reference.clone(),
        status: SyncStatus::Error,
        duration_ms: took.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        message: Some(attempt.message.clone()),
        ..SyncResult::default()
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The first 7 characters of a commit.
fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_reach_the_status_message() {
        assert_eq!(warnings_message(&[]), None);
        let warnings: Vec<String> = (1..=5).map(|i| format!("w{i}")).collect();
        assert_eq!(
            warnings_message(&warnings[..1]).as_deref(),
            Some("synced with 1 warning(s): w1")
        );
        assert_eq!(
            warnings_message(&warnings).as_deref(),
            Some("synced with 5 warning(s): w1; w2; w3; and 2 more")
        );
    }

    #[test]
    fn error_chains_do_not_repeat_themselves() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "writing x")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let error = Outer(std::io::Error::other("disk full"));
        assert_eq!(chain(&error), "writing x: disk full");
    }

    #[test]
    fn designer_refusals_are_classified() {
        let error = stoker_sync::Error::DesignerSessionsOpen {
            sessions: vec!["alice".into()],
            policy: DesignerSessionPolicy::Fail,
            gave_up: None,
        };
        let failure = Failure::of(&error);
        assert_eq!(failure.reason, ErrorReason::DesignerSessions);
        assert_eq!(
            failure.blocked.map(|b| b.sessions),
            Some(vec!["alice".into()])
        );
    }

    #[test]
    fn pipeline_failures_are_labelled_by_their_category() {
        let template = stoker_sync::Error::from(stoker_core::Error::template("a", "bad"));
        let io = stoker_sync::Error::from(stoker_core::Error::io(
            "reading",
            "a",
            std::io::Error::other("x"),
        ));
        let task = stoker_sync::Error::Task("cancelled".into());
        let labels: Vec<&str> = [template, io, task]
            .iter()
            .map(|error| Failure::of(error).reason.as_str())
            .collect();
        assert_eq!(labels, ["config", "filesystem", "other"]);
    }

    #[test]
    fn failures_are_told_with_v0_5_1_reasons() {
        use DesignerSessionPolicy::{Fail, Proceed, Wait};
        let wait = Duration::from_secs(300);
        fn reasons_of(events: &[(&'static str, String)]) -> Vec<&'static str> {
            events.iter().map(|(reason, _)| *reason).collect()
        }
        // The first fetch failing: CloneFailed only.
        let events = failure_events(ErrorReason::Git, "no route", false, None, Proceed, wait);
        assert_eq!(
            events,
            [("CloneFailed", "Initial clone failed: no route".to_owned())]
        );
        // Later Git failures, and any other: SyncFailed.
        let events = failure_events(ErrorReason::Git, "no route", true, None, Proceed, wait);
        assert_eq!(events, [("SyncFailed", "no route".to_owned())]);
        let events = failure_events(ErrorReason::Config, "bad", false, None, Proceed, wait);
        assert_eq!(reasons_of(&events), ["SyncFailed"]);
        // Designer sessions.
        let blocked = Blocked {
            sessions: vec!["alice on demo".to_owned(), "bob on demo".to_owned()],
        };
        let events = failure_events(
            ErrorReason::DesignerSessions,
            "2 open",
            true,
            Some(&blocked),
            Fail,
            wait,
        );
        assert_eq!(
            reasons_of(&events),
            ["DesignerSessionsBlocked", "SyncFailed", "SyncSkipped"]
        );
        assert_eq!(
            events[0].1,
            "Designer sessions blocked sync: alice on demo, bob on demo"
        );
        assert_eq!(
            events[2].1,
            "Sync skipped: designer sessions blocked sync (policy=fail)"
        );
        let events = failure_events(
            ErrorReason::DesignerSessions,
            "2 open",
            true,
            Some(&blocked),
            Wait,
            wait,
        );
        assert_eq!(
            events[0].1,
            "Designer sessions blocked sync (5m0s timeout): alice on demo, bob on demo"
        );
        assert!(events[2].1.ends_with("(policy=wait)"));
    }

    #[test]
    fn earliest_of_two_deadlines() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        assert_eq!(earliest(Some(later), Some(now)), Some(now));
        assert_eq!(earliest(None, Some(now)), Some(now));
        assert_eq!(earliest(None, None), None);
    }
}
