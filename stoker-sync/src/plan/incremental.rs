//! The incremental plan: when the source says which paths changed since the revision the
//! manifest records, only the destinations those paths map to are planned; every other desired
//! file is the one the manifest records, taken without looking at the live directory.
//!
//! This is what makes a sync between two commits cost what the commit changed instead of what
//! the repository holds. What it does not do is the drift check of the files the commit did not
//! touch: a file edited by hand behind the engine's back is repaired by the next sync of the
//! same revision (the sidecar's periodic resync), which compares every file, or at once with
//! [`PlanOptions::full_drift_check`](super::PlanOptions). Files the manifest itself cannot
//! vouch for (written in the same clock tick as the manifest, "racy clean") are checked on every
//! sync.
//!
//! The plan is only made when its result is the full plan's (less that drift). Anything that can
//! change more than the changed paths' destinations falls back to the full plan: another
//! profile, other variables or another engine version (the record's key), a change at or above
//! a mapping's source (its type may change), a change inside a skipped mapping's source, a
//! directory mapping left without files, a symlink or special entry involved, a conflict, or a
//! live path that is a directory, sits below a non-directory, or needs clearing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;

use stoker_core::relpath::{self, is_within};
use stoker_core::{ContentId, Entry, MappingType, Profile, SyncRequest, TemplateContext};

use super::adoption::Adoption;
use super::compare::{Candidate, Compared, Comparison, SourceChanges};
use super::{Delete, Kept, ManifestUpdate, Ops, Plan, ReportInputs, Target};
use crate::desired::{self, DesiredFile, DesiredSet, PatchRules, ResolvedMapping};
use crate::error::{Error, Result};
use crate::io_threads::IoThreads;
use crate::live::{self, DirRecord, LiveEntry, LiveKind};
use crate::lock::LiveLock;
use crate::manifest::{Manifest, PlanRecord};
use crate::scope::{ManagedRoot, RootKind, Scope};
use crate::warning::Warning;

/// The profile's mappings rendered with the sync's variables, and the key a manifest's
/// [`PlanRecord`] must hold for an incremental plan.
#[derive(Debug, Clone)]
pub struct PlanKey {
    /// Fingerprint of the profile, the variables but `Commit` and `Ref`, the rendered mappings
    /// and the engine's version.
    pub key: ContentId,
    /// `(source, destination)` of each mapping, rendered and normalised.
    pub rendered: Vec<(String, String)>,
}

/// The key of a profile and context (the effective context, vars merged), `None` when a mapping
/// does not render (the full plan reports that).
pub fn plan_key(profile: &Profile, context: &TemplateContext) -> Option<PlanKey> {
    let mut rendered = Vec::with_capacity(profile.mappings.len());
    for (index, mapping) in profile.mappings.iter().enumerate() {
        let paths = desired::render_mapping(index, mapping, context).ok()?;
        rendered.push((paths.source, paths.destination));
    }
    let mut variables = context.clone();
    variables.commit = None;
    variables.reference = None;
    let text = format!(
        "stoker-sync {} manifest {}\0{profile:?}\0{variables:?}\0{rendered:?}",
        env!("CARGO_PKG_VERSION"),
        crate::manifest::MANIFEST_VERSION,
    );
    Some(PlanKey {
        key: ContentId::of_blob(text.as_bytes()),
        rendered,
    })
}

/// What the incremental checks found, for [`plan`] to turn into a [`Plan`].
pub(crate) struct Incremental {
    /// The destinations looked at, with their desired file (`None`: no longer desired).
    pub looked_at: BTreeMap<String, Option<DesiredFile>>,
    /// Live entries of the looked-at destinations (`None`: nothing there).
    pub live: HashMap<String, Option<LiveEntry>>,
    /// The scope, from the recorded mappings.
    pub scope: Scope,
    /// The record for the next manifest (its `rerender` is filled in by the plan).
    pub record: PlanRecord,
}

/// Why the incremental checks stopped: the full plan is needed (and why, for the log), or
/// something failed.
pub(crate) enum Stop {
    /// The full plan is needed, for this reason.
    Fallback(&'static str),
    /// A check failed.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        Stop::Failed(error)
    }
}

impl From<stoker_core::Error> for Stop {
    fn from(error: stoker_core::Error) -> Self {
        Stop::Failed(error.into())
    }
}

/// The outcome of one check.
pub(crate) type Check<T> = std::result::Result<T, Stop>;

/// Falls back to the full plan when `condition` holds.
fn unless(condition: bool, why: &'static str) -> Check<()> {
    if condition {
        Err(Stop::Fallback(why))
    } else {
        Ok(())
    }
}

/// What [`prepare`] found: the changed paths' destinations planned, or the full plan needed
/// (`Ok(None)`, the reason logged), or the error.
pub(crate) fn or_full_plan(check: Check<Incremental>) -> Result<Option<Incremental>> {
    match check {
        Ok(prepared) => Ok(Some(prepared)),
        Err(Stop::Fallback(why)) => {
            tracing::debug!(reason = why, "planning every file");
            Ok(None)
        }
        Err(Stop::Failed(error)) => Err(error),
    }
}

/// Plans the changed paths' destinations: the checks, in order, and what they found (see
/// [`or_full_plan`]). `written` is when the manifest was written.
pub(crate) fn prepare(
    request: &SyncRequest,
    context: &TemplateContext,
    key: &PlanKey,
    manifest: &Manifest,
    written: Option<i64>,
    io_threads: usize,
) -> Check<Incremental> {
    let (record, changed) = matching_record(request, key, manifest)?;
    let written = written.ok_or(Stop::Fallback("the manifest's time is unknown"))?;
    let entries = changed_entries(request, record, changed)?;
    mapping_types_stay(request, record, &entries)?;
    let looked_at = destinations(record, changed, manifest, written)?;
    let scope = scope_of(request, &record.mappings)?;
    let rules = patch_rules(request, context, record)?;
    let desired_at = desired_at(request, record, &scope, &rules, entries, &looked_at)?;
    no_file_below_another(&desired_at, manifest)?;
    let live = live_side(request.live.as_path(), &desired_at, io_threads)?;
    Ok(Incremental {
        looked_at: desired_at,
        live,
        scope,
        record: PlanRecord {
            key: key.key,
            mappings: record.mappings.clone(),
            warnings: record.warnings.clone(),
            rerender: Vec::new(),
        },
    })
}

/// The manifest's plan record, when it was made for this profile and these variables at the
/// revision the changed paths start from; and the changed paths.
fn matching_record<'a>(
    request: &'a SyncRequest,
    key: &PlanKey,
    manifest: &'a Manifest,
) -> Check<(&'a PlanRecord, &'a Vec<String>)> {
    let record = manifest
        .plan
        .as_ref()
        .ok_or(Stop::Fallback("the manifest has no plan record"))?;
    let (Some(changed), Some(previous), Some(recorded)) = (
        request.changed_paths.as_ref(),
        request.previous.as_ref(),
        manifest.revision.as_ref(),
    ) else {
        return Err(Stop::Fallback("the changed paths are not known"));
    };
    unless(
        previous.id != recorded.id || manifest.profile != request.profile.name,
        "the changed paths are not relative to the manifest's revision",
    )?;
    let same_mappings = record.mappings.len() == key.rendered.len()
        && record
            .mappings
            .iter()
            .zip(&key.rendered)
            .all(|(m, (source, destination))| m.source == *source && m.destination == *destination);
    unless(
        record.key != key.key || !same_mappings,
        "the profile or its variables changed",
    )?;
    Ok((record, changed))
}

/// The changed paths as the new revision has them (`None`: gone), when each is a normalised
/// path to a regular file or nothing, and none was skipped by the last desired set.
fn changed_entries(
    request: &SyncRequest,
    record: &PlanRecord,
    changed: &[String],
) -> Check<HashMap<String, Option<Entry>>> {
    let mut entries = HashMap::new();
    for path in changed {
        unless(
            relpath::normalize(path, "changed path").ok().as_deref() != Some(path.as_str()),
            "a changed path is not a normalised relative path",
        )?;
        let entry = request.artifact.entry(path)?;
        unless(
            entry.as_ref().is_some_and(|e| !e.kind.is_regular()),
            "a changed path is a symlink or special entry",
        )?;
        unless(
            record
                .warnings
                .iter()
                .any(|skipped| skipped.may_concern(path)),
            "a changed path had a warning",
        )?;
        entries.insert(path.clone(), entry);
    }
    Ok(entries)
}

/// Mapping types stay what they were: nothing changed at or above a source, nothing inside a
/// skipped mapping's source, and a directory mapping keeps at least one file.
fn mapping_types_stay(
    request: &SyncRequest,
    record: &PlanRecord,
    entries: &HashMap<String, Option<Entry>>,
) -> Check<()> {
    for mapping in &record.mappings {
        let source = mapping.source.as_str();
        for (path, entry) in entries {
            let at_or_above = path == source || (!source.is_empty() && is_within(source, path));
            let inside = is_within(path, source) && path != source;
            match mapping.kind {
                None => unless(
                    at_or_above || inside || source.is_empty(),
                    "a change touches a skipped mapping's source",
                )?,
                Some(MappingType::Dir) => unless(
                    at_or_above,
                    "a change at or above a directory mapping's source",
                )?,
                Some(MappingType::File) => unless(
                    at_or_above && (path != source || entry.is_none()),
                    "a change at or above a file mapping's source",
                )?,
            }
        }
        let lost_a_file = entries
            .iter()
            .any(|(path, entry)| entry.is_none() && is_within(path, source));
        if mapping.kind == Some(MappingType::Dir) && lost_a_file {
            unless(
                !request.artifact.has_entries_below(source)?,
                "a directory mapping's source lost its last file",
            )?;
        }
    }
    Ok(())
}

/// The destinations to look at: those of the changed paths, those rendered from the revision,
/// and those the manifest cannot vouch for.
fn destinations(
    record: &PlanRecord,
    changed: &[String],
    manifest: &Manifest,
    written: i64,
) -> Check<BTreeSet<String>> {
    let mut looked_at: BTreeSet<String> = BTreeSet::new();
    for path in changed {
        for mapping in &record.mappings {
            let Some(destination) = mapping.destination_of(path) else {
                continue;
            };
            unless(
                destination.len() > relpath::MAX_PATH_BYTES
                    || relpath::too_long_component(&destination).is_some(),
                "a destination path is too long",
            )?;
            unless(
                crate::scope::file_name(&destination).starts_with(crate::scope::TEMP_PREFIX),
                "a destination has a temporary file's name",
            )?;
            looked_at.insert(destination);
        }
    }
    looked_at.extend(record.rerender.iter().cloned());
    looked_at.extend(
        manifest
            .files
            .iter()
            .filter(|(_, entry)| entry.stat.ctime >= written)
            .map(|(path, _)| path.to_owned()),
    );
    Ok(looked_at)
}

/// Each recorded mapping's compiled patches (`None` for a skipped mapping).
fn patch_rules(
    request: &SyncRequest,
    context: &TemplateContext,
    record: &PlanRecord,
) -> Check<Vec<Option<PatchRules>>> {
    let mut rules = Vec::with_capacity(record.mappings.len());
    let mappings = request.profile.mappings.iter().zip(&record.mappings);
    for (index, (mapping, resolved)) in mappings.enumerate() {
        let Some(kind) = resolved.kind else {
            rules.push(None);
            continue;
        };
        let mapping_error = |message| Error::Mapping {
            index,
            source_path: resolved.source.clone(),
            destination: resolved.destination.clone(),
            message,
        };
        match desired::compile_patches(index, mapping, kind, context, &mapping_error) {
            Ok(compiled) => rules.push(Some(compiled)),
            Err(_) => return Err(Stop::Fallback("a patch does not compile")),
        }
    }
    Ok(rules)
}

/// The desired file at each destination: the last mapping that maps an existing regular file
/// there (an earlier one shows through when a later one's source is gone).
fn desired_at(
    request: &SyncRequest,
    record: &PlanRecord,
    scope: &Scope,
    rules: &[Option<PatchRules>],
    mut lookups: HashMap<String, Option<Entry>>,
    looked_at: &BTreeSet<String>,
) -> Check<BTreeMap<String, Option<DesiredFile>>> {
    let mut desired_at = BTreeMap::new();
    for destination in looked_at {
        let managed = !scope.is_protected_or_excluded(destination) && scope.is_managed(destination);
        let mut found = None;
        for (index, resolved) in record.mappings.iter().enumerate().rev() {
            let Some((source, relative)) = resolved.source_of(destination).filter(|_| managed)
            else {
                continue;
            };
            let entry = match lookups.get(&source) {
                Some(entry) => entry.clone(),
                None => {
                    let entry = request.artifact.entry(&source)?;
                    lookups.insert(source.clone(), entry.clone());
                    entry
                }
            };
            let (Some(entry), Some(rules)) = (entry, &rules[index]) else {
                continue;
            };
            if !entry.kind.is_regular() {
                continue;
            }
            let mapping = &request.profile.mappings[index];
            found = Some(desired::desired_file(
                index,
                mapping,
                rules,
                destination,
                relative,
                &entry,
            ));
            break;
        }
        desired_at.insert(destination.clone(), found);
    }
    Ok(desired_at)
}

/// No desired file may be a directory of another.
fn no_file_below_another(
    desired_at: &BTreeMap<String, Option<DesiredFile>>,
    manifest: &Manifest,
) -> Check<()> {
    let is_desired = |path: &str| match desired_at.get(path) {
        Some(found) => found.is_some(),
        None => manifest.files.contains_key(path),
    };
    const WHY: &str = "a desired file would be a directory of another";
    for (destination, found) in desired_at {
        if found.is_none() {
            continue;
        }
        let mut ancestor = relpath::parent(destination);
        while let Some(dir) = ancestor.filter(|dir| !dir.is_empty()) {
            unless(is_desired(dir), WHY)?;
            ancestor = relpath::parent(dir);
        }
        let prefix = format!("{destination}/");
        let below_recorded = manifest
            .files
            .with_prefix(&prefix)
            .any(|(path, _)| is_desired(path));
        let below_new = desired_at
            .range(prefix.clone()..)
            .take_while(|(path, _)| path.starts_with(&prefix))
            .any(|(_, found)| found.is_some());
        unless(below_recorded || below_new, WHY)?;
    }
    Ok(())
}

/// The live side of each destination: nothing but real directories above it, and no
/// directory where it is (those need the full plan's clearing).
fn live_side(
    live: &Path,
    desired_at: &BTreeMap<String, Option<DesiredFile>>,
    io_threads: usize,
) -> Check<HashMap<String, Option<LiveEntry>>> {
    let looked_up = look_up_live(live, desired_at.keys(), io_threads);
    let mut entries = HashMap::new();
    for destination in desired_at.keys() {
        unless(
            !ancestors_are_dirs(live, destination, &looked_up)?,
            "a live path lies below something that is not a directory",
        )?;
        let entry = looked_up.entry(live, destination)?;
        unless(
            entry.is_some_and(|e| e.kind == LiveKind::Dir),
            "a live directory is where a file goes or was",
        )?;
        entries.insert(destination.clone(), entry);
    }
    Ok(entries)
}

/// The plan of an incremental sync: the looked-at destinations compared as the full plan
/// compares them, every other desired file taken from the manifest as it is.
pub(super) fn plan(
    request: &SyncRequest,
    context: TemplateContext,
    prepared: Incremental,
    mut manifest: Manifest,
    written: Option<i64>,
    lock: LiveLock,
    started: Instant,
) -> Result<Plan> {
    let Incremental {
        looked_at,
        live: live_entries,
        scope,
        mut record,
    } = prepared;
    let comparison = Comparison {
        live: request.live.as_path(),
        artifact: request.artifact.as_ref(),
        context: &context,
        changes: SourceChanges::new(request, Some(&manifest)),
        written,
    };
    let candidates: Vec<Candidate<'_>> = looked_at
        .iter()
        .filter_map(|(path, found)| {
            Some(Candidate {
                path,
                file: found.as_ref()?,
                live: live_entries.get(path).copied().flatten(),
                recorded: manifest.files.get(path),
            })
        })
        .collect();
    let Compared {
        writes,
        unchanged,
        rerender,
    } = comparison.compare_all(&candidates)?;
    drop(candidates);
    record.rerender.extend(rerender);
    let adoption = Adoption::new(&request.profile, Some(&manifest));
    let (deletes, kept) = no_longer_desired(&looked_at, &live_entries, &scope, &adoption);
    let carried = Carried::of(&manifest, &looked_at);
    tracing::debug!(
        looked_at = looked_at.len(),
        writes = writes.len(),
        deletes = deletes.len(),
        unchanged = unchanged.len() + carried.count,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "incremental plan"
    );
    let mut warnings: Vec<Warning> = record.warnings.iter().cloned().map(Warning::from).collect();
    let kept: Vec<&str> = kept.iter().map(String::as_str).collect();
    warnings.extend(Adoption::warning(&kept));
    let desired = desired_set(looked_at, scope, &record);
    let (dirs, dir_changes) = vouched_dirs(std::mem::take(&mut manifest.dirs), written);
    let report = ReportInputs {
        warnings,
        previous: manifest.revision.clone(),
        projects: carried.projects,
    };
    Ok(Plan {
        target: Target::new(request, context, started, Some(lock)),
        desired,
        ops: Ops {
            clears: Vec::new(),
            writes,
            deletes,
        },
        kept: Kept {
            unchanged,
            carried: carried.count,
        },
        record: ManifestUpdate::Append {
            base: Box::new(manifest),
            dirs,
            dir_changes,
            forgotten: carried.forgotten,
            plan: record,
        },
        report,
    })
}

/// The desired set of an incremental plan: the looked-at files still desired.
fn desired_set(
    looked_at: BTreeMap<String, Option<DesiredFile>>,
    scope: Scope,
    record: &PlanRecord,
) -> DesiredSet {
    let files = looked_at
        .into_iter()
        .filter_map(|(path, found)| Some((path, found?)))
        .collect();
    DesiredSet {
        files,
        scope,
        warnings: record.warnings.clone(),
        mappings: record.mappings.clone(),
    }
}

/// The looked-at destinations no longer desired that hold a live entry: deleted where the
/// scope lets the engine touch them, or kept (the second list) when the data directory is not
/// adopted and Stoker did not write them.
fn no_longer_desired(
    looked_at: &BTreeMap<String, Option<DesiredFile>>,
    live_entries: &HashMap<String, Option<LiveEntry>>,
    scope: &Scope,
    adoption: &Adoption<'_>,
) -> (Vec<Delete>, Vec<String>) {
    let mut deletes = Vec::new();
    let mut kept = Vec::new();
    for (path, found) in looked_at {
        let Some(entry) = live_entries.get(path).copied().flatten() else {
            continue;
        };
        if found.is_some() || !scope.may_touch(path) {
            continue;
        }
        if adoption.keeps(scope, path) {
            kept.push(path.clone());
        } else {
            deletes.push(Delete {
                path: path.clone(),
                kind: entry.kind,
                previous_id: super::previous_id(adoption.manifest, path, &entry),
            });
        }
    }
    (deletes, kept)
}

/// What an incremental plan takes from the manifest without looking: every desired file it did
/// not look at.
struct Carried {
    /// How many recorded files were not looked at (up to date as recorded).
    count: usize,
    /// Recorded destinations looked at and no longer desired (dropped from the manifest).
    forgotten: Vec<String>,
    /// Ignition projects, of the looked-at files and of the recorded ones.
    projects: Vec<String>,
}

impl Carried {
    fn of(manifest: &Manifest, looked_at: &BTreeMap<String, Option<DesiredFile>>) -> Self {
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
        Carried {
            count: recorded.len() - recorded_looked_at,
            forgotten,
            projects,
        }
    }
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

/// The scope the recorded mappings give (what the full plan's desired set would build).
fn scope_of(request: &SyncRequest, mappings: &[ResolvedMapping]) -> Result<Scope> {
    let roots = mappings
        .iter()
        .filter_map(|mapping| {
            Some(ManagedRoot {
                path: mapping.destination.clone(),
                kind: match mapping.kind? {
                    MappingType::Dir => RootKind::Dir,
                    MappingType::File => RootKind::File,
                },
            })
        })
        .collect();
    Ok(Scope::new(
        roots,
        desired::held_destinations(mappings),
        request.profile.excludes()?,
        desired::protected_globs(),
    ))
}

/// The `lstat` of each of `destinations` and of every directory above them, made on up to
/// `threads` threads at once: when the live directory's metadata is not cached, each lookup
/// waits for the disk, and one thread would wait for them one after another.
fn look_up_live<'a>(
    live: &Path,
    destinations: impl Iterator<Item = &'a String>,
    threads: usize,
) -> LiveLookups<'a> {
    let mut paths: BTreeSet<&'a str> = BTreeSet::new();
    for destination in destinations {
        paths.insert(destination);
        let mut dir = relpath::parent(destination);
        while let Some(current) = dir.filter(|current| !current.is_empty()) {
            if !paths.insert(current) {
                break;
            }
            dir = relpath::parent(current);
        }
    }
    let paths: Vec<&'a str> = paths.into_iter().collect();
    let threads = IoThreads::new(threads, paths.len());
    let found = threads.run(|| {
        paths
            .par_iter()
            .map(|path| {
                let entry = live::lstat(&live.join(path)).ok();
                (*path, entry.map(|found| found.map(|m| LiveEntry::of(&m))))
            })
            .collect()
    });
    LiveLookups(found)
}

/// What [`look_up_live`] found at each path, `None` where the lookup failed: that is an error
/// only for a caller that needs the path (nothing below a missing directory is needed), and the
/// lookup is made again to report it.
struct LiveLookups<'a>(HashMap<&'a str, Option<Option<LiveEntry>>>);

impl LiveLookups<'_> {
    fn entry(&self, live: &Path, path: &str) -> Result<Option<LiveEntry>> {
        match self.0.get(path) {
            Some(Some(entry)) => Ok(*entry),
            _ => Ok(live::lstat(&live.join(path))?.map(|m| LiveEntry::of(&m))),
        }
    }
}

/// True when every ancestor of `path` in the live directory is a real directory or missing (then
/// so is everything below it).
fn ancestors_are_dirs(live: &Path, path: &str, looked_up: &LiveLookups<'_>) -> Result<bool> {
    let mut ancestors = Vec::new();
    let mut dir = relpath::parent(path);
    while let Some(current) = dir.filter(|current| !current.is_empty()) {
        ancestors.push(current);
        dir = relpath::parent(current);
    }
    // From the top down: a missing directory settles everything below it.
    for ancestor in ancestors.into_iter().rev() {
        match looked_up.entry(live, ancestor)? {
            None => return Ok(true),
            Some(entry) if entry.kind != LiveKind::Dir => return Ok(false),
            Some(_) => {}
        }
    }
    Ok(true)
}
