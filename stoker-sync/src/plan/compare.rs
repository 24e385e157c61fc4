//! The one per-file comparison both planners use: is a desired file up to date in the live
//! directory, trusting the manifest where it may and reading where it must?

use std::path::Path;

use rayon::prelude::*;
use stoker_core::{Artifact, ContentId, SyncRequest, TemplateContext};

use super::{Write, WriteKind};
use crate::content::{self, Recipe};
use crate::desired::DesiredFile;
use crate::error::{Error, Result};
use crate::live::{LiveEntry, LiveKind, Stat};
use crate::manifest::{Manifest, ManifestEntry};

/// What a comparison needs besides the file: the same for every file of a plan.
pub(super) struct Comparison<'a> {
    /// The live directory.
    pub(super) live: &'a Path,
    /// The source at the new revision.
    pub(super) artifact: &'a dyn Artifact,
    /// Template variables (for transformed content).
    pub(super) context: &'a TemplateContext,
    /// What the source says changed since the manifest's revision.
    pub(super) changes: SourceChanges,
    /// When the manifest was written (its newest record), in file-system time.
    pub(super) written: Option<i64>,
}

/// One desired file to compare: its path, what it should be, what is in the live directory
/// (`None`: nothing, or cleared) and what the manifest recorded.
pub(super) struct Candidate<'a> {
    pub(super) path: &'a String,
    pub(super) file: &'a DesiredFile,
    pub(super) live: Option<LiveEntry>,
    pub(super) recorded: Option<&'a ManifestEntry>,
}

/// What the comparisons found, in the candidates' order.
#[derive(Default)]
pub(super) struct Compared {
    /// Files to write.
    pub(super) writes: Vec<Write>,
    /// Files up to date, with their records for the next manifest.
    pub(super) unchanged: Vec<(String, ManifestEntry)>,
    /// Up-to-date files whose content depends on the revision (rendered by every sync).
    pub(super) rerender: Vec<String>,
}

/// What the comparison of one desired file found.
enum Verdict {
    /// Up to date; `true` when its content depends on the revision (rendered on every sync).
    Unchanged(ManifestEntry, bool),
    Write(Write),
}

impl Comparison<'_> {
    /// Compares every candidate (in parallel) and sorts the verdicts; the first error, in the
    /// candidates' order, fails the plan.
    pub(super) fn compare_all(&self, candidates: &[Candidate<'_>]) -> Result<Compared> {
        let verdicts: Vec<Result<Verdict>> = candidates
            .par_iter()
            .map(|candidate| self.compare(candidate))
            .collect();
        let mut compared = Compared::default();
        for (verdict, candidate) in verdicts.into_iter().zip(candidates) {
            match verdict? {
                Verdict::Unchanged(entry, by_revision) => {
                    if by_revision {
                        compared.rerender.push(candidate.path.clone());
                    }
                    compared.unchanged.push((candidate.path.clone(), entry));
                }
                Verdict::Write(write) => compared.writes.push(write),
            }
        }
        Ok(compared)
    }

    fn compare(&self, candidate: &Candidate<'_>) -> Result<Verdict> {
        let Candidate {
            path, file, live, ..
        } = candidate;
        let recorded = Recorded {
            entry: candidate.recorded,
            written: self.written,
        };
        // Transformed content can fail (a binary file with `template: true`, a patch on a file
        // that is not JSON): produce it while planning, so that such an input stops the sync
        // before anything is written rather than halfway through `apply`. Unless the manifest
        // shows it was produced from the same inputs before (then it succeeded, with this id).
        let transformed = if file.transform.is_identity() {
            None
        } else {
            match self.reused_id(file, recorded) {
                Some(reused) => Some(reused),
                None => Some(content::transformed_id(
                    self.artifact,
                    path,
                    file,
                    self.context,
                )?),
            }
        };
        let write = |kind, previous_id| {
            Ok(Verdict::Write(Write {
                path: (*path).clone(),
                kind,
                file: (*file).clone(),
                previous_id,
                planned: transformed,
            }))
        };
        let Some(entry) = live else {
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
        if file.transform.is_identity() && trusted.is_none() && entry.stat.size != file.source_size
        {
            return write(WriteKind::Modify, previous);
        }
        let desired_id = match transformed {
            Some((id, _)) => id,
            None => content::desired_id(self.artifact, path, file, self.context)?,
        };
        let live_id = match trusted {
            Some(id) => id,
            None => {
                let full = self.live.join(path);
                content::hash_file(&full)
                    .map_err(|source| Error::io("reading live file", full, source))?
            }
        };
        if live_id != desired_id {
            return write(WriteKind::Modify, Some(live_id));
        }
        let recipe = transformed.and_then(|(_, recipe)| recipe);
        let by_revision = !file.transform.is_identity() && recipe.is_none();
        let entry = ManifestEntry {
            id: desired_id,
            stat: entry.stat,
            recipe,
        };
        Ok(Verdict::Unchanged(entry, by_revision))
    }

    /// The content id of a transformed file known from the manifest without producing it: same
    /// recipe fingerprint and same source bytes (equal source ids, or a source path the diff
    /// since the manifest's revision does not list).
    fn reused_id(
        &self,
        file: &DesiredFile,
        recorded: Recorded<'_>,
    ) -> Option<(ContentId, Option<Recipe>)> {
        let entry = recorded.entry?;
        let recipe = entry.recipe?;
        let same_source = match (recipe.source_id, file.source_id) {
            (Some(recorded), Some(now)) => recorded == now,
            _ => self.changes.unchanged(&file.source),
        };
        if !same_source || recipe.fingerprint != content::fingerprint(file, self.context) {
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
    fn id(&self, stat: &Stat) -> Option<ContentId> {
        self.entry?.id_if_unchanged(stat)
    }

    /// The content id the manifest vouches for, when the live file may be trusted unread.
    fn trusted_id(&self, stat: &Stat) -> Option<ContentId> {
        let id = self.id(stat)?;
        // "Racy clean", as Git calls it: on file systems with coarse timestamps a change made
        // in the same clock tick as the manifest write leaves size, mtime and ctime as
        // recorded. Only a file whose ctime is strictly older than the manifest is trusted
        // without reading it; the others are hashed (and trusted from the next manifest on).
        (self.written? > stat.ctime).then_some(id)
    }
}

/// What the source says changed since the revision the manifest records.
pub(super) struct SourceChanges {
    /// Changed source paths; `None` when unknown (or not relative to the manifest's revision).
    changed: Option<std::collections::HashSet<String>>,
}

impl SourceChanges {
    pub(super) fn new(request: &SyncRequest, manifest: Option<&Manifest>) -> Self {
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
