//! [`MergeStrategy`]: the engine behind the `SyncStrategy` trait.

use stoker_core::{SyncReport, SyncRequest, SyncStrategy};

use crate::apply::{self, ApplyOptions};
use crate::error::{Error, Result};
use crate::manifest::ReadAhead;
use crate::plan::{self, Plan, PlanOptions};

/// Stoker's sync engine: ordered overlay of mappings into the live directory, scoped orphan
/// cleanup, atomic writes (DESIGN section 3).
///
/// ```
/// use std::sync::Arc;
/// use stoker_core::{LocalSource, Mapping, Profile, Revision, SyncRequest, SyncStrategy, TemplateContext};
/// use stoker_sync::MergeStrategy;
///
/// let repo = tempfile::tempdir().unwrap();
/// std::fs::create_dir_all(repo.path().join("projects/demo")).unwrap();
/// std::fs::write(repo.path().join("projects/demo/project.json"), "{}").unwrap();
/// let live = tempfile::tempdir().unwrap();
///
/// let mapping = Mapping { source: "projects".into(), destination: "projects".into(), ..Default::default() };
/// let request = SyncRequest {
///     artifact: Arc::new(LocalSource::new(repo.path()).artifact(Revision::new("r1"))),
///     profile: Profile::new("default", vec![mapping]),
///     context: TemplateContext::default(),
///     live: live.path().to_path_buf(),
///     dry_run: false,
///     changed_paths: None,
///     previous: None,
/// };
/// let engine = MergeStrategy::default();
/// let report = engine.sync(&request).unwrap();
/// assert_eq!(report.added.len(), 1);
/// assert_eq!(report.projects, vec!["demo"]);
/// // A second run changes nothing.
/// assert_eq!(engine.sync(&request).unwrap().changed(), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct MergeStrategy {
    /// How plans are applied.
    pub options: ApplyOptions,
    /// How plans are made.
    pub planning: PlanOptions,
    /// The manifest of the next plan, read ahead ([`MergeStrategy::read_manifest_ahead`]).
    ahead: ReadAhead,
}

impl MergeStrategy {
    /// An engine with the given apply options.
    pub fn new(options: ApplyOptions) -> Self {
        MergeStrategy {
            options,
            planning: PlanOptions::default(),
            ahead: ReadAhead::default(),
        }
    }

    /// Uses these planning options.
    pub fn with_planning(mut self, planning: PlanOptions) -> Self {
        self.planning = planning;
        self
    }

    /// Starts reading `live`'s manifest on another thread, for the next plan of `live` to take
    /// (see [`ReadAhead`]): a caller that resolves and fetches first (the pipeline) hides most
    /// of the read behind that work.
    pub fn read_manifest_ahead(&self, live: &std::path::Path) {
        self.ahead.start(live);
    }

    /// Plans and applies in one call.
    pub fn sync(&self, request: &SyncRequest) -> Result<SyncReport> {
        let plan = self.plan(request)?;
        self.apply(plan)
    }
}

impl SyncStrategy for MergeStrategy {
    type Plan = Plan;
    type Error = Error;

    #[tracing::instrument(level = "debug", skip_all, fields(live = %request.live.display(), profile = %request.profile.name, revision = %request.artifact.revision()))]
    fn plan(&self, request: &SyncRequest) -> Result<Plan> {
        plan::plan_reading(
            request,
            &self.planning,
            Some(&self.ahead),
            self.options.io_threads,
        )
    }

    #[tracing::instrument(level = "debug", skip_all, fields(live = %plan.target.live.display()))]
    fn apply(&self, plan: Plan) -> Result<SyncReport> {
        apply::apply(plan, &self.options)
    }
}
