//! [`Pipeline`]: Source → Strategy → Gateway → Notifiers, once; its [`Outcome`] says what
//! the gateway said.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stoker_core::{
    DesignerSessionPolicy, Event, EventKind, Gateway, GatewayErrorKind, Notifier, Profile,
    Revision, ScanOutcome, Source, SyncReport, SyncRequest, TemplateContext,
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

/// What one run did: the sync's report, and what the gateway said before and after it. A run
/// whose files landed returns this even when the gateway then failed to rescan them: the caller
/// decides what that means (a status, an exit code, a retry).
#[derive(Debug)]
pub struct Outcome {
    /// The sync's report (a dry run's too).
    pub report: SyncReport,
    /// The Designer-session check before the sync.
    pub designers: DesignerCheck,
    /// The rescan after it.
    pub rescan: Rescan,
}

impl Outcome {
    /// Files changed but the gateway did not rescan them: it was down, or the rescan failed.
    pub fn rescan_owed(&self) -> bool {
        matches!(self.rescan, Rescan::Owed | Rescan::Failed { .. })
    }
}

/// The gateway's Designer-session check before a sync that went ahead. (A sync the open
/// sessions held back is [`Error::DesignerSessionsOpen`]: nothing was written.)
#[derive(Debug)]
pub enum DesignerCheck {
    /// Not asked: no gateway, or a dry run.
    NotAsked,
    /// The gateway answered: these sessions were open at the last check (none, or some that
    /// `proceed` synced past).
    Answered(Vec<String>),
    /// The gateway is not running (no answer, or 503 while it starts) and
    /// [`CheckFailure::SyncWhenDown`] let the files be synced without it.
    Down(stoker_core::Error),
    /// The check failed and [`CheckFailure::SyncUnderProceed`] let the sync go on.
    Failed(stoker_core::Error),
}

/// The rescan after a sync.
#[derive(Debug)]
pub enum Rescan {
    /// Not asked: no gateway, a dry run, or no file changed.
    NotAsked,
    /// Files changed, but the gateway was down at the check: not asked, owed.
    Owed,
    /// The gateway rescanned.
    Done {
        /// Its answer.
        scan: ScanOutcome,
        /// How long it took.
        took: Duration,
    },
    /// The rescan failed; the files are in place all the same.
    Failed {
        /// Why.
        error: stoker_core::Error,
        /// How long it took.
        took: Duration,
    },
}

/// What a run does when the gateway's Designer-session check itself fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CheckFailure {
    /// The sync fails with the gateway's error.
    #[default]
    Stop,
    /// A gateway that is not running (nothing answers, or 503 while it starts) has no Designer
    /// connected: the files are synced and it is not asked to rescan ([`Rescan::Owed`]). Any
    /// other failure stops the sync. (The one-shot command.)
    SyncWhenDown,
    /// Under `designerSessionPolicy: proceed`, whose answer would not stop the sync anyway
    /// (no API key yet, say), the sync goes on and the gateway is still asked to rescan; under
    /// the other policies the sync fails. (The sidecar, which checks liveness first.)
    SyncUnderProceed,
}

/// Called with the open sessions each time the gateway answers the Designer check.
type SessionsObserver = Arc<dyn Fn(&[String]) + Send + Sync>;

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
/// let outcome = pipeline.run(SyncJob {
///     reference: "HEAD".into(),
///     profile: Profile::new("p", vec![mapping]),
///     context: TemplateContext::default(),
///     live: live.path().to_path_buf(),
///     dry_run: false,
/// }).await.unwrap();
/// assert_eq!(outcome.report.added[0].path, "data/a.json");
/// # }
/// ```
pub struct Pipeline {
    source: Arc<dyn Source>,
    strategy: Arc<MergeStrategy>,
    gateway: Option<Arc<dyn Gateway>>,
    notifiers: Vec<Arc<dyn Notifier>>,
    check_failure: CheckFailure,
    on_designer_sessions: Option<SessionsObserver>,
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
            check_failure: CheckFailure::Stop,
            on_designer_sessions: None,
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

    /// What to do when the Designer-session check fails (default: [`CheckFailure::Stop`]).
    pub fn with_check_failure(mut self, check_failure: CheckFailure) -> Self {
        self.check_failure = check_failure;
        self
    }

    /// Calls `observe` with the open sessions each time the gateway answers the Designer check
    /// (the `wait` policy asks again and again): for a gauge that follows a long wait.
    pub fn on_designer_sessions(
        mut self,
        observe: impl Fn(&[String]) + Send + Sync + 'static,
    ) -> Self {
        self.on_designer_sessions = Some(Arc::new(observe));
        self
    }

    /// Adds a notifier.
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifiers.push(notifier);
        self
    }

    /// Runs the job once. `Err` means the sync did not happen or did not finish; once files
    /// landed, whatever the gateway then said is in the [`Outcome`].
    #[tracing::instrument(skip_all, fields(reference = %job.reference, profile = %job.profile.name, live = %job.live.display()))]
    pub async fn run(&self, job: SyncJob) -> Result<Outcome> {
        let gateway_name = job.context.gateway_name.clone().unwrap_or_default();
        let outcome = self.run_inner(job).await;
        let event = event_of(&outcome, gateway_name);
        for notifier in &self.notifiers {
            if let Err(error) = notifier.notify(&event).await {
                tracing::warn!(%error, "notifier failed");
            }
        }
        outcome
    }

    async fn run_inner(&self, job: SyncJob) -> Result<Outcome> {
        // Decoding the manifest takes about as long as resolving, fetching and diffing a
        // cached commit: do both at once.
        self.strategy.read_manifest_ahead(&job.live);
        let revision: Revision = self.source.resolve(&job.reference).await?;
        tracing::info!(revision = %revision, source = self.source.kind(), "resolved");
        let artifact = self.source.fetch(&revision).await?;
        let designers = if job.dry_run {
            DesignerCheck::NotAsked
        } else {
            self.check_designers(job.profile.designer_session_policy)
                .await?
        };
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
        let rescan = self.rescan(&report, &designers).await;
        Ok(Outcome {
            report,
            designers,
            rescan,
        })
    }

    /// Asks the gateway to rescan when files changed, unless it was down at the check.
    async fn rescan(&self, report: &SyncReport, designers: &DesignerCheck) -> Rescan {
        let Some(gateway) = &self.gateway else {
            return Rescan::NotAsked;
        };
        if report.dry_run || report.changed() == 0 {
            return Rescan::NotAsked;
        }
        if let DesignerCheck::Down(_) = designers {
            tracing::debug!(
                changed = report.changed(),
                "the gateway was down before the sync: not asking it to rescan"
            );
            return Rescan::Owed;
        }
        let started = Instant::now();
        let answer = gateway.post_sync(report).await;
        let took = started.elapsed();
        match answer {
            Ok(scan) => Rescan::Done { scan, took },
            Err(error) => Rescan::Failed { error, took },
        }
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

    /// The Designer-session check: `Ok` when the sync may go ahead (and what was seen), the
    /// refusal or the check's error otherwise. The `wait` policy asks every `designer_poll`
    /// until `designer_wait` has passed.
    async fn check_designers(&self, policy: DesignerSessionPolicy) -> Result<DesignerCheck> {
        let Some(gateway) = &self.gateway else {
            return Ok(DesignerCheck::NotAsked);
        };
        let deadline = Instant::now() + self.designer_wait;
        loop {
            let sessions = match gateway.pre_sync().await {
                Ok(check) => check.designer_sessions,
                Err(error) => return self.check_failed(error, policy),
            };
            if let Some(observe) = &self.on_designer_sessions {
                observe(&sessions);
            }
            if sessions.is_empty() {
                return Ok(DesignerCheck::Answered(sessions));
            }
            let gave_up = match policy {
                DesignerSessionPolicy::Proceed => {
                    tracing::warn!(sessions = ?sessions, "Designer sessions are open; syncing anyway (designerSessionPolicy: proceed)");
                    return Ok(DesignerCheck::Answered(sessions));
                }
                DesignerSessionPolicy::Fail => None,
                DesignerSessionPolicy::Wait if Instant::now() >= deadline => {
                    Some(self.designer_wait)
                }
                DesignerSessionPolicy::Wait => {
                    tracing::info!(sessions = ?sessions, "Designer sessions are open; waiting (designerSessionPolicy: wait)");
                    tokio::time::sleep(self.designer_poll).await;
                    continue;
                }
            };
            return Err(Error::DesignerSessionsOpen {
                sessions,
                policy,
                gave_up,
            });
        }
    }

    /// A Designer check that failed: the sync goes on or stops, as [`CheckFailure`] says.
    fn check_failed(
        &self,
        error: stoker_core::Error,
        policy: DesignerSessionPolicy,
    ) -> Result<DesignerCheck> {
        match self.check_failure {
            CheckFailure::SyncWhenDown if is_down(&error) => {
                tracing::warn!(error = %stoker_core::error::chain(&error), "the gateway is not answering: syncing the files only");
                Ok(DesignerCheck::Down(error))
            }
            CheckFailure::SyncUnderProceed if policy == DesignerSessionPolicy::Proceed => {
                tracing::warn!(error = %stoker_core::error::chain(&error), "could not list Designer sessions; syncing anyway (designerSessionPolicy: proceed)");
                Ok(DesignerCheck::Failed(error))
            }
            _ => Err(error.into()),
        }
    }
}

/// Whether a failed Designer-session check means the gateway is not running (yet): nothing
/// answered, or it answered 503 (starting, commissioning). Decided on the error's kind and
/// status, not its text.
fn is_down(error: &stoker_core::Error) -> bool {
    matches!(
        error,
        stoker_core::Error::Gateway {
            kind: GatewayErrorKind::Unreachable,
            ..
        } | stoker_core::Error::Gateway {
            status: Some(503),
            ..
        }
    )
}

/// The notifiers' event for a run: completed, or failed (a failed rescan included: the files
/// landed, but the gateway does not serve them yet).
fn event_of(outcome: &Result<Outcome>, gateway: String) -> Event {
    let failed = |message: String| Event {
        kind: EventKind::SyncFailed,
        gateway: gateway.clone(),
        revision: None,
        message,
    };
    match outcome {
        Err(error) => failed(error.to_string()),
        Ok(Outcome {
            rescan: Rescan::Failed { error, .. },
            ..
        }) => failed(error.to_string()),
        Ok(Outcome { report, .. }) => Event {
            kind: EventKind::SyncCompleted,
            gateway: gateway.clone(),
            revision: Some(report.revision.clone()),
            message: format!(
                "{} added, {} modified, {} deleted, {} unchanged",
                report.added.len(),
                report.modified.len(),
                report.deleted.len(),
                report.unchanged
            ),
        },
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Mutex;

    use stoker_core::{EndpointCall, Health, LocalSource, Mapping, PreSyncCheck};

    type Boxed<'a, T> = Pin<Box<dyn Future<Output = stoker_core::Result<T>> + Send + 'a>>;

    /// A gateway that answers the Designer check with `sessions` (or fails it with `check`)
    /// and rescans (or fails with `scan`: an HTTP status).
    #[derive(Default)]
    struct Fake {
        sessions: Vec<String>,
        check: Option<(GatewayErrorKind, Option<u16>)>,
        scan: Option<u16>,
        scans: Mutex<u32>,
    }

    // What `#[async_trait]` generates, written out (this crate does not depend on it).
    impl Gateway for Fake {
        fn pre_sync<'s, 'a>(&'s self) -> Boxed<'a, PreSyncCheck>
        where
            's: 'a,
            Self: 'a,
        {
            Box::pin(async move {
                match self.check {
                    Some((kind, status)) => Err(gateway_error(kind, status)),
                    None => Ok(PreSyncCheck {
                        designer_sessions: self.sessions.clone(),
                    }),
                }
            })
        }

        fn post_sync<'s, 'r, 'a>(&'s self, _: &'r SyncReport) -> Boxed<'a, ScanOutcome>
        where
            's: 'a,
            'r: 'a,
            Self: 'a,
        {
            Box::pin(async move {
                *self
                    .scans
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
                if let Some(status) = self.scan {
                    return Err(gateway_error(GatewayErrorKind::Status, Some(status)));
                }
                let call = |endpoint| EndpointCall {
                    method: "POST",
                    endpoint,
                    status: 200,
                    attempts: 1,
                };
                Ok(ScanOutcome {
                    projects: call("/data/api/v1/scan/projects"),
                    config: call("/data/api/v1/scan/config"),
                })
            })
        }

        fn health<'s, 'a>(&'s self) -> Boxed<'a, Health>
        where
            's: 'a,
            Self: 'a,
        {
            Box::pin(async move { Ok(Health::Up) })
        }
    }

    struct Run {
        _dirs: (tempfile::TempDir, tempfile::TempDir),
        live: std::path::PathBuf,
        outcome: Result<Outcome>,
        scans: u32,
    }

    /// Syncs one new file through `fake` under `policy`.
    async fn sync_through(fake: Fake, policy: DesignerSessionPolicy, failure: CheckFailure) -> Run {
        let repo = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(repo.path().join("a.json"), "{}").unwrap_or_else(|e| panic!("{e}"));
        let live = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let fake = Arc::new(fake);
        let mut pipeline = Pipeline::new(Arc::new(LocalSource::new(repo.path())))
            .with_gateway(fake.clone())
            .with_check_failure(failure);
        pipeline.designer_wait = Duration::ZERO;
        let mapping = Mapping {
            source: ".".into(),
            destination: "data".into(),
            ..Default::default()
        };
        let mut profile = Profile::new("p", vec![mapping]);
        profile.designer_session_policy = policy;
        let outcome = pipeline
            .run(SyncJob {
                reference: "HEAD".into(),
                profile,
                context: TemplateContext::default(),
                live: live.path().to_path_buf(),
                dry_run: false,
            })
            .await;
        let scans = *fake
            .scans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Run {
            live: live.path().join("data/a.json"),
            _dirs: (repo, live),
            outcome,
            scans,
        }
    }

    #[tokio::test]
    async fn a_failed_rescan_comes_back_with_the_report_of_the_files_that_landed() {
        let fake = Fake {
            scan: Some(500),
            ..Fake::default()
        };
        let run = sync_through(fake, DesignerSessionPolicy::Proceed, CheckFailure::Stop).await;
        let outcome = run.outcome.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(outcome.report.added.len(), 1);
        assert!(run.live.is_file());
        assert!(matches!(outcome.designers, DesignerCheck::Answered(ref s) if s.is_empty()));
        assert!(
            matches!(outcome.rescan, Rescan::Failed { .. }),
            "{outcome:?}"
        );
        assert!(outcome.rescan_owed());
    }

    #[tokio::test]
    async fn a_rescan_that_succeeds_is_the_gateways_answer() {
        let run = sync_through(
            Fake::default(),
            DesignerSessionPolicy::Fail,
            CheckFailure::Stop,
        )
        .await;
        let outcome = run.outcome.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(outcome.rescan, Rescan::Done { .. }), "{outcome:?}");
        assert!(!outcome.rescan_owed());
        assert_eq!(run.scans, 1);
    }

    #[tokio::test]
    async fn open_sessions_hold_the_sync_back_as_the_policy_says() {
        let open = || Fake {
            sessions: vec!["alice".into()],
            ..Fake::default()
        };
        let run = sync_through(open(), DesignerSessionPolicy::Fail, CheckFailure::Stop).await;
        let Err(error) = run.outcome else {
            panic!("synced through an open session")
        };
        assert!(matches!(
            &error,
            Error::DesignerSessionsOpen { policy: DesignerSessionPolicy::Fail, gave_up: None, sessions } if sessions == &["alice"]
        ));
        assert!(
            error.to_string().contains("designerSessionPolicy is fail,"),
            "{error}"
        );
        assert!(!run.live.exists());
        assert_eq!(run.scans, 0);

        let run = sync_through(open(), DesignerSessionPolicy::Wait, CheckFailure::Stop).await;
        let Err(error) = run.outcome else {
            panic!("synced through an open session")
        };
        assert!(matches!(
            error,
            Error::DesignerSessionsOpen {
                policy: DesignerSessionPolicy::Wait,
                gave_up: Some(_),
                ..
            }
        ));
        assert!(
            error
                .to_string()
                .contains("wait (gave up after the deadline)"),
            "{error}"
        );

        let run = sync_through(open(), DesignerSessionPolicy::Proceed, CheckFailure::Stop).await;
        let outcome = run.outcome.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(outcome.designers, DesignerCheck::Answered(ref s) if s == &["alice"]));
    }

    #[tokio::test]
    async fn a_failed_check_stops_or_syncs_as_the_caller_says() {
        let down = || Fake {
            check: Some((GatewayErrorKind::Unreachable, None)),
            ..Fake::default()
        };
        let run = sync_through(down(), DesignerSessionPolicy::Fail, CheckFailure::Stop).await;
        assert!(matches!(run.outcome, Err(Error::Core(_))));
        assert!(!run.live.exists());

        // Down: the files, no rescan, owed.
        let run = sync_through(
            down(),
            DesignerSessionPolicy::Fail,
            CheckFailure::SyncWhenDown,
        )
        .await;
        let outcome = run.outcome.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(outcome.designers, DesignerCheck::Down(_)));
        assert!(matches!(outcome.rescan, Rescan::Owed));
        assert!(outcome.rescan_owed());
        assert_eq!(run.scans, 0);

        // A wrong key is not "down".
        let refused = || Fake {
            check: Some((GatewayErrorKind::Auth, Some(401))),
            ..Fake::default()
        };
        let run = sync_through(
            refused(),
            DesignerSessionPolicy::Proceed,
            CheckFailure::SyncWhenDown,
        )
        .await;
        assert!(matches!(run.outcome, Err(Error::Core(_))));

        // Under proceed the sidecar syncs past it, and still asks for the rescan.
        let run = sync_through(
            refused(),
            DesignerSessionPolicy::Proceed,
            CheckFailure::SyncUnderProceed,
        )
        .await;
        let outcome = run.outcome.unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(outcome.designers, DesignerCheck::Failed(_)));
        assert!(matches!(outcome.rescan, Rescan::Done { .. }));
        let run = sync_through(
            refused(),
            DesignerSessionPolicy::Fail,
            CheckFailure::SyncUnderProceed,
        )
        .await;
        assert!(matches!(run.outcome, Err(Error::Core(_))));
    }

    fn gateway_error(kind: GatewayErrorKind, status: Option<u16>) -> stoker_core::Error {
        stoker_core::Error::Gateway {
            method: "GET",
            url: "http://127.0.0.1:1/data/api/v1/designers".into(),
            status,
            kind,
            message: "test".into(),
            source: None,
        }
    }

    #[test]
    fn only_no_answer_or_503_counts_as_down() {
        assert!(is_down(&gateway_error(GatewayErrorKind::Unreachable, None)));
        assert!(is_down(&gateway_error(GatewayErrorKind::Status, Some(503))));
        assert!(!is_down(&gateway_error(
            GatewayErrorKind::Status,
            Some(500)
        )));
        assert!(!is_down(&gateway_error(GatewayErrorKind::Auth, Some(401))));
        assert!(!is_down(&gateway_error(
            GatewayErrorKind::Certificate,
            None
        )));
        assert!(!is_down(&stoker_core::Error::template("t", "m")));
    }
}
