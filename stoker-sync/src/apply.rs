//! Applying a plan: clear, create directories, write atomically, delete orphans, prune emptied
//! directories, record the manifest. Crash-safe at every step.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use stoker_core::relpath;
use stoker_core::{ContentId, FileChange, Revision, SyncReport};

use crate::content;
use crate::diff_report;
use crate::error::{Error, Result};
use crate::fsops::{self, Steps};
use crate::io_threads::IoThreads;
use crate::journal;
use crate::live::{self, DirRecord, LiveKind};
use crate::manifest::PlanRecord;
use crate::manifest::{self, MANIFEST_VERSION, Manifest, ManifestEntry};
use crate::path_map::PathMap;
use crate::plan::{Delete, ManifestUpdate, Plan, Target, WriteKind};
use crate::warning::Warning;

/// Knobs for `apply`.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// `fsync` every written file before renaming it into place (durable across power loss;
    /// slower). Renames are atomic against process crashes either way.
    pub fsync: bool,
    /// How many JSON diff reports to keep in `.stoker/reports/`.
    pub keep_reports: usize,
    /// Crash tests only: fail when this file-system step completes.
    pub fail_at_step: Option<u64>,
    /// How many threads produce, write and delete files at once, and look at the live files an
    /// incremental plan checks (through [`crate::MergeStrategy`];
    /// [`crate::DEFAULT_IO_THREADS`] by default). A file-system call mostly waits (for the
    /// disk, for a discard, for the file system's locks), so more threads than cores pay off;
    /// producing the content (reading blobs, rendering) is the only part that needs a core.
    /// `0` or `1`: no threads of its own, the work runs on the caller's rayon pool.
    pub io_threads: usize,
    /// Disk-space tests only (feature `fault-injection`): the free space the check before
    /// writing sees, instead of asking the file system.
    #[cfg(feature = "fault-injection")]
    pub assume_free_bytes: Option<u64>,
    /// Disk-full tests only (feature `fault-injection`): writing file content fails with
    /// `ENOSPC` once this many bytes were written, as a file system filled by someone else
    /// after the check would.
    #[cfg(feature = "fault-injection")]
    pub disk_full_after_bytes: Option<u64>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            fsync: false,
            keep_reports: 20,
            fail_at_step: None,
            io_threads: crate::DEFAULT_IO_THREADS,
            #[cfg(feature = "fault-injection")]
            assume_free_bytes: None,
            #[cfg(feature = "fault-injection")]
            disk_full_after_bytes: None,
        }
    }
}

/// Carries out a plan and reports what it did, in a straight line: recover from an interrupted
/// sync, carry out the operations, persist the manifest update, report.
pub fn apply(mut plan: Plan, options: &ApplyOptions) -> Result<SyncReport> {
    if plan.target.dry_run {
        return dry_run_report(plan);
    }
    let steps = Steps::failing_at(options.fail_at_step);
    #[cfg(feature = "fault-injection")]
    let steps = steps.with_byte_budget(options.disk_full_after_bytes);
    let warnings = recover(&plan)?;
    let done = execute(&plan, options, &steps)?;
    // Counted now: persisting moves the unchanged files' records into the manifest.
    let unchanged = plan.unchanged() as u64;
    // From here on every planned file is at the new revision.
    if let Err(error) = persist(&mut plan, done.entries, done.rerender, &steps) {
        let applied = all_written(&plan);
        return Err(disk_full(error, &plan, applied));
    }
    journal::finish(&plan.target.live)?;
    let report = report(&plan, unchanged, warnings, done.bytes_written, |path| {
        done.ids.get(path).copied()
    });
    // The report now says all that is left to say: the plan's file lists and the written
    // files' ids go before the diff report is written (for a cold sync of 20k files they
    // were a third of the peak heap). The lock, in the target, is held until the end.
    drop(done.ids);
    let Plan {
        target,
        report: inputs,
        ..
    } = plan;
    keep_report(&target, inputs.previous.as_ref(), &report, options);
    Ok(report)
}

/// Cleans up after a previous run that died (its temporaries, maybe directories to prune)
/// before anything else; the plan's warnings with what that found.
fn recover(plan: &Plan) -> Result<Vec<Warning>> {
    let mut warnings = plan.report.warnings.clone();
    let recovered = journal::recover(&plan.target.live, &plan.desired.scope)?;
    if recovered.temporaries > 0 {
        warnings.push(Warning::RemovedTemporaries(recovered.temporaries));
    }
    warnings.extend(recovered.warnings.into_iter().map(Warning::Journal));
    Ok(warnings)
}

/// What the writes did.
#[derive(Default)]
struct Executed {
    /// Each written file's content id.
    ids: std::collections::HashMap<String, ContentId>,
    bytes_written: u64,
    /// The written files' manifest records.
    entries: Vec<(String, ManifestEntry)>,
    /// Written files whose content depends on the revision.
    rerender: Vec<String>,
}

/// Carries out the plan's operations under the journal: clears, directories, writes, then the
/// deletions and the pruning of emptied directories.
fn execute(plan: &Plan, options: &ApplyOptions, steps: &Steps) -> Result<Executed> {
    let live = &plan.target.live;
    let write_dirs: BTreeSet<String> = plan
        .ops
        .writes
        .iter()
        .map(|w| relpath::parent(&w.path).unwrap_or("").to_owned())
        .collect();
    let prune_dirs = prune_candidates(plan);
    check_free_space(plan, options, &write_dirs)?;
    // Also when only the manifest is rewritten: a sync that finds the journal plans every
    // file, which a manifest torn between its two files needs.
    if !plan.is_noop() || !matches!(plan.record, ManifestUpdate::Current) {
        journal::begin(live, &write_dirs, &prune_dirs)?;
    }
    for delete in &plan.ops.clears {
        fsops::remove(&live.join(&delete.path), delete.kind, steps)?;
    }
    fsops::create_all_dirs(live, write_dirs.iter().map(String::as_str), steps)?;
    let io = IoThreads::new(
        options.io_threads,
        plan.ops.writes.len() + plan.ops.deletes.len(),
    );
    let (done, replaced) = write_all(plan, options, steps, &io)?;
    remove_old(plan, steps, &io, &replaced, &prune_dirs)?;
    Ok(done)
}

/// Writes the plan's files; what they did, and the files they swapped out. When a write fails,
/// what the others swapped out goes now; anything left is the next sync's to recover, the
/// journal naming its directory.
fn write_all(
    plan: &Plan,
    options: &ApplyOptions,
    steps: &Steps,
    io: &IoThreads,
) -> Result<(Executed, Vec<std::path::PathBuf>)> {
    let written = io.run(|| write_files(plan, options, steps));
    let mut done = Executed {
        ids: std::collections::HashMap::with_capacity(written.len()),
        entries: Vec::with_capacity(written.len()),
        ..Executed::default()
    };
    let mut replaced = Vec::new();
    let mut failed = None;
    for (result, write) in written.into_iter().zip(&plan.ops.writes) {
        let (path, id, entry, bytes, swapped_out) = match result {
            Ok(written) => written,
            Err(error) => {
                failed.get_or_insert(error);
                continue;
            }
        };
        replaced.extend(swapped_out);
        done.bytes_written += bytes;
        done.ids.insert(path.clone(), id);
        if !write.file.transform.is_identity() && entry.recipe.is_none() {
            done.rerender.push(path.clone());
        }
        done.entries.push((path, entry));
    }
    if let Some(error) = failed {
        for old in &replaced {
            let _ = fsops::remove_replaced(old, steps);
        }
        let applied = done.entries.iter().map(|(path, _)| path.clone());
        return Err(disk_full(error, plan, applied));
    }
    Ok((done, replaced))
}

/// Removes the files the writes swapped out with the orphans, on the I/O threads, then prunes
/// the directories left empty; before the directories they were in are recorded for the
/// manifest (removing an entry changes its directory's times).
fn remove_old(
    plan: &Plan,
    steps: &Steps,
    io: &IoThreads,
    replaced: &[std::path::PathBuf],
    prune_dirs: &BTreeSet<String>,
) -> Result<()> {
    let live = &plan.target.live;
    let started_removing = std::time::Instant::now();
    let (removed, deleted) = io.run(|| {
        rayon::join(
            || {
                replaced
                    .par_iter()
                    .try_for_each(|old| fsops::remove_replaced(old, steps))
            },
            || {
                plan.ops.deletes.par_iter().try_for_each(|delete| {
                    fsops::remove(&live.join(&delete.path), delete.kind, steps)
                })
            },
        )
    });
    if let Err(error) = removed
        .and(deleted)
        .and_then(|()| fsops::remove_empty_dirs(live, prune_dirs, steps))
    {
        return Err(disk_full(error, plan, all_written(plan)));
    }
    tracing::debug!(
        writes = plan.ops.writes.len(),
        replaced = replaced.len(),
        deletes = plan.ops.deletes.len(),
        removing_ms = started_removing.elapsed().as_millis() as u64,
        elapsed_ms = plan.target.started.elapsed().as_millis() as u64,
        "files written and deleted"
    );
    Ok(())
}

/// Every file the plan writes (all at the new revision once the writes are done).
fn all_written(plan: &Plan) -> Vec<String> {
    plan.ops
        .writes
        .iter()
        .map(|write| write.path.clone())
        .collect()
}

/// Records what the sync did in the manifest as the plan decided: nothing when it is already
/// current, written whole, or appended to its log.
fn persist(
    plan: &mut Plan,
    written: Vec<(String, ManifestEntry)>,
    rerender: Vec<String>,
    steps: &Steps,
) -> Result<()> {
    let with_rerender = |mut record: PlanRecord| {
        record.rerender.extend(rerender);
        record.rerender.sort();
        record
    };
    match std::mem::replace(&mut plan.record, ManifestUpdate::Current) {
        ManifestUpdate::Current => Ok(()),
        ManifestUpdate::Rewrite { dirs, plan: record } => {
            let (dirs, _) = directory_records(plan, dirs);
            steps.step()?;
            rewrite_manifest(plan, written, dirs, record.map(with_rerender))
        }
        ManifestUpdate::Append {
            mut base,
            dirs,
            mut dir_changes,
            forgotten,
            plan: record,
        } => {
            let (dirs, changes) = directory_records(plan, dirs);
            steps.step()?;
            // Only what this sync looked at changes: appended to the manifest's log.
            base.dirs = dirs;
            dir_changes.extend(changes);
            let files = written
                .into_iter()
                .chain(std::mem::take(&mut plan.kept.unchanged))
                .map(|(path, entry)| (path, Some(entry)))
                .chain(forgotten.into_iter().map(|path| (path, None)))
                .collect();
            let delta = manifest::ManifestDelta {
                revision: Some(plan.target.artifact.revision().clone()),
                profile: plan.target.profile.clone(),
                plan: Some(with_rerender(record)),
                files,
                dirs: dir_changes,
            };
            append_to_manifest(&plan.target.live, &mut base, delta)
        }
    }
}

/// Writes the whole manifest: built in one go (a path is either written or unchanged); the
/// plan's entries are moved, only their count is reported.
fn rewrite_manifest(
    plan: &mut Plan,
    written: Vec<(String, ManifestEntry)>,
    dirs: BTreeMap<String, DirRecord>,
    record: Option<PlanRecord>,
) -> Result<()> {
    let storing = std::time::Instant::now();
    let unchanged = std::mem::take(&mut plan.kept.unchanged);
    let files: PathMap<ManifestEntry> = written.into_iter().chain(unchanged).collect();
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        revision: Some(plan.target.artifact.revision().clone()),
        profile: plan.target.profile.clone(),
        files,
        dirs,
        plan: record,
    };
    manifest::store(&plan.target.live, &manifest)?;
    tracing::debug!(
        files = manifest.files.len(),
        dirs = manifest.dirs.len(),
        elapsed_ms = storing.elapsed().as_millis() as u64,
        "manifest written"
    );
    Ok(())
}

/// Appends what the sync changed to the manifest's log (or folds it in, see
/// [`manifest::record`]).
fn append_to_manifest(
    live: &std::path::Path,
    base: &mut Manifest,
    delta: manifest::ManifestDelta,
) -> Result<()> {
    let storing = std::time::Instant::now();
    let (files, dirs) = (delta.files.len(), delta.dirs.len());
    let recorded = manifest::record(live, base, delta)?;
    tracing::debug!(
        files,
        dirs,
        ?recorded,
        elapsed_ms = storing.elapsed().as_millis() as u64,
        "manifest changes recorded"
    );
    Ok(())
}

/// Keeps the JSON diff report and logs the sync. The sync itself succeeded: a report that
/// could not be kept is worth a warning only.
fn keep_report(
    target: &Target,
    previous: Option<&Revision>,
    report: &SyncReport,
    options: &ApplyOptions,
) {
    let live = &target.live;
    if let Err(error) = diff_report::store(live, previous, report, options.keep_reports) {
        tracing::warn!(live = %live.display(), %error, "could not keep the JSON diff report");
    }
    tracing::info!(
        live = %live.display(),
        revision = %report.revision,
        added = report.added.len(),
        modified = report.modified.len(),
        deleted = report.deleted.len(),
        unchanged = report.unchanged,
        bytes_written = report.bytes_written,
        "sync applied"
    );
}

/// Produces and writes the plan's files, each atomically, in parallel: for each, the path, its
/// content id, its manifest entry, its size and what it swapped out (to be removed), in the
/// plan's order. A file replaces another by an exchange ([`fsops::write_atomic_swapping`]),
/// a new one is renamed into place.
#[allow(clippy::type_complexity)]
fn write_files(
    plan: &Plan,
    options: &ApplyOptions,
    steps: &Steps,
) -> Vec<
    Result<(
        String,
        ContentId,
        ManifestEntry,
        u64,
        Option<std::path::PathBuf>,
    )>,
> {
    plan.ops
        .writes
        .par_iter()
        .map(|write| {
            let (mut content, expected_len) = content::open(
                plan.target.artifact.as_ref(),
                &write.path,
                &write.file,
                &plan.target.context,
            )?;
            let target = plan.target.live.join(&write.path);
            let (executable, fsync) = (write.file.executable, options.fsync);
            let (stat, copied, replaced) = match write.kind {
                WriteKind::Modify => {
                    let swapped = fsops::write_atomic_swapping(
                        &target,
                        &mut content,
                        expected_len,
                        executable,
                        fsync,
                        steps,
                    )?;
                    (swapped.stat, swapped.copied, swapped.replaced)
                }
                WriteKind::Add => {
                    let (stat, copied) = fsops::write_atomic(
                        &target,
                        &mut content,
                        expected_len,
                        executable,
                        fsync,
                        steps,
                    )?;
                    (stat, copied, None)
                }
            };
            let id = copied.id;
            if write.file.transform.is_identity() && write.file.source_id.is_none() {
                plan.target
                    .artifact
                    .record_content_id(&write.file.source, id);
            }
            // The recipe holds only for what the plan computed (a local source may have
            // changed in between).
            let recipe = write
                .planned
                .filter(|(planned, _)| *planned == id)
                .and_then(|(_, recipe)| recipe);
            Ok((
                write.path.clone(),
                id,
                ManifestEntry { id, stat, recipe },
                copied.len,
                replaced,
            ))
        })
        .collect()
}

/// The margin kept beyond the files' own sizes for the engine's own files (journal, manifest
/// and its log, diff report, temporaries of those): a fixed part, and a part per desired file
/// and per change.
const STATE_MARGIN_FIXED: u64 = 1 << 20;
/// Per desired file (a manifest record is about 90 bytes; the new manifest is written beside
/// the old one).
const STATE_MARGIN_PER_FILE: u64 = 256;
/// Per write or deletion (the journal, the report's entry).
const STATE_MARGIN_PER_CHANGE: u64 = 1024;

/// The bytes an apply of `plan` may need on the live file system, each file rounded up to
/// `block` bytes: every write's size (with the swap, every new file exists before the old ones
/// are freed, so nothing freed is counted), one block per directory that may be created
/// (`new_dirs`), and a margin for the engine's own files (1 MiB, 256 bytes per desired file,
/// 1 KiB per write or deletion). A file copied as it is counts its source's size (even when
/// sparse: its holes are not known in advance); a transformed one twice its source's size
/// (rendering and patches can make it grow; its exact size is known only once
/// produced).
pub fn space_needed(plan: &Plan, block: u64, new_dirs: usize) -> u64 {
    let block = block.max(1);
    let round = |bytes: u64| bytes.div_ceil(block).saturating_mul(block);
    let files = plan.ops.writes.iter().fold(0u64, |sum, write| {
        let size = if write.file.transform.is_identity() {
            write.file.source_size
        } else {
            write.file.source_size.saturating_mul(2)
        };
        sum.saturating_add(round(size))
    });
    let changes = (plan.ops.writes.len() + plan.ops.deletes.len()) as u64;
    files
        .saturating_add(block.saturating_mul(new_dirs as u64))
        .saturating_add(STATE_MARGIN_FIXED)
        .saturating_add(STATE_MARGIN_PER_FILE.saturating_mul(plan.desired.files.len() as u64))
        .saturating_add(STATE_MARGIN_PER_CHANGE.saturating_mul(changes))
}

/// Refuses, before anything is written, an apply whose writes do not fit in the live file
/// system's free space ([`Error::InsufficientSpace`]). The free space is what an unprivileged
/// writer may use (`f_bavail × f_frsize`); where it cannot be asked (another system, a
/// `statvfs` error), the apply goes on, and a full disk is reported as [`Error::DiskFull`].
fn check_free_space(
    plan: &Plan,
    options: &ApplyOptions,
    write_dirs: &BTreeSet<String>,
) -> Result<()> {
    if plan.ops.writes.is_empty() {
        return Ok(());
    }
    #[cfg(feature = "fault-injection")]
    let assumed = options.assume_free_bytes.map(|bytes| (bytes, 4096));
    #[cfg(not(feature = "fault-injection"))]
    let assumed = {
        let _ = options;
        None
    };
    let Some((available, block)) = assumed.or_else(|| free_space(&plan.target.live)) else {
        return Ok(());
    };
    let needed = space_needed(plan, block, write_dirs.len());
    tracing::debug!(live = %plan.target.live.display(), needed, available, "free space checked");
    if needed > available {
        return Err(Error::InsufficientSpace {
            live: plan.target.live.clone(),
            needed,
            available,
        });
    }
    Ok(())
}

/// The bytes available to an unprivileged writer on the file system of `path`, and its block
/// size.
#[cfg(target_os = "linux")]
fn free_space(path: &std::path::Path) -> Option<(u64, u64)> {
    match rustix::fs::statvfs(path) {
        Ok(stat) => Some((
            stat.f_bavail.saturating_mul(stat.f_frsize),
            stat.f_frsize.max(1),
        )),
        Err(error) => {
            tracing::warn!(
                path = %path.display(),
                %error,
                "could not ask the file system for its free space; not checked"
            );
            None
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn free_space(_path: &std::path::Path) -> Option<(u64, u64)> {
    None
}

/// `error` as [`Error::DiskFull`] naming the files already at the new revision (`applied`),
/// when it is the file system running out of space; otherwise as it is.
fn disk_full(error: Error, plan: &Plan, applied: impl IntoIterator<Item = String>) -> Error {
    if !error.is_disk_full() || matches!(error, Error::DiskFull { .. }) {
        return error;
    }
    let mut applied: Vec<String> = applied.into_iter().collect();
    applied.sort();
    let applied_count = applied.len();
    applied.truncate(crate::error::APPLIED_LISTED);
    tracing::error!(
        live = %plan.target.live.display(),
        applied = applied_count,
        planned = plan.ops.writes.len(),
        %error,
        "the file system is full; the sync stopped part way"
    );
    Error::DiskFull {
        live: plan.target.live.clone(),
        revision: plan.target.artifact.revision().id.clone(),
        planned: plan.ops.writes.len(),
        applied_count,
        applied,
        source: Box::new(error),
    }
}

/// A dry run: the same report, computing content ids by reading (in chunks), writing nothing.
fn dry_run_report(plan: Plan) -> Result<SyncReport> {
    let ids: Vec<Result<(String, ContentId, u64)>> = plan
        .ops
        .writes
        .par_iter()
        .map(|write| {
            let (id, len) = content::hash_content(
                plan.target.artifact.as_ref(),
                &write.path,
                &write.file,
                &plan.target.context,
            )?;
            Ok((write.path.clone(), id, len))
        })
        .collect();
    let mut map = std::collections::HashMap::new();
    let mut bytes = 0;
    for id in ids {
        let (path, id, len) = id?;
        bytes += len;
        map.insert(path, id);
    }
    let warnings = plan.report.warnings.clone();
    let unchanged = plan.unchanged() as u64;
    Ok(report(&plan, unchanged, warnings, bytes, |path| {
        map.get(path).copied()
    }))
}

fn report(
    plan: &Plan,
    unchanged: u64,
    warnings: Vec<Warning>,
    bytes_written: u64,
    id_of: impl Fn(&str) -> Option<ContentId>,
) -> SyncReport {
    let mut added = Vec::new();
    let mut modified = Vec::new();
    for write in &plan.ops.writes {
        let change = FileChange {
            path: write.path.clone(),
            content_id: id_of(&write.path),
            previous_content_id: write.previous_id,
        };
        match write.kind {
            WriteKind::Add => added.push(change),
            WriteKind::Modify => modified.push(change),
        }
    }
    let mut deleted: Vec<FileChange> = plan
        .deletes()
        .filter(|d: &&Delete| d.kind != LiveKind::Dir)
        .map(|d| FileChange {
            path: d.path.clone(),
            content_id: None,
            previous_content_id: d.previous_id,
        })
        .collect();
    deleted.sort_by(|a, b| a.path.cmp(&b.path));
    SyncReport {
        revision: plan.target.artifact.revision().clone(),
        profile: plan.target.profile.clone(),
        dry_run: plan.target.dry_run,
        added,
        modified,
        deleted,
        unchanged,
        bytes_written,
        warnings: warnings.iter().map(ToString::to_string).collect(),
        duration: plan.target.started.elapsed(),
        projects: plan.report.projects.clone(),
    }
}

/// At most this many directories changed by a sync are listed again for the manifest; past it
/// (a first sync into an empty directory), their records are dropped and the next sync lists
/// them, as it would without a manifest.
const REFRESH_LIMIT: usize = 1024;

/// The directory records for the next manifest: the plan's scan, with the directories this apply
/// changed listed again (after every change, right before the manifest is written); and the
/// records replaced or dropped, for a manifest recorded as a delta.
///
/// Nothing here decides correctness: a record whose directory changed since (recovery removing
/// an interrupted sync's temporaries, the gateway adding a file) no longer matches its `lstat`,
/// so the next scan lists that directory.
#[allow(clippy::type_complexity)]
fn directory_records(
    plan: &Plan,
    mut dirs: BTreeMap<String, DirRecord>,
) -> (
    BTreeMap<String, DirRecord>,
    Vec<(String, Option<DirRecord>)>,
) {
    let mut changed: BTreeSet<String> = BTreeSet::new();
    let mut parents_only: BTreeSet<&str> = BTreeSet::new();
    // (path, is a directory, only its parent changed)
    let changed_paths = plan
        .ops
        .clears
        .iter()
        .map(|d| (d.path.as_str(), d.kind == LiveKind::Dir, false))
        .chain(
            plan.ops
                .deletes
                .iter()
                .map(|d| (d.path.as_str(), d.kind == LiveKind::Dir, false)),
        )
        .chain(plan.ops.writes.iter().map(|w| {
            // A file replaced in place changes its directory (the rename) and nothing above.
            (w.path.as_str(), false, w.kind == WriteKind::Modify)
        }));
    for (path, is_dir, only_parent) in changed_paths {
        if is_dir {
            changed.insert(path.to_owned());
        }
        if only_parent {
            // Kept apart: `changed` holds whole ancestor chains, which the walk below relies on
            // to stop early.
            if let Some(parent) = relpath::parent(path) {
                parents_only.insert(parent);
            }
            continue;
        }
        // Every ancestor: writes may have created them, deletions may have pruned them.
        let mut dir = relpath::parent(path);
        while let Some(current) = dir {
            if !changed.insert(current.to_owned()) {
                break;
            }
            dir = relpath::parent(current);
        }
    }
    changed.extend(parents_only.into_iter().map(str::to_owned));
    if changed.is_empty() {
        return (dirs, Vec::new());
    }
    if changed.len() > REFRESH_LIMIT {
        for dir in &changed {
            dirs.remove(dir);
        }
        let dropped = changed.into_iter().map(|dir| (dir, None)).collect();
        return (dirs, dropped);
    }
    let changes = live::refresh(&plan.target.live, &plan.desired.scope, &mut dirs, &changed);
    (dirs, changes)
}

/// Directories the deletions (and clears) may empty: their ancestors that may be pruned
/// (strictly below a directory root, not protected nor excluded). Whichever of them are empty
/// after the deletions are removed.
fn prune_candidates(plan: &Plan) -> BTreeSet<String> {
    let scope = &plan.desired.scope;
    let mut candidates = BTreeSet::new();
    for delete in plan.deletes() {
        let mut dir = relpath::parent(&delete.path);
        // An ancestor that may not be pruned stays, and so do the directories above it.
        while let Some(current) = dir.filter(|current| scope.may_prune(current)) {
            candidates.insert(current.to_owned());
            dir = relpath::parent(current);
        }
    }
    candidates
}
