//! Planning: compare the desired set with the live directory and decide every step.
//!
//! [`plan_with`] tries the incremental plan first ([`incremental`]: only the destinations of
//! the paths the source changed) and otherwise makes the full one ([`full`]: every desired file
//! compared with the live directory). Both judge each file with the same comparison
//! ([`compare`]) and make the same [`Plan`]: the operations, what is kept as it is, how the
//! manifest is to be updated, and what the report needs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use stoker_core::{Artifact, ContentId, Revision, SyncRequest, TemplateContext};

use crate::content::Recipe;
use crate::desired::{self, DesiredFile, DesiredSet};
use crate::error::Result;
use crate::journal;
use crate::live::{DirRecord, LiveKind};
use crate::lock::LiveLock;
use crate::manifest::{self, Manifest, ManifestEntry, PlanRecord};
use crate::warning::Warning;

mod adoption;
mod compare;
mod full;
pub mod incremental;

pub(crate) use adoption::ADOPT_HOW;

/// Whether a write creates or replaces a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// Nothing (or only cleared entries) at the path.
    Add,
    /// A different file, a symlink or a special file is replaced.
    Modify,
}

/// One file to write.
#[derive(Debug, Clone)]
pub struct Write {
    /// Destination path.
    pub path: String,
    /// Add or modify.
    pub kind: WriteKind,
    /// What to write.
    pub file: DesiredFile,
    /// Content id of what is replaced, when known.
    pub previous_id: Option<ContentId>,
    /// For a transformed file: the content id the plan computed (or reused) and its recipe,
    /// recorded in the manifest when the written content has that id.
    pub planned: Option<(ContentId, Option<Recipe>)>,
}

/// One live entry to remove.
#[derive(Debug, Clone)]
pub struct Delete {
    /// Live path.
    pub path: String,
    /// What it is.
    pub kind: LiveKind,
    /// Its content id, when the manifest vouches for it.
    pub previous_id: Option<ContentId>,
}

/// Everything `apply` will do, decided up front.
pub struct Plan {
    /// Where, from what, and under which lock.
    pub(crate) target: Target,
    /// The desired set the plan was computed from (for an incremental plan, only the files it
    /// looked at).
    pub(crate) desired: DesiredSet,
    /// The file-system operations, in the order `apply` carries them out.
    pub(crate) ops: Ops,
    /// Desired files already up to date.
    pub(crate) kept: Kept,
    /// How the manifest is to be updated once the operations are done.
    pub(crate) record: ManifestUpdate,
    /// What the report needs besides the operations.
    pub(crate) report: ReportInputs,
}

/// Where a plan applies, from what, and the lock that keeps other syncs out meanwhile.
pub(crate) struct Target {
    pub(crate) live: PathBuf,
    pub(crate) dry_run: bool,
    pub(crate) artifact: Arc<dyn Artifact>,
    pub(crate) context: TemplateContext,
    pub(crate) profile: String,
    pub(crate) started: Instant,
    pub(crate) _lock: Option<LiveLock>,
}

impl Target {
    fn new(
        request: &SyncRequest,
        context: TemplateContext,
        started: Instant,
        lock: Option<LiveLock>,
    ) -> Self {
        Target {
            live: request.live.clone(),
            dry_run: request.dry_run,
            artifact: request.artifact.clone(),
            context,
            profile: request.profile.name.clone(),
            started,
            _lock: lock,
        }
    }
}

/// The file-system operations of a plan.
#[derive(Default)]
pub(crate) struct Ops {
    /// Entries removed before writing because a desired path needs their place (deepest
    /// first).
    pub(crate) clears: Vec<Delete>,
    /// Files to write, sorted by path.
    pub(crate) writes: Vec<Write>,
    /// Orphans to delete, sorted by path.
    pub(crate) deletes: Vec<Delete>,
}

/// Desired files a plan leaves as they are.
#[derive(Default)]
pub(crate) struct Kept {
    /// Compared and found up to date, with their manifest records.
    pub(crate) unchanged: Vec<(String, ManifestEntry)>,
    /// Incremental plans: how many more are up to date as the manifest records them (not
    /// looked at, not in `unchanged`).
    pub(crate) carried: usize,
}

/// How `apply` updates the manifest.
pub(crate) enum ManifestUpdate {
    /// The manifest on disk already describes the result (and vouches for every file and
    /// directory): it is not rewritten.
    Current,
    /// The manifest is written whole.
    Rewrite {
        /// What the scan saw of each directory (`apply` updates those it changes).
        dirs: BTreeMap<String, DirRecord>,
        /// How the desired set was made (`None` when the profile's mappings do not render;
        /// the plan then failed anyway).
        plan: Option<PlanRecord>,
    },
    /// Incremental plans: what changed is appended to the manifest's log.
    Append {
        /// The manifest as read (its `dirs` moved to `dirs`), which the delta extends.
        base: Box<Manifest>,
        /// The directory records carried over (`apply` updates those it changes).
        dirs: BTreeMap<String, DirRecord>,
        /// Directory records dropped before `apply` (those the manifest's clock tick cannot
        /// vouch for).
        dir_changes: Vec<(String, Option<DirRecord>)>,
        /// Recorded destinations no longer desired (dropped from the manifest).
        forgotten: Vec<String>,
        /// How the desired set was made.
        plan: PlanRecord,
    },
}

/// What the report needs besides the operations.
pub(crate) struct ReportInputs {
    /// Warnings gathered while planning.
    pub(crate) warnings: Vec<Warning>,
    /// The revision the live directory was at.
    pub(crate) previous: Option<Revision>,
    /// Ignition projects the desired set holds.
    pub(crate) projects: Vec<String>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("live", &self.target.live)
            .field("revision", self.target.artifact.revision())
            .field("writes", &self.ops.writes.len())
            .field("clears", &self.ops.clears.len())
            .field("deletes", &self.ops.deletes.len())
            .field("unchanged", &self.unchanged())
            .finish_non_exhaustive()
    }
}

impl Plan {
    /// Files to write, sorted by path.
    pub fn writes(&self) -> &[Write] {
        &self.ops.writes
    }

    /// Orphans to delete (including entries cleared to make room), sorted by path.
    pub fn deletes(&self) -> impl Iterator<Item = &Delete> {
        self.ops.clears.iter().chain(self.ops.deletes.iter())
    }

    /// Number of desired files already up to date.
    pub fn unchanged(&self) -> usize {
        self.kept.unchanged.len() + self.kept.carried
    }

    /// The desired set the plan was computed from. For an incremental plan its files are only
    /// those the plan looked at (the changed paths' destinations).
    pub fn desired(&self) -> &DesiredSet {
        &self.desired
    }

    /// True when only the destinations of the paths the source changed were planned (see
    /// [`incremental`]).
    pub fn is_incremental(&self) -> bool {
        matches!(self.record, ManifestUpdate::Append { .. })
    }

    /// Warnings gathered while planning.
    pub fn warnings(&self) -> &[Warning] {
        &self.report.warnings
    }

    /// True when applying would change nothing.
    pub fn is_noop(&self) -> bool {
        self.ops.writes.is_empty() && self.ops.clears.is_empty() && self.ops.deletes.is_empty()
    }
}

/// How plans are made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Compare every desired file with the live directory on every sync, even when the source
    /// says which paths changed (the incremental plan then never runs). Off by default: a sync
    /// of a new revision plans only what changed, and the drift check of everything else is the
    /// next sync of the same revision's.
    pub full_drift_check: bool,
}

/// Builds a plan with the default options. Takes the live directory's lock (unless this is a
/// dry run on a directory Stoker never wrote to, which must stay untouched).
#[cfg(any(test, feature = "testing"))]
pub fn plan(request: &SyncRequest) -> Result<Plan> {
    plan_with(request, &PlanOptions::default())
}

/// Builds a plan: incremental when the request says which source paths changed since the
/// manifest's revision and nothing else stands in the way (see [`incremental`]), otherwise
/// comparing every desired file with the live directory.
#[cfg(any(test, feature = "testing"))]
pub fn plan_with(request: &SyncRequest, options: &PlanOptions) -> Result<Plan> {
    plan_reading(request, options, None, crate::DEFAULT_IO_THREADS)
}

/// What an incremental attempt left for the full plan: the lock it took, and the manifest it
/// read (if it got that far).
type Held = Option<(Option<LiveLock>, Option<manifest::Loaded>)>;

/// [`plan_with`], taking the manifest from `ahead` when it read the one the plan needs; an
/// incremental plan looks at the live files on up to `io_threads` threads.
pub(crate) fn plan_reading(
    request: &SyncRequest,
    options: &PlanOptions,
    ahead: Option<&manifest::ReadAhead>,
    io_threads: usize,
) -> Result<Plan> {
    let started = Instant::now();
    let load = |live: &std::path::Path| {
        ahead
            .and_then(|ahead| ahead.take(live))
            .unwrap_or_else(|| manifest::read(live))
    };
    let context = desired::effective_context(&request.profile, &request.context);
    let key = incremental::plan_key(&request.profile, &context);
    let mut held = None;
    if let Some(key) = &key
        && !options.full_drift_check
        && is_new_revision(request)
        && request.changed_paths.is_some()
        // Only where a sync already took the lock: a bad profile must leave no trace.
        && let Some(lock) = LiveLock::acquire_existing(&request.live)?
    {
        let attempt = Attempt {
            request,
            context: &context,
            key,
            io_threads,
            started,
        };
        match attempt.run(lock, load)? {
            Ok(plan) => return Ok(plan),
            Err(left) => held = left,
        }
    }
    full::plan(request, context, key, held, load, started)
}

/// True when the request is for another revision than the one last synced.
fn is_new_revision(request: &SyncRequest) -> bool {
    request
        .previous
        .as_ref()
        .is_some_and(|previous| previous.id != request.artifact.revision().id)
}

/// An attempt at the incremental plan, with the lock already taken.
struct Attempt<'a> {
    request: &'a SyncRequest,
    context: &'a TemplateContext,
    key: &'a incremental::PlanKey,
    io_threads: usize,
    started: Instant,
}

impl Attempt<'_> {
    /// The incremental plan, or what the full plan inherits (the lock, the manifest read).
    fn run(
        self,
        lock: LiveLock,
        load: impl FnOnce(&std::path::Path) -> manifest::Loaded,
    ) -> Result<std::result::Result<Plan, Held>> {
        let live = self.request.live.as_path();
        if journal::pending(live) {
            // An interrupted sync may have written files of a revision the manifest does not
            // record: the diff from the manifest's revision would not cover them.
            tracing::debug!(
                reason = "an interrupted sync left its journal",
                "planning every file"
            );
            return Ok(Err(Some((Some(lock), None))));
        }
        let loading = Instant::now();
        let loaded = load(live);
        tracing::debug!(
            files = loaded.manifest.as_ref().map(|m| m.files.len()),
            elapsed_ms = loading.elapsed().as_millis() as u64,
            "manifest loaded"
        );
        let prepared = match &loaded {
            manifest::Loaded {
                manifest: Some(manifest),
                warning: None,
                written,
            } => incremental::or_full_plan(incremental::prepare(
                self.request,
                self.context,
                self.key,
                manifest,
                *written,
                self.io_threads,
            ))?,
            _ => None,
        };
        let Some(prepared) = prepared else {
            return Ok(Err(Some((Some(lock), Some(loaded)))));
        };
        let written = loaded.written;
        let manifest = loaded.manifest.unwrap_or_default();
        let context = self.context.clone();
        incremental::plan(
            self.request,
            context,
            prepared,
            manifest,
            written,
            lock,
            self.started,
        )
        .map(Ok)
    }
}

/// The id of a file about to be replaced or deleted, for the report. (Unlike the comparison's
/// trusted id this accepts racy-clean entries: it decides nothing, and the file goes either
/// way.)
fn previous_id(
    manifest: Option<&Manifest>,
    path: &str,
    entry: &crate::live::LiveEntry,
) -> Option<ContentId> {
    if entry.kind != LiveKind::File {
        return None;
    }
    manifest?.files.get(path)?.id_if_unchanged(&entry.stat)
}
