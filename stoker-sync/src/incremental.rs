//! The incremental plan: when the source says which paths changed since the revision the
//! manifest records, only the destinations those paths map to are planned; every other desired
//! file is the one the manifest records, taken without looking at the live directory.
//!
//! This is what makes a sync between two commits cost what the commit changed instead of what
//! the repository holds. What it does not do is the drift check of the files the commit did not
//! touch: a file edited by hand behind the engine's back is repaired by the next sync of the
//! same revision (the sidecar's periodic resync), which compares every file, or at once with
//! [`PlanOptions::full_drift_check`](crate::plan::PlanOptions). Files the manifest itself cannot
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

use rayon::prelude::*;

use stoker_core::relpath::{self, is_within};
use stoker_core::{ContentId, Entry, MappingType, Profile, SyncRequest, TemplateContext};

use crate::desired::{self, DesiredFile, PatchRules, ResolvedMapping};
use crate::error::Result;
use crate::io_threads::IoThreads;
use crate::live::{self, LiveEntry, LiveKind};
use crate::manifest::{Manifest, PlanRecord};
use crate::scope::{ManagedRoot, RootKind, Scope};

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

/// What an incremental plan decided, for [`crate::plan`] to turn into a [`crate::Plan`].
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

/// Plans the changed paths' destinations, or says the full plan is needed (`Ok(None)`).
/// `written` is when the manifest was written.
pub(crate) fn prepare(
    request: &SyncRequest,
    context: &TemplateContext,
    key: &PlanKey,
    manifest: &Manifest,
    written: Option<i64>,
    io_threads: usize,
) -> Result<Option<Incremental>> {
    let fallback = |why: &str| {
        tracing::debug!(reason = why, "planning every file");
        Ok(None)
    };
    let Some(record) = manifest.plan.as_ref() else {
        return fallback("the manifest has no plan record");
    };
    let (Some(changed), Some(previous), Some(recorded)) = (
        request.changed_paths.as_ref(),
        request.previous.as_ref(),
        manifest.revision.as_ref(),
    ) else {
        return fallback("the changed paths are not known");
    };
    if previous.id != recorded.id || manifest.profile != request.profile.name {
        return fallback("the changed paths are not relative to the manifest's revision");
    }
    if record.key != key.key
        || record.mappings.len() != key.rendered.len()
        || record
            .mappings
            .iter()
            .zip(&key.rendered)
            .any(|(m, (source, destination))| m.source != *source || m.destination != *destination)
    {
        return fallback("the profile or its variables changed");
    }
    let Some(written) = written else {
        return fallback("the manifest's time is unknown");
    };
    let artifact = request.artifact.as_ref();

    // The changed paths as the new revision has them.
    let mut entries: HashMap<String, Option<Entry>> = HashMap::new();
    for path in changed {
        if relpath::normalize(path, "changed path").ok().as_deref() != Some(path.as_str()) {
            return fallback("a changed path is not a normalised relative path");
        }
        let entry = artifact.entry(path)?;
        if entry.as_ref().is_some_and(|e| !e.kind.is_regular()) {
            return fallback("a changed path is a symlink or special entry");
        }
        if record
            .warnings
            .iter()
            .any(|skipped| skipped.may_concern(path))
        {
            return fallback("a changed path had a warning");
        }
        entries.insert(path.clone(), entry);
    }
    // Mapping types stay what they were: nothing changed at or above a source, nothing inside a
    // skipped mapping's source, and a directory mapping keeps at least one file.
    for mapping in &record.mappings {
        let source = mapping.source.as_str();
        for (path, entry) in &entries {
            let at_or_above = path == source || (!source.is_empty() && is_within(source, path));
            let inside = is_within(path, source) && path != source;
            match mapping.kind {
                None if at_or_above || inside || source.is_empty() => {
                    return fallback("a change touches a skipped mapping's source");
                }
                Some(MappingType::Dir) if at_or_above => {
                    return fallback("a change at or above a directory mapping's source");
                }
                Some(MappingType::File) if at_or_above && (path != source || entry.is_none()) => {
                    return fallback("a change at or above a file mapping's source");
                }
                _ => {}
            }
        }
        if mapping.kind == Some(MappingType::Dir)
            && entries
                .iter()
                .any(|(path, entry)| entry.is_none() && is_within(path, source))
            && !artifact.has_entries_below(source)?
        {
            return fallback("a directory mapping's source lost its last file");
        }
    }

    // The destinations to look at: those of the changed paths, those rendered from the revision,
    // and those the manifest cannot vouch for.
    let mut looked_at: BTreeSet<String> = BTreeSet::new();
    for path in changed {
        for mapping in &record.mappings {
            if let Some(destination) = mapping.destination_of(path) {
                if destination.len() > relpath::MAX_PATH_BYTES
                    || relpath::too_long_component(&destination).is_some()
                {
                    return fallback("a destination path is too long");
                }
                if crate::scope::file_name(&destination).starts_with(crate::scope::TEMP_PREFIX) {
                    return fallback("a destination has a temporary file's name");
                }
                looked_at.insert(destination);
            }
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

    let scope = scope_of(request, &record.mappings)?;
    let mut patch_rules: Vec<Option<PatchRules>> = Vec::with_capacity(record.mappings.len());
    for (index, (mapping, resolved)) in request
        .profile
        .mappings
        .iter()
        .zip(&record.mappings)
        .enumerate()
    {
        let mapping_error = |message| crate::Error::Mapping {
            index,
            source_path: resolved.source.clone(),
            destination: resolved.destination.clone(),
            message,
        };
        patch_rules.push(match resolved.kind {
            Some(kind) => {
                match desired::compile_patches(index, mapping, kind, context, &mapping_error) {
                    Ok(rules) => Some(rules),
                    Err(_) => return fallback("a patch does not compile"),
                }
            }
            None => None,
        });
    }

    // The desired file at each destination: the last mapping that maps an existing regular
    // file there (an earlier one shows through when a later one's source is gone).
    let mut lookups: HashMap<String, Option<Entry>> = entries;
    let mut desired_at: BTreeMap<String, Option<DesiredFile>> = BTreeMap::new();
    for destination in &looked_at {
        let mut found = None;
        if !scope.is_protected_or_excluded(destination) && scope.is_managed(destination) {
            for (index, resolved) in record.mappings.iter().enumerate().rev() {
                let Some((source, relative)) = resolved.source_of(destination) else {
                    continue;
                };
                let entry = match lookups.get(&source) {
                    Some(entry) => entry.clone(),
                    None => {
                        let entry = artifact.entry(&source)?;
                        lookups.insert(source.clone(), entry.clone());
                        entry
                    }
                };
                let (Some(entry), Some(rules)) = (entry, &patch_rules[index]) else {
                    continue;
                };
                if !entry.kind.is_regular() {
                    continue;
                }
                found = Some(desired::desired_file(
                    index,
                    &request.profile.mappings[index],
                    rules,
                    destination,
                    relative,
                    &entry,
                ));
                break;
            }
        }
        desired_at.insert(destination.clone(), found);
    }

    // No desired file may be a directory of another.
    let is_desired = |path: &str| match desired_at.get(path) {
        Some(found) => found.is_some(),
        None => manifest.files.contains_key(path),
    };
    for (destination, found) in &desired_at {
        if found.is_none() {
            continue;
        }
        let mut ancestor = relpath::parent(destination);
        while let Some(dir) = ancestor.filter(|dir| !dir.is_empty()) {
            if is_desired(dir) {
                return fallback("a desired file would be a directory of another");
            }
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
        if below_recorded || below_new {
            return fallback("a desired file would be a directory of another");
        }
    }

    // The live side of each destination: nothing but real directories above it, and no
    // directory where it is (those need the full plan's clearing).
    let live_dir = request.live.as_path();
    let looked_up = look_up_live(live_dir, desired_at.keys(), io_threads);
    let mut live_entries: HashMap<String, Option<LiveEntry>> = HashMap::new();
    for destination in desired_at.keys() {
        if !ancestors_are_dirs(live_dir, destination, &looked_up)? {
            return fallback("a live path lies below something that is not a directory");
        }
        let entry = looked_up.entry(live_dir, destination)?;
        if entry.is_some_and(|e| e.kind == LiveKind::Dir) {
            return fallback("a live directory is where a file goes or was");
        }
        live_entries.insert(destination.clone(), entry);
    }

    Ok(Some(Incremental {
        looked_at: desired_at,
        live: live_entries,
        scope,
        record: PlanRecord {
            key: key.key,
            mappings: record.mappings.clone(),
            warnings: record.warnings.clone(),
            rerender: Vec::new(),
        },
    }))
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
