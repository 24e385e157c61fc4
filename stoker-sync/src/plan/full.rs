//! The full plan: every desired file compared with the live directory, every managed live
//! entry looked at for orphans.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use stoker_core::relpath;
use stoker_core::{SyncRequest, TemplateContext};

use super::adoption::{ADOPT_HOW, Adoption};
use super::compare::{Candidate, Compared, Comparison, SourceChanges};
use super::{Delete, Held, Kept, ManifestUpdate, Ops, Plan, ReportInputs, Target, incremental};
use crate::desired::{self, DesiredSet};
use crate::error::{Error, Result};
use crate::live::{self, DirRecord, LiveKind, LiveTree};
use crate::lock::LiveLock;
use crate::manifest::{self, Manifest, ManifestEntry, PlanRecord};
use crate::path_map::PathMap;
use crate::warning::Warning;

/// The plan that compares every desired file. `held`: the lock and manifest an incremental
/// attempt already took.
pub(super) fn plan(
    request: &SyncRequest,
    context: TemplateContext,
    key: Option<incremental::PlanKey>,
    held: Held,
    load: impl FnOnce(&Path) -> manifest::Loaded,
    started: Instant,
) -> Result<Plan> {
    let live = request.live.as_path();
    let desired = desired_set(request, &context, started)?;
    // Locked only once the profile is known to be valid, so a bad profile leaves no trace.
    let (lock, loaded) = lock(request, held)?;
    let mut loaded = loaded.unwrap_or_else(|| load_timed(live, load));
    let manifest_warning = loaded.warning.take();
    let manifest = loaded.manifest.as_ref();
    let written = manifest.and(loaded.written);
    let live::Scan { tree, dirs, .. } = scan(live, &desired, manifest, written)?;
    let adoption = Adoption::new(&request.profile, manifest);
    let clears = clearing_deletes(live, &desired, &tree, &adoption)?;
    let cleared: BTreeSet<&str> = clears.iter().map(|d| d.path.as_str()).collect();
    let comparison = Comparison {
        live,
        artifact: request.artifact.as_ref(),
        context: &context,
        changes: SourceChanges::new(request, manifest),
        written,
    };
    let Compared {
        writes,
        unchanged,
        rerender,
    } = compare_desired(&comparison, &desired, &tree, &cleared, manifest)?;
    tracing::debug!(
        writes = writes.len(),
        unchanged = unchanged.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "desired files compared"
    );
    let record = key.map(|key| PlanRecord {
        key: key.key,
        mappings: desired.mappings.clone(),
        warnings: desired.warnings.clone(),
        rerender,
    });
    let (deletes, kept) = orphans(&desired, &tree, &cleared, &adoption);
    let warnings = warnings(&desired, manifest_warning.clone(), &tree, &kept);
    drop(cleared);
    let ops = Ops {
        clears,
        writes,
        deletes,
    };
    let current = Current {
        request,
        dirs: &dirs,
        record: &record,
        unchanged: &unchanged,
        written,
    };
    // Nothing to do and the manifest already says exactly this (a manifest read with a warning
    // is rewritten): apply then skips rewriting it, so a no-op sync writes nothing but its
    // report.
    let record = if manifest_warning.is_none() && is_empty(&ops) && current.describes(manifest) {
        ManifestUpdate::Current
    } else {
        ManifestUpdate::Rewrite { dirs, plan: record }
    };
    let report = ReportInputs {
        warnings,
        previous: manifest
            .and_then(|m| m.revision.clone())
            .or_else(|| request.previous.clone()),
        projects: desired::projects(desired.files.keys().map(String::as_str)),
    };
    Ok(Plan {
        target: Target::new(request, context, started, lock),
        desired,
        ops,
        kept: Kept {
            unchanged,
            carried: 0,
        },
        record,
        report,
    })
}

/// The plan's warnings, in the order a person reads them: what the desired set skipped, why the
/// manifest was not used, what the scan left alone, what was kept unadopted.
fn warnings(
    desired: &DesiredSet,
    manifest_warning: Option<String>,
    tree: &LiveTree,
    kept: &[&str],
) -> Vec<Warning> {
    let skipped = desired.warnings.iter().cloned().map(Warning::from);
    let mut warnings: Vec<Warning> = skipped.collect();
    warnings.extend(manifest_warning.map(Warning::Manifest));
    warnings.extend(tree.warnings.iter().cloned());
    warnings.extend(Adoption::warning(kept));
    warnings
}

/// The desired set of the request's artifact and profile.
fn desired_set(
    request: &SyncRequest,
    context: &TemplateContext,
    started: Instant,
) -> Result<DesiredSet> {
    let listing = request.artifact.list()?;
    let desired = desired::desired_set(&listing, &request.profile, context)?;
    drop(listing);
    tracing::debug!(
        files = desired.files.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "desired set computed"
    );
    Ok(desired)
}

/// The live directory's lock (and the manifest, when an incremental attempt read it already).
fn lock(request: &SyncRequest, held: Held) -> Result<(Option<LiveLock>, Option<manifest::Loaded>)> {
    let live = request.live.as_path();
    Ok(match held {
        Some(held) => held,
        // A dry run writes nothing, not even the lock file: it takes the lock only when a sync
        // already made it.
        None if request.dry_run => (LiveLock::acquire_existing(live)?, None),
        None => (Some(LiveLock::acquire(live)?), None),
    })
}

/// The manifest, read (or taken from a read-ahead) by `load`.
fn load_timed(live: &Path, load: impl FnOnce(&Path) -> manifest::Loaded) -> manifest::Loaded {
    let loading = Instant::now();
    let loaded = load(live);
    let manifest = loaded.manifest.as_ref();
    tracing::debug!(
        files = manifest.map(|m| m.files.len()),
        dirs = manifest.map(|m| m.dirs.len()),
        elapsed_ms = loading.elapsed().as_millis() as u64,
        "manifest loaded"
    );
    loaded
}

/// The live directory below the managed roots. The previous sync's directory records spare
/// listing the directories that did not change; every entry is still `lstat`ed (the drift
/// check).
fn scan(
    live: &Path,
    desired: &DesiredSet,
    manifest: Option<&Manifest>,
    written: Option<i64>,
) -> Result<live::Scan> {
    let guide = manifest.zip(written).map(|(m, written)| live::Guide {
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
    Ok(scan)
}

/// Every desired file compared with its live entry and manifest record.
fn compare_desired(
    comparison: &Comparison<'_>,
    desired: &DesiredSet,
    tree: &LiveTree,
    cleared: &BTreeSet<&str>,
    manifest: Option<&Manifest>,
) -> Result<Compared> {
    // The three maps are sorted by path, so one pass finds each desired file's live entry and
    // manifest record (instead of a tree lookup each).
    let empty = PathMap::new();
    let recorded_files = manifest.map_or(&empty, |m| &m.files);
    let mut live_entries = tree.entries.iter().peekable();
    let mut recorded_entries = recorded_files.iter().peekable();
    let candidates: Vec<Candidate<'_>> = desired
        .files
        .iter()
        .map(|(path, file)| {
            let live = seek(&mut live_entries, path).copied();
            let recorded = seek(&mut recorded_entries, path);
            Candidate {
                path,
                file,
                // A cleared entry is gone by the time the file is written.
                live: live.filter(|_| !cleared.contains(path.as_str())),
                recorded,
            }
        })
        .collect();
    comparison.compare_all(&candidates)
}

/// The orphans to delete, and the paths kept because the data directory is not adopted.
fn orphans<'a>(
    desired: &DesiredSet,
    tree: &'a LiveTree,
    cleared: &BTreeSet<&str>,
    adoption: &Adoption<'_>,
) -> (Vec<Delete>, Vec<&'a str>) {
    let mut deletes = Vec::new();
    let mut kept = Vec::new();
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
            kept.push(path.as_str());
            continue;
        }
        deletes.push(Delete {
            path: path.clone(),
            kind: entry.kind,
            previous_id: super::previous_id(adoption.manifest, path, entry),
        });
    }
    (deletes, kept)
}

fn is_empty(ops: &Ops) -> bool {
    ops.writes.is_empty() && ops.clears.is_empty() && ops.deletes.is_empty()
}

/// What a plan found, to check whether the manifest already records exactly that.
struct Current<'a> {
    request: &'a SyncRequest,
    dirs: &'a BTreeMap<String, DirRecord>,
    record: &'a Option<PlanRecord>,
    unchanged: &'a [(String, ManifestEntry)],
    written: Option<i64>,
}

impl Current<'_> {
    /// True when `manifest` records this revision and profile, these directories, this plan
    /// record and exactly these files, and vouches for every one of them.
    fn describes(&self, manifest: Option<&Manifest>) -> bool {
        manifest.is_some_and(|m| {
            m.revision.as_ref() == Some(self.request.artifact.revision())
                && m.profile == self.request.profile.name
                // The same directory records (a directory listed again only because it changed
                // in the manifest's clock tick stays listed each time, which is cheap).
                && m.dirs == *self.dirs
                && m.plan == *self.record
                && m.files.len() == self.unchanged.len()
                // Both sorted by path.
                && m.files.iter().zip(self.unchanged).all(|((recorded_path, recorded), (path, entry))| {
                    recorded_path == path
                        && recorded == entry
                        && self.written.is_some_and(|written| written > entry.stat.ctime)
                })
        })
    }
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

/// Live entries that occupy a place a desired file needs: a file or symlink where a directory
/// must be, a directory where a file must be. They are managed (or the plan fails), and they are
/// removed before writing, deepest first.
fn clearing_deletes(
    live: &Path,
    desired: &DesiredSet,
    tree: &LiveTree,
    adoption: &Adoption<'_>,
) -> Result<Vec<Delete>> {
    let clearing = Clearing {
        live,
        scope: &desired.scope,
        tree,
        adoption,
    };
    let mut clears: BTreeSet<String> = BTreeSet::new();
    // Ancestors already looked at (with theirs): most desired files share them.
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for path in desired.files.keys() {
        clearing.ancestors_in_the_way(path, &mut seen, &mut clears)?;
        clearing.directory_in_the_way(path, &mut clears)?;
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
                previous_id: super::previous_id(adoption.manifest, &path, entry),
                kind: entry.kind,
                path,
            })
        })
        .collect())
}

/// What finding the entries in desired files' way needs.
struct Clearing<'a> {
    live: &'a Path,
    scope: &'a crate::scope::Scope,
    tree: &'a LiveTree,
    adoption: &'a Adoption<'a>,
}

impl<'a> Clearing<'a> {
    /// Ancestors of `path` that are not directories (each looked at once).
    fn ancestors_in_the_way(
        &self,
        path: &'a str,
        seen: &mut std::collections::HashSet<&'a str>,
        clears: &mut BTreeSet<String>,
    ) -> Result<()> {
        let mut ancestor = relpath::parent(path);
        while let Some(dir) = ancestor {
            if dir.is_empty() || !seen.insert(dir) {
                break;
            }
            if let Some(entry) = self.tree.entries.get(dir)
                && entry.kind != LiveKind::Dir
            {
                self.refuse_untouchable(dir, path)?;
                clears.insert(dir.to_owned());
            }
            ancestor = relpath::parent(dir);
        }
        Ok(())
    }

    /// A directory where the file `path` goes: everything in it must go.
    fn directory_in_the_way(&self, path: &str, clears: &mut BTreeSet<String>) -> Result<()> {
        let Some(entry) = self.tree.entries.get(path) else {
            return Ok(());
        };
        if entry.kind != LiveKind::Dir {
            return Ok(());
        }
        self.refuse_untouchable(path, path)?;
        // Entries the scan did not list are left alone, so the directory cannot be emptied:
        // refuse now rather than fail after clearing part of it.
        if let Some(unlisted) = self
            .tree
            .unlisted_in
            .iter()
            .find(|dir| relpath::is_within(dir, path))
        {
            return Err(Error::unsafe_live(
                self.live.join(path),
                format!(
                    "must be replaced to write {path}, but {unlisted} holds entries Stoker does not manage (outside the managed paths, or a name that is not UTF-8)"
                ),
            ));
        }
        for (below, _) in self.tree.below(path) {
            self.refuse_untouchable(below, path)?;
            clears.insert(below.clone());
        }
        clears.insert(path.to_owned());
        Ok(())
    }

    /// Refuses to clear `path` (to write `needed_by`) unless the scope lets the engine touch
    /// it and the adoption rule lets it go.
    fn refuse_untouchable(&self, path: &str, needed_by: &str) -> Result<()> {
        if self.adoption.keeps(self.scope, path) {
            Err(Error::unsafe_live(
                self.live.join(path),
                format!(
                    "must be replaced to write {needed_by}, but Stoker did not write it and the data directory is not adopted ({ADOPT_HOW})"
                ),
            ))
        } else if self.scope.may_touch(path) {
            Ok(())
        } else {
            Err(Error::unsafe_live(
                self.live.join(path),
                format!(
                    "must be replaced to write {needed_by}, but it is protected, excluded or not managed"
                ),
            ))
        }
    }
}
