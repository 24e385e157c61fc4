//! Planning: compare the desired set with the live directory and decide every step.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use stoker_core::relpath;
use stoker_core::{Artifact, ContentId, SyncRequest, TemplateContext};

use crate::content::{self, Recipe};
use crate::desired::{self, DesiredFile, DesiredSet};
use crate::error::{Error, Result};
use crate::incremental;
use crate::journal;
use crate::live::{self, DirRecord, LiveEntry, LiveKind, LiveTree};
use crate::lock::LiveLock;
use crate::manifest::{self, Manifest, ManifestEntry, PlanRecord};
use crate::path_map::PathMap;
use crate::warning::Warning;

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
    pub(crate) live: PathBuf,
    pub(crate) dry_run: bool,
    pub(crate) artifact: Arc<dyn Artifact>,
    pub(crate) context: TemplateContext,
    pub(crate) profile: String,
    pub(crate) desired: DesiredSet,
    /// Entries removed before writing because a desired path needs their place.
    pub(crate) clears: Vec<Delete>,
    pub(crate) writes: Vec<Write>,
    pub(crate) deletes: Vec<Delete>,
    pub(crate) unchanged: Vec<(String, ManifestEntry)>,
    /// Incremental plans: how many more desired files are up to date, as the manifest records
    /// them (they are not in `unchanged`).
    pub(crate) carried: usize,
    /// Incremental plans: recorded destinations no longer desired (dropped from the manifest).
    pub(crate) forgotten: Vec<String>,
    /// Incremental plans: directory records dropped from the manifest before `apply` (those
    /// the manifest's clock tick cannot vouch for).
    pub(crate) dir_changes: Vec<(String, Option<DirRecord>)>,
    /// Incremental plans: the manifest as read (its `dirs` moved to `dirs`), which `apply`
    /// extends with what the sync changed.
    pub(crate) base: Option<Manifest>,
    /// What the scan saw of each directory, for the next manifest (`apply` updates the
    /// directories it changes).
    pub(crate) dirs: BTreeMap<String, DirRecord>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) previous: Option<stoker_core::Revision>,
    /// The manifest on disk already describes the result: no need to rewrite it.
    pub(crate) manifest_current: bool,
    /// Ignition projects the desired set holds.
    pub(crate) projects: Vec<String>,
    /// For the next manifest: how the desired set was made (`None` when the profile's mappings
    /// do not render; the plan then failed anyway).
    pub(crate) record: Option<PlanRecord>,
    /// Only the changed paths' destinations were planned.
    pub(crate) incremental: bool,
    pub(crate) started: Instant,
    pub(crate) _lock: Option<LiveLock>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("live", &self.live)
            .field("revision", self.artifact.revision())
            .field("writes", &self.writes.len())
            .field("clears", &self.clears.len())
            .field("deletes", &self.deletes.len())
            .field("unchanged", &self.unchanged())
            .finish_non_exhaustive()
    }
}

impl Plan {
    /// Files to write, sorted by path.
    pub fn writes(&self) -> &[Write] {
        &self.writes
    }

    /// Orphans to delete (including entries cleared to make room), sorted by path.
    pub fn deletes(&self) -> impl Iterator<Item = &Delete> {
        self.clears.iter().chain(self.deletes.iter())
    }

    /// Number of desired files already up to date.
    pub fn unchanged(&self) -> usize {
        self.unchanged.len() + self.carried
    }

    /// The desired set the plan was computed from. For an incremental plan its files are only
    /// those the plan looked at (the changed paths' destinations).
    pub fn desired(&self) -> &DesiredSet {
        &self.desired
    }

    /// True when only the destinations of the paths the source changed were planned (see
    /// [`crate::incremental`]).
    pub fn is_incremental(&self) -> bool {
        self.incremental
    }

    /// Warnings gathered while planning.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// True when applying would change nothing.
    pub fn is_noop(&self) -> bool {
        self.writes.is_empty() && self.clears.is_empty() && self.deletes.is_empty()
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

/// What the comparison of one desired file found.
enum Verdict {
    /// Up to date; `true` when its content depends on the revision (rendered on every sync).
    Unchanged(ManifestEntry, bool),
    Write(Write),
}

/// Builds a plan with the default options. Takes the live directory's lock (unless this is a
/// dry run on a directory Stoker never wrote to, which must stay untouched).
pub fn plan(request: &SyncRequest) -> Result<Plan> {
    plan_with(request, &PlanOptions::default())
}

/// Builds a plan: incremental when the request says which source paths changed since the
/// manifest's revision and nothing else stands in the way (see [`crate::incremental`]),
/// otherwise comparing every desired file with the live directory.
pub fn plan_with(request: &SyncRequest, options: &PlanOptions) -> Result<Plan> {
    plan_reading(request, options, None, crate::apply::DEFAULT_IO_THREADS)
}

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
    let live = request.live.as_path();
    let context = desired::effective_context(&request.profile, &request.context);
    let key = incremental::plan_key(&request.profile, &context);
    let mut held = None;
    let new_revision = request
        .previous
        .as_ref()
        .is_some_and(|previous| previous.id != request.artifact.revision().id);
    if let Some(key) = &key
        && !options.full_drift_check
        && new_revision
        && request.changed_paths.is_some()
        // Only where a sync already took the lock: a bad profile must leave no trace.
        && let Some(lock) = LiveLock::acquire_existing(live)?
    {
        if journal::pending(live) {
            // An interrupted sync may have written files of a revision the manifest does not
            // record: the diff from the manifest's revision would not cover them.
            tracing::debug!(
                reason = "an interrupted sync left its journal",
                "planning every file"
            );
            held = Some((Some(lock), None));
        } else {
            let loading = Instant::now();
            let loaded = load(live);
            tracing::debug!(
                files = loaded.manifest.as_ref().map(|m| m.files.len()),
                elapsed_ms = loading.elapsed().as_millis() as u64,
                "manifest loaded"
            );
            if let manifest::Loaded {
                manifest: Some(manifest),
                warning: None,
                written,
            } = &loaded
                && let Some(prepared) =
                    incremental::prepare(request, &context, key, manifest, *written, io_threads)?
            {
                let written = loaded.written;
                let manifest = loaded.manifest.unwrap_or_default();
                return incremental_plan(
                    request, context, prepared, manifest, written, lock, started,
                );
            }
            held = Some((Some(lock), Some(loaded)));
        }
    }
    full_plan(request, context, key, held, load, started)
}

/// The plan that compares every desired file. `held`: the lock and manifest an incremental
/// attempt already took.
fn full_plan(
    request: &SyncRequest,
    context: TemplateContext,
    key: Option<incremental::PlanKey>,
    held: Option<(Option<LiveLock>, Option<manifest::Loaded>)>,
    load: impl FnOnce(&std::path::Path) -> manifest::Loaded,
    started: Instant,
) -> Result<Plan> {
    let live = request.live.as_path();
    let listing = request.artifact.list()?;
    let desired = desired::desired_set(&listing, &request.profile, &context)?;
    drop(listing);
    tracing::debug!(
        files = desired.files.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "desired set computed"
    );
    // Lock only once the profile is known to be valid, so a bad profile leaves no trace.
    let (lock, loaded) = match held {
        Some((lock, loaded)) => (lock, loaded),
        None if request.dry_run => {
            // A dry run writes nothing, not even the lock file: it takes the lock only when a
            // sync already made it.
            (LiveLock::acquire_existing(live)?, None)
        }
        None => (Some(LiveLock::acquire(live)?), None),
    };
    let loading = Instant::now();
    let manifest::Loaded {
        manifest,
        warning: manifest_warning,
        written,
    } = loaded.unwrap_or_else(|| load(live));
    tracing::debug!(
        files = manifest.as_ref().map(|m| m.files.len()),
        dirs = manifest.as_ref().map(|m| m.dirs.len()),
        elapsed_ms = loading.elapsed().as_millis() as u64,
        "manifest loaded"
    );
    let manifest_written = manifest.as_ref().and(written);
    // The previous sync's directory records spare listing the directories that did not change;
    // every entry is still `lstat`ed (the drift check).
    let guide = manifest
        .as_ref()
        .zip(manifest_written)
        .map(|(m, written)| live::Guide {
            dirs: &m.dirs,
            written,
        });
    let scanning = Instant::now();
    let scan = live::scan_guided(live, &desired.scope, guide)?;
    tracing::debug!(
        entries = scan.tree.entries.len(),
        dirs_listed = scan.listed,
        dirs_vouched = scan.vouched,
        elapsed_ms = scanning.elapsed().as_millis() as u64,
        "live directory scanned"
    );
    let live::Scan { tree, dirs, .. } = scan;
    let mut warnings: Vec<Warning> = desired
        .warnings
        .iter()
        .cloned()
        .map(Warning::from)
        .collect();
    // A manifest read with a warning is rewritten even when nothing changed.
    let manifest_usable = manifest_warning.is_none();
    warnings.extend(manifest_warning.map(Warning::Manifest));
    warnings.extend(tree.warnings.iter().cloned());

    let adoption = Adoption::new(&request.profile, manifest.as_ref());
    let clears = clearing_deletes(live, &desired, &tree, &adoption)?;
    let cleared: BTreeSet<&str> = clears.iter().map(|d| d.path.as_str()).collect();

    let artifact = request.artifact.as_ref();
    let changes = SourceChanges::new(request, manifest.as_ref());
    // Each desired file with its live entry and manifest entry: the three maps are sorted by
    // path, so one pass finds them all (instead of a tree lookup each).
    let empty = PathMap::new();
    let recorded_files = manifest.as_ref().map_or(&empty, |m| &m.files);
    let mut live_entries = tree.entries.iter().peekable();
    let mut recorded_entries = recorded_files.iter().peekable();
    let joined: Vec<(
        &String,
        &DesiredFile,
        Option<&LiveEntry>,
        Option<&ManifestEntry>,
    )> = desired
        .files
        .iter()
        .map(|(path, file)| {
            let live_entry = seek(&mut live_entries, path);
            let recorded_entry = seek(&mut recorded_entries, path);
            (path, file, live_entry, recorded_entry)
        })
        .collect();
    let verdicts: Vec<Result<(String, Verdict)>> = joined
        .par_iter()
        .map(|&(path, file, live_entry, recorded_entry)| {
            let entry = if cleared.contains(path.as_str()) {
                None
            } else {
                live_entry
            };
            let recorded = Recorded {
                entry: recorded_entry,
                written: manifest_written,
            };
            let verdict = compare(
                live, artifact, &context, path, file, entry, recorded, &changes,
            )?;
            Ok((path.clone(), verdict))
        })
        .collect();
    drop(joined);
    let mut writes = Vec::new();
    let mut unchanged = Vec::new();
    let mut rerender = Vec::new();
    for verdict in verdicts {
        match verdict? {
            (path, Verdict::Unchanged(entry, by_revision)) => {
                if by_revision {
                    rerender.push(path.clone());
                }
                unchanged.push((path, entry))
            }
            (_, Verdict::Write(write)) => writes.push(write),
        }
    }
    let record = key.map(|key| PlanRecord {
        key: key.key,
        mappings: desired.mappings.clone(),
        warnings: desired.warnings.clone(),
        rerender,
    });

    tracing::debug!(
        writes = writes.len(),
        unchanged = unchanged.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "desired files compared"
    );
    let mut deletes = Vec::new();
    let mut foreign = Vec::new();
    let mut desired_paths = desired.files.keys().peekable();
    for (path, entry) in &tree.entries {
        let is_desired = seek_key(&mut desired_paths, path);
        if entry.kind == LiveKind::Dir
            || is_desired
            || cleared.contains(path.as_str())
            || !desired.scope.may_touch(path)
        {
            continue;
        }
        if adoption.keeps(&desired.scope, path) {
            foreign.push(path.as_str());
            continue;
        }
        deletes.push(Delete {
            path: path.clone(),
            kind: entry.kind,
            previous_id: previous_id(manifest.as_ref(), path, entry),
        });
    }

    warnings.extend(Adoption::warning(&foreign));

    // Nothing to do and the manifest already says exactly this (and vouches for every file and
    // directory): apply then skips rewriting it, so a no-op sync writes nothing but its report.
    let manifest_current = manifest_usable
        && writes.is_empty()
        && clears.is_empty()
        && deletes.is_empty()
        && manifest.as_ref().is_some_and(|m| {
            m.revision.as_ref() == Some(request.artifact.revision())
                && m.profile == request.profile.name
                // The same directory records (a directory listed again only because it changed
                // in the manifest's clock tick stays listed each time, which is cheap).
                && m.dirs == dirs
                && m.plan == record
                && m.files.len() == unchanged.len()
                // Both sorted by path.
                && m.files.iter().zip(&unchanged).all(|((recorded_path, recorded), (path, entry))| {
                    recorded_path == path
                        && recorded == entry
                        && manifest_written.is_some_and(|written| written > entry.stat.ctime)
                })
        });

    Ok(Plan {
        manifest_current,
        projects: desired::projects(desired.files.keys().map(String::as_str)),
        record,
        incremental: false,
        live: live.to_path_buf(),
        dry_run: request.dry_run,
        artifact: request.artifact.clone(),
        context,
        profile: request.profile.name.clone(),
        desired,
        clears,
        writes,
        deletes,
        unchanged,
        carried: 0,
        forgotten: Vec::new(),
        dir_changes: Vec::new(),
        base: None,
        dirs,
        warnings,
        previous: manifest
            .and_then(|m| m.revision)
            .or_else(|| request.previous.clone()),
        started,
        _lock: lock,
    })
}

/// The plan of an incremental sync: the looked-at destinations compared as the full plan
/// compares them, every other desired file taken from the manifest as it is.
fn incremental_plan(
    request: &SyncRequest,
    context: TemplateContext,
    prepared: incremental::Incremental,
    mut manifest: Manifest,
    written: Option<i64>,
    lock: LiveLock,
    started: Instant,
) -> Result<Plan> {
    let live = request.live.as_path();
    let artifact = request.artifact.as_ref();
    let changes = SourceChanges::new(request, Some(&manifest));
    let incremental::Incremental {
        looked_at,
        live: live_entries,
        scope,
        mut record,
    } = prepared;
    let to_compare: Vec<(&String, &DesiredFile)> = looked_at
        .iter()
        .filter_map(|(path, found)| Some((path, found.as_ref()?)))
        .collect();
    let verdicts: Vec<Result<(String, Verdict)>> = to_compare
        .par_iter()
        .map(|&(path, file)| {
            let entry = live_entries.get(path).copied().flatten();
            let recorded = Recorded {
                entry: manifest.files.get(path),
                written,
            };
            let verdict = compare(
                live,
                artifact,
                &context,
                path,
                file,
                entry.as_ref(),
                recorded,
                &changes,
            )?;
            Ok((path.clone(), verdict))
        })
        .collect();
    let mut writes = Vec::new();
    let mut unchanged = Vec::new();
    for verdict in verdicts {
        match verdict? {
            (path, Verdict::Unchanged(entry, by_revision)) => {
                if by_revision {
                    record.rerender.push(path.clone());
                }
                unchanged.push((path, entry));
            }
            (_, Verdict::Write(write)) => writes.push(write),
        }
    }
    let mut deletes = Vec::new();
    let mut foreign = Vec::new();
    let adoption = Adoption::new(&request.profile, Some(&manifest));
    for (path, found) in &looked_at {
        let Some(entry) = live_entries.get(path).copied().flatten() else {
            continue;
        };
        if found.is_none() && scope.may_touch(path) && adoption.keeps(&scope, path) {
            foreign.push(path.clone());
        } else if found.is_none() && scope.may_touch(path) {
            deletes.push(Delete {
                path: path.clone(),
                kind: entry.kind,
                previous_id: previous_id(Some(&manifest), path, &entry),
            });
        }
    }
    // Every other desired file is the manifest's: counted, and left where it is (apply records
    // only what changed).
    let recorded = &manifest.files;
    let forgotten: Vec<String> = looked_at
        .iter()
        .filter(|(path, found)| found.is_none() && recorded.contains_key(path))
        .map(|(path, _)| path.clone())
        .collect();
    let recorded_looked_at = looked_at
        .keys()
        .filter(|path| recorded.contains_key(path))
        .count();
    let carried = recorded.len() - recorded_looked_at;
    // Projects are `projects/<name>/project.json`: only that range of the manifest is read.
    let recorded_projects = recorded
        .with_prefix("projects/")
        .map(|(path, _)| path)
        .filter(|path| !looked_at.contains_key(*path));
    let projects = desired::projects(
        looked_at
            .iter()
            .filter(|(_, found)| found.is_some())
            .map(|(path, _)| path.as_str())
            .chain(recorded_projects),
    );
    tracing::debug!(
        looked_at = looked_at.len(),
        writes = writes.len(),
        deletes = deletes.len(),
        unchanged = unchanged.len() + carried,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "incremental plan"
    );
    let files: BTreeMap<String, DesiredFile> = looked_at
        .into_iter()
        .filter_map(|(path, found)| Some((path, found?)))
        .collect();
    let mut warnings: Vec<Warning> = record.warnings.iter().cloned().map(Warning::from).collect();
    let foreign: Vec<&str> = foreign.iter().map(String::as_str).collect();
    warnings.extend(Adoption::warning(&foreign));
    let (dirs, dir_changes) = vouched_dirs(std::mem::take(&mut manifest.dirs), written);
    Ok(Plan {
        live: live.to_path_buf(),
        dry_run: request.dry_run,
        artifact: request.artifact.clone(),
        context,
        profile: request.profile.name.clone(),
        desired: DesiredSet {
            files,
            scope,
            warnings: record.warnings.clone(),
            mappings: record.mappings.clone(),
        },
        clears: Vec::new(),
        writes,
        deletes,
        unchanged,
        carried,
        forgotten,
        dir_changes,
        dirs,
        warnings,
        previous: manifest.revision.clone(),
        base: Some(manifest),
        manifest_current: false,
        projects,
        record: Some(record),
        incremental: true,
        started,
        _lock: Some(lock),
    })
}

/// The directory records an incremental plan carries into the next manifest, and those it
/// drops: those changed in the clock tick of the manifest that recorded them (the next manifest
/// is younger, so the racy-clean rule would no longer catch a change in that tick) are listed
/// next time.
#[allow(clippy::type_complexity)]
fn vouched_dirs(
    mut dirs: BTreeMap<String, DirRecord>,
    written: Option<i64>,
) -> (
    BTreeMap<String, DirRecord>,
    Vec<(String, Option<DirRecord>)>,
) {
    let mut dropped = Vec::new();
    dirs.retain(|path, record| {
        let vouched = written.is_some_and(|written| record.stat.ctime < written);
        if !vouched {
            dropped.push((path.clone(), None));
        }
        vouched
    });
    (dirs, dropped)
}

/// Advances a sorted map iterator to `path`; the value there, if the map has it. Called with
/// increasing paths.
fn seek<'a, K: AsRef<str>, V: 'a>(
    entries: &mut std::iter::Peekable<impl Iterator<Item = (K, &'a V)>>,
    path: &str,
) -> Option<&'a V> {
    while let Some((key, value)) = entries.peek() {
        match key.as_ref().cmp(path) {
            std::cmp::Ordering::Less => {
                entries.next();
            }
            std::cmp::Ordering::Equal => return Some(value),
            std::cmp::Ordering::Greater => return None,
        }
    }
    None
}

/// [`seek`] for a sorted sequence of keys: true when it holds `path`.
fn seek_key<'a>(
    keys: &mut std::iter::Peekable<impl Iterator<Item = &'a String>>,
    path: &str,
) -> bool {
    while let Some(key) = keys.peek() {
        match key.as_str().cmp(path) {
            std::cmp::Ordering::Less => {
                keys.next();
            }
            std::cmp::Ordering::Equal => return true,
            std::cmp::Ordering::Greater => return false,
        }
    }
    false
}

/// The id of a file about to be replaced or deleted, for the report. (Unlike [`Recorded::id`]
/// this accepts racy-clean entries: it decides nothing, and the file goes either way.)
fn previous_id(manifest: Option<&Manifest>, path: &str, entry: &LiveEntry) -> Option<ContentId> {
    if entry.kind != LiveKind::File {
        return None;
    }
    manifest?.files.get(path)?.id_if_unchanged(&entry.stat)
}

/// Live entries that occupy a place a desired file needs: a file or symlink where a directory
/// must be, a directory where a file must be. They are managed (or the plan fails), and they are
/// removed before writing.
fn clearing_deletes(
    live: &Path,
    desired: &DesiredSet,
    tree: &LiveTree,
    adoption: &Adoption<'_>,
) -> Result<Vec<Delete>> {
    let manifest = adoption.manifest;
    let mut clears: BTreeSet<String> = BTreeSet::new();
    let scope = &desired.scope;
    let refuse_untouchable = |path: &str, needed_by: &str| -> Result<()> {
        if adoption.keeps(scope, path) {
            Err(Error::unsafe_live(
                live.join(path),
                format!(
                    "must be replaced to write {needed_by}, but Stoker did not write it and the data directory is not adopted ({})",
                    ADOPT_HOW
                ),
            ))
        } else if scope.may_touch(path) {
            Ok(())
        } else {
            Err(Error::unsafe_live(
                live.join(path),
                format!(
                    "must be replaced to write {needed_by}, but it is protected, excluded or not managed"
                ),
            ))
        }
    };
    // Ancestors already looked at (with theirs): most desired files share them.
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for path in desired.files.keys() {
        // Ancestors that are not directories.
        let mut ancestor = relpath::parent(path);
        while let Some(dir) = ancestor {
            if dir.is_empty() || !seen.insert(dir) {
                break;
            }
            if let Some(entry) = tree.entries.get(dir)
                && entry.kind != LiveKind::Dir
            {
                refuse_untouchable(dir, path)?;
                clears.insert(dir.to_owned());
            }
            ancestor = relpath::parent(dir);
        }
        // A directory where the file goes: everything in it must go.
        if let Some(entry) = tree.entries.get(path)
            && entry.kind == LiveKind::Dir
        {
            refuse_untouchable(path, path)?;
            // Entries the scan did not list are left alone, so the directory cannot be emptied:
            // refuse now rather than fail after clearing part of it.
            if let Some(unlisted) = tree
                .unlisted_in
                .iter()
                .find(|dir| relpath::is_within(dir, path))
            {
                return Err(Error::unsafe_live(
                    live.join(path),
                    format!(
                        "must be replaced to write {path}, but {unlisted} holds entries Stoker does not manage (outside the managed paths, or a name that is not UTF-8)"
                    ),
                ));
            }
            for (below, _) in tree.below(path) {
                refuse_untouchable(below, path)?;
                clears.insert(below.clone());
            }
            clears.insert(path.clone());
        }
    }
    // Deepest first, so directories are empty when removed.
    let mut ordered: Vec<String> = clears.into_iter().collect();
    ordered.sort_by(|a, b| {
        let depth = |p: &str| p.matches('/').count();
        depth(b).cmp(&depth(a)).then_with(|| a.cmp(b))
    });
    Ok(ordered
        .into_iter()
        .filter_map(|path| {
            let entry = tree.entries.get(&path)?;
            Some(Delete {
                previous_id: previous_id(manifest, &path, entry),
                kind: entry.kind,
                path,
            })
        })
        .collect())
}

/// How a user adopts a data directory, for messages.
pub(crate) const ADOPT_HOW: &str = "a mapping to \".\" deletes only what Stoker wrote unless `adopt: true` is set in the profile or `--adopt` is given";

/// Whether files Stoker did not write may be deleted where a mapping to `.` manages the whole
/// data directory (see [`Scope::whole_directory_governs`](crate::scope::Scope)). The data
/// directory of a gateway holds the gateway's own files too, so Stoker deletes there only what
/// the manifest says it wrote, unless the profile adopts the directory.
struct Adoption<'a> {
    adopted: bool,
    manifest: Option<&'a Manifest>,
}

impl<'a> Adoption<'a> {
    fn new(profile: &stoker_core::Profile, manifest: Option<&'a Manifest>) -> Self {
        Adoption {
            adopted: profile.adopt,
            manifest,
        }
    }

    /// True when `path`, managed by the scope, must be kept: only the whole-directory mapping
    /// manages it, the directory is not adopted, and Stoker did not write it.
    fn keeps(&self, scope: &crate::scope::Scope, path: &str) -> bool {
        !self.adopted
            && scope.whole_directory_governs(path)
            && !self
                .manifest
                .is_some_and(|manifest| manifest.files.contains_key(path))
    }

    /// The warning naming what was kept (the first few paths, and how many in all).
    fn warning(kept: &[&str]) -> Option<Warning> {
        (!kept.is_empty()).then(|| Warning::KeptUnadopted {
            shown: kept
                .iter()
                .take(Warning::KEPT_SHOWN)
                .map(|path| (*path).to_owned())
                .collect(),
            count: kept.len(),
        })
    }
}

/// A desired file's manifest entry and when the manifest was written (its file's mtime, in
/// file-system time).
#[derive(Clone, Copy)]
struct Recorded<'a> {
    entry: Option<&'a ManifestEntry>,
    written: Option<i64>,
}

impl Recorded<'_> {
    /// The recorded content id when the file's `lstat` still matches. Good for the report's
    /// previous id; to decide that a file is unchanged, see [`Recorded::trusted_id`].
    fn id(&self, stat: &crate::live::Stat) -> Option<ContentId> {
        self.entry?.id_if_unchanged(stat)
    }

    /// The content id the manifest vouches for, when the live file may be trusted unread.
    fn trusted_id(&self, stat: &crate::live::Stat) -> Option<ContentId> {
        let id = self.id(stat)?;
        // "Racy clean", as Git calls it: on file systems with coarse timestamps a change made
        // in the same clock tick as the manifest write leaves size, mtime and ctime as
        // recorded. Only a file whose ctime is strictly older than the manifest is trusted
        // without reading it; the others are hashed (and trusted from the next manifest on).
        (self.written? > stat.ctime).then_some(id)
    }
}

/// What the source says changed since the revision the manifest records.
struct SourceChanges {
    /// Changed source paths; `None` when unknown (or not relative to the manifest's revision).
    changed: Option<std::collections::HashSet<String>>,
}

impl SourceChanges {
    fn new(request: &SyncRequest, manifest: Option<&Manifest>) -> Self {
        let base = manifest.and_then(|m| m.revision.as_ref()).map(|r| &r.id);
        let relative_to_manifest =
            base.is_some() && base == request.previous.as_ref().map(|r| &r.id);
        let changed = request
            .changed_paths
            .as_ref()
            .filter(|_| relative_to_manifest)
            .map(|paths| paths.iter().cloned().collect());
        SourceChanges { changed }
    }

    /// True when the source file at `path` is known to hold the same bytes as at the manifest's
    /// revision.
    fn unchanged(&self, path: &str) -> bool {
        self.changed
            .as_ref()
            .is_some_and(|changed| !changed.contains(path))
    }
}

/// The content id of a transformed file known from the manifest without producing it: same
/// recipe fingerprint and same source bytes (equal source ids, or a source path the diff since
/// the manifest's revision does not list).
fn reused_id(
    file: &DesiredFile,
    context: &TemplateContext,
    recorded: Recorded<'_>,
    changes: &SourceChanges,
) -> Option<(ContentId, Option<Recipe>)> {
    let entry = recorded.entry?;
    let recipe = entry.recipe?;
    let same_source = match (recipe.source_id, file.source_id) {
        (Some(recorded), Some(now)) => recorded == now,
        _ => changes.unchanged(&file.source),
    };
    if !same_source || recipe.fingerprint != content::fingerprint(file, context) {
        return None;
    }
    Some((
        entry.id,
        Some(Recipe {
            fingerprint: recipe.fingerprint,
            source_id: file.source_id.or(recipe.source_id),
        }),
    ))
}

#[allow(clippy::too_many_arguments)]
fn compare(
    live: &Path,
    artifact: &dyn Artifact,
    context: &TemplateContext,
    path: &str,
    file: &DesiredFile,
    entry: Option<&LiveEntry>,
    recorded: Recorded<'_>,
    changes: &SourceChanges,
) -> Result<Verdict> {
    // Transformed content can fail (a binary file with `template: true`, a patch on a file that
    // is not JSON): produce it while planning, so that such an input stops the sync before
    // anything is written rather than halfway through `apply`. Unless the manifest shows it was
    // produced from the same inputs before (then it succeeded, with this id).
    let transformed = if file.transform.is_identity() {
        None
    } else {
        match reused_id(file, context, recorded, changes) {
            Some(reused) => Some(reused),
            None => Some(content::transformed_id(artifact, path, file, context)?),
        }
    };
    let write = |kind, previous_id| {
        Ok(Verdict::Write(Write {
            path: path.to_owned(),
            kind,
            file: file.clone(),
            previous_id,
            planned: transformed,
        }))
    };
    let Some(entry) = entry else {
        return write(WriteKind::Add, None);
    };
    if entry.kind != LiveKind::File {
        // A symlink or special file where a file goes: replaced, never followed.
        return write(WriteKind::Modify, None);
    }
    let previous = recorded.id(&entry.stat);
    let trusted = recorded.trusted_id(&entry.stat);
    if entry.stat.executable() != file.executable {
        return write(WriteKind::Modify, previous);
    }
    // Same source size but different live size: changed, without reading anything.
    if file.transform.is_identity() && trusted.is_none() && entry.stat.size != file.source_size {
        return write(WriteKind::Modify, previous);
    }
    let desired_id = match transformed {
        Some((id, _)) => id,
        None => content::desired_id(artifact, path, file, context)?,
    };
    let live_id = match trusted {
        Some(id) => id,
        None => {
            let full = live.join(path);
            content::hash_file(&full)
                .map_err(|source| Error::io("reading live file", full, source))?
        }
    };
    if live_id == desired_id {
        let recipe = transformed.and_then(|(_, recipe)| recipe);
        let by_revision = !file.transform.is_identity() && recipe.is_none();
        Ok(Verdict::Unchanged(
            ManifestEntry {
                id: desired_id,
                stat: entry.stat,
                recipe,
            },
            by_revision,
        ))
    } else {
        write(WriteKind::Modify, Some(live_id))
    }
}
