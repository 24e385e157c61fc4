//! [`Pipeline`]: Source → Strategy → Gateway → Notifiers, once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stoker_core::{
    DesignerSessionPolicy, Event, EventKind, Gateway, Notifier, Profile, Revision, Source,
    SyncReport, SyncRequest, TemplateContext,
};

use crate::error::{Error, Result};
use crate::strategy::MergeStrategy;

/// One sync to run.
#[derive(Debug, Clone)]
pub struct SyncJob {
    /// The reference to resolve (`main`, `v2.2.3`, a SHA).
    pub reference: String,
    /// The resolved profile.
    pub profile: Profile,
    /// Template variables; `Ref` and `Commit` are filled in from the resolved revision.
    pub context: TemplateContext,
    /// The live directory.
    pub live: PathBuf,
    /// Report only.
    pub dry_run: bool,
}

/// Runs one sync end to end: resolve, fetch, check the gateway's Designer sessions, plan and
/// apply (on a blocking thread), ask the gateway to rescan when files changed, notify.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use stoker_core::{LocalSource, Mapping, Profile, TemplateContext};
/// use stoker_sync::pipeline::{Pipeline, SyncJob};
///
/// let repo = tempfile::tempdir().unwrap();
/// std::fs::write(repo.path().join("a.json"), "{}").unwrap();
/// let live = tempfile::tempdir().unwrap();
/// let pipeline = Pipeline::new(Arc::new(LocalSource::new(repo.path())));
/// let mapping = Mapping { source: ".".into(), destination: "data".into(), ..Default::default() };
/// let report = pipeline.run(SyncJob {
///     reference: "HEAD".into(),
///     profile: Profile::new("p", vec![mapping]),
///     context: TemplateContext::default(),
///     live: live.path().to_path_buf(),
///     dry_run: false,
/// }).await.unwrap();
/// assert_eq!(report.added[0].path, "data/a.json");
/// # }
/// ```
pub struct Pipeline {
    source: Arc<dyn Source>,
    strategy: Arc<MergeStrategy>,
    gateway: Option<Arc<dyn Gateway>>,
    notifiers: Vec<Arc<dyn Notifier>>,
    /// How long the `wait` Designer policy waits for sessions to close.
    pub designer_wait: Duration,
    /// How often the `wait` policy asks again.
    pub designer_poll: Duration,
}

impl Pipeline {
    /// A pipeline with the default engine, no gateway and no notifiers.
    pub fn new(source: Arc<dyn Source>) -> Self {
        Pipeline {
            source,
            strategy: Arc::new(MergeStrategy::default()),
            gateway: None,
            notifiers: Vec::new(),
            designer_wait: Duration::from_secs(300),
            designer_poll: Duration::from_secs(10),
        }
    }

    /// Uses this engine.
    pub fn with_strategy(mut self, strategy: MergeStrategy) -> Self {
        self.strategy = Arc::new(strategy);
        self
    }

    /// Checks Designer sessions before and asks for a rescan after each sync.
    pub fn with_gateway(mut self, gateway: Arc<dyn Gateway>) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// Adds a notifier.
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    /// Runs the job once.
    #[tracing::instrument(skip_all, fields(reference = %job.reference, profile = %job.profile.name, live = %job.live.display()))]
    pub async fn run(&self, job: SyncJob) -> Result<SyncReport> {
        let gateway_name = job.context.gateway_name.clone().unwrap_or_default();
        let outcome = self.run_inner(job).await;
        let event = match &outcome {
            Ok(report) => Event {
                kind: EventKind::SyncCompleted,
                gateway: gateway_name,
                revision: Some(report.revision.clone()),
                message: format!(
                    "{} added, {} modified, {} deleted, {} unchanged",
                    report.added.len(),
                    report.modified.len(),
                    report.deleted.len(),
                    report.unchanged
                ),
            },
            Err(error) => Event {
                kind: EventKind::SyncFailed,
                gateway: gateway_name,
                revision: None,
                message: error.to_string(),
            },
        };
        for notifier in &self.notifiers {
            if let Err(error) = notifier.notify(&event).await {
                tracing::warn!(%error, "notifier failed");
            }
        }
        outcome
    }

    async fn run_inner(&self, job: SyncJob) -> Result<SyncReport> {
        // Decoding the manifest takes about as long as resolving, fetching and diffing a
        // cached commit: do both at once.
        self.strategy.read_manifest_ahead(&job.live);
        let revision: Revision = self.source.resolve(&job.reference).await?;
        tracing::info!(revision = %revision, source = self.source.kind(), "resolved");
        let artifact = self.source.fetch(&revision).await?;
        if !job.dry_run {
            self.check_designers(job.profile.designer_session_policy)
                .await?;
        }
        let mut context = job.context;
        context.reference = Some(job.reference.clone());
        context.commit = Some(revision.id.clone());
        let (previous, changed_paths) = self.changes_since_last_sync(&job.live, &revision).await;
        let request = SyncRequest {
            artifact,
            profile: job.profile,
            context,
            live: job.live,
            dry_run: job.dry_run,
            changed_paths,
            previous,
        };
        let strategy = self.strategy.clone();
        let report = tokio::task::spawn_blocking(move || strategy.sync(&request))
            .await
            .map_err(|error| Error::Task(error.to_string()))??;
        if let Some(gateway) = &self.gateway
            && !report.dry_run
            && report.changed() > 0
        {
            gateway.post_sync(&report).await?;
        }
        Ok(report)
    }

    /// The revision the live directory was last synced to (from its manifest) and, when the
    /// source can tell, the source paths changed since. A failed diff (the previous commit is
    /// beyond a shallow cache's history, say) is logged and means "unknown": the engine then
    /// compares everything, as it always may.
    async fn changes_since_last_sync(
        &self,
        live: &std::path::Path,
        revision: &Revision,
    ) -> (Option<Revision>, Option<Vec<String>>) {
        let manifest_live = live.to_path_buf();
        let previous =
            tokio::task::spawn_blocking(move || crate::manifest::last_revision(&manifest_live))
                .await
                .ok()
                .flatten();
        let Some(previous) = previous else {
            return (None, None);
        };
        if previous.id == revision.id {
            return (Some(previous), Some(Vec::new()));
        }
        let started = Instant::now();
        let changed = match self.source.changed_paths(&previous, revision).await {
            Ok(changed) => changed,
            Err(error) => {
                tracing::warn!(%error, from = %previous, to = %revision, "could not diff the revisions; planning every file");
                None
            }
        };
        tracing::debug!(
            from = %previous,
            to = %revision,
            changed = changed.as_ref().map(Vec::len),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "changes since the last sync"
        );
        (Some(previous), changed)
    }

    async fn check_designers(&self, policy: DesignerSessionPolicy) -> Result<()> {
        let Some(gateway) = &self.gateway else {
            return Ok(());
        };
        let deadline = Instant::now() + self.designer_wait;
        loop {
            let sessions = gateway.pre_sync().await?.designer_sessions;
            if sessions.is_empty() {
                return Ok(());
            }
            match policy {
                DesignerSessionPolicy::Proceed => {
                    tracing::warn!(sessions = ?sessions, "Designer sessions are open; syncing anyway (designerSessionPolicy: proceed)");
                    return Ok(());
                }
                DesignerSessionPolicy::Fail => {
                    return Err(Error::DesignerSessionsOpen {
                        sessions,
                        policy: "fail",
                    });
                }
                DesignerSessionPolicy::Wait if Instant::now() >= deadline => {
                    return Err(Error::DesignerSessionsOpen {
                        sessions,
                        policy: "wait (gave up after the deadline)",
                    });
                }
                DesignerSessionPolicy::Wait => {
                    tracing::info!(sessions = ?sessions, "Designer sessions are open; waiting (designerSessionPolicy: wait)");
                    tokio::time::sleep(self.designer_poll).await;
                }
            }
        }
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("source", &self.source.kind())
            .field("gateway", &self.gateway.is_some())
            .field("notifiers", &self.notifiers.len())
            .finish_non_exhaustive()
    }
}
