//! The manifest in `live/.stoker/manifest.bin`: what the last sync wrote, with the `lstat`
//! fields that let the next sync trust a file without reading it, what each directory below the
//! managed roots held (which lets it skip listing unchanged directories), and how the desired
//! set was made (which lets a sync between two commits plan only the changed paths).
//!
//! Format (version 5): [postcard](https://docs.rs/postcard), because it is read on every sync
//! and must be small and quick to decode for 20k files ([`wire`]). The fields, in order:
//!
//! ```text
//! version: u32, revision: Option<(id, Option<reference>)>, profile: String,
//! files: [(path, blob id [u8; 20], size, mtime, ctime, ino, mode, Option<(fingerprint, Option<source id>)>)],
//! dirs:  [(path, size, mtime, ctime, ino, mode, "name/name/…")],
//! (each path front-coded: the length it shares with the previous path, then the rest)
//! plan:  Option<(key, [(source, destination, Option<dir|file>)], [skipped], rerender)>
//! ```
//!
//! Times are nanoseconds since the epoch; a directory's names are sorted and joined with `/`.
//!
//! **The log** ([`log`]). A sync between two commits changes a few records of tens of thousands: it
//! appends what it changed ([`ManifestDelta`]) to `live/.stoker/manifest.log` instead of
//! rewriting the manifest, and a sync that plans every file writes the whole manifest anew and
//! removes the log (so does an incremental one once the log outgrows a quarter of the manifest).
//! The log starts with `stkmlog1` and the inode, size and mtime of the manifest it extends (a log
//! beside another manifest is ignored); each record is its length and CRC-32 (both `u32`, little
//! endian), then the delta in postcard. A log that is torn (a sync killed while appending), foreign
//! or damaged is reported as a warning: the next sync then plans every file and rewrites the
//! manifest.
//!
//! **When records were written.** A record is trusted only for a file whose ctime is older than
//! the write of the manifest that holds it ("racy clean", see [`Loaded::written`]): with a log,
//! that is the log's last append. Every sync re-checks and re-records the files the newest write
//! cannot vouch for, so a record kept from an earlier append is never younger than that.
//!
//! **Other versions.** A manifest of any other version (the pre-release formats included) is
//! ignored with a warning: the next sync hashes every live file and lists every directory,
//! which is slower but still correct, and then writes this version.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use stoker_core::{ContentId, Revision};

use crate::content::Recipe;
use crate::error::{Error, Result};
use crate::fsops;
use crate::live::{DirRecord, Stat};
use crate::path_map::PathMap;
use crate::scope::STATE_DIR;

mod log;
mod wire;

/// Manifest format version; another version is ignored (everything is rehashed and every
/// directory listed).
///
/// Version 5 records what the desired set skipped as typed values instead of its warnings'
/// text.
pub const MANIFEST_VERSION: u32 = 5;

/// One file the engine wrote or confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManifestEntry {
    /// Content id of the file as written.
    pub id: ContentId,
    /// Its `lstat` right after.
    pub stat: Stat,
    /// For a transformed file (template, patches) that does not depend on the revision: what its
    /// content was made from.
    pub recipe: Option<Recipe>,
}

impl ManifestEntry {
    /// The content id, if the live file's `lstat` still matches what was recorded.
    pub fn id_if_unchanged(&self, stat: &Stat) -> Option<ContentId> {
        (self.stat == *stat).then_some(self.id)
    }
}

/// The whole manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// The revision last applied.
    pub revision: Option<Revision>,
    /// The profile last applied.
    pub profile: String,
    /// Desired files after the last apply.
    pub files: PathMap<ManifestEntry>,
    /// Directories below the managed roots and what they held after the last apply (see
    /// [`crate::live::scan_guided`]). Empty when unknown: the next scan lists everything.
    pub dirs: BTreeMap<String, DirRecord>,
    /// What the next sync needs to plan only the paths a commit changed (absent in manifests
    /// written before it existed: the next sync then plans everything, and writes it).
    pub plan: Option<PlanRecord>,
}

/// How the last sync's desired set was made, besides the artifact: enough for the next sync to
/// recompute only the destinations a commit's changed paths map to (see
/// [`crate::incremental`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRecord {
    /// Fingerprint of the profile, the template variables (but `Commit` and `Ref`), the rendered
    /// mappings and the engine's version.
    pub key: ContentId,
    /// The mappings as rendered and resolved against the artifact.
    pub mappings: Vec<crate::desired::ResolvedMapping>,
    /// What the desired set skipped (mappings and entries), as its warnings said.
    pub warnings: Vec<crate::warning::Skipped>,
    /// Destinations whose content depends on the revision (templates reading `{{.Commit}}` or
    /// `{{.Ref}}`): produced again by every sync.
    pub rerender: Vec<String>,
}

/// What one sync changed in the manifest: appended to the manifest's log (see the module
/// documentation) instead of rewriting the whole manifest.
///
/// ```
/// use stoker_sync::manifest::{Manifest, ManifestDelta};
/// let mut manifest = Manifest::default();
/// manifest.apply(ManifestDelta {
///     profile: "default".into(),
///     ..ManifestDelta::default()
/// });
/// assert_eq!(manifest.profile, "default");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestDelta {
    /// The revision applied.
    pub revision: Option<Revision>,
    /// The profile applied.
    pub profile: String,
    /// The plan record after the sync.
    pub plan: Option<PlanRecord>,
    /// Files recorded (`Some`) or no longer desired (`None`).
    pub files: Vec<(String, Option<ManifestEntry>)>,
    /// Directory records replaced (`Some`) or dropped (`None`).
    pub dirs: Vec<(String, Option<DirRecord>)>,
}

impl Manifest {
    /// Applies what one sync changed.
    pub fn apply(&mut self, delta: ManifestDelta) {
        self.apply_all([delta]);
    }

    /// Applies what several syncs changed, in order: the same as [`Manifest::apply`] on each,
    /// with the files merged in one pass (a log holds a dozen deltas; each would move the 20k
    /// records).
    pub fn apply_all(&mut self, deltas: impl IntoIterator<Item = ManifestDelta>) {
        let mut files = Vec::new();
        for delta in deltas {
            self.revision = delta.revision;
            self.profile = delta.profile;
            self.plan = delta.plan;
            files.extend(delta.files);
            for (path, record) in delta.dirs {
                match record {
                    Some(record) => {
                        self.dirs.insert(path, record);
                    }
                    None => {
                        self.dirs.remove(&path);
                    }
                }
            }
        }
        self.files.apply_changes(files);
    }
}

/// Path of the manifest.
pub fn path(live: &Path) -> PathBuf {
    live.join(STATE_DIR).join("manifest.bin")
}

/// Path of the manifest's log (see the module documentation).
pub fn log_path(live: &Path) -> PathBuf {
    live.join(STATE_DIR).join("manifest.log")
}

/// Refuses a directory where the manifest or its log goes (with
/// [`Error::UnsafeLive`] naming it): the manifest could not be written there, and Stoker does not
/// remove what it did not write. Checked when the lock is taken, before anything is written. A
/// symlink or special file there is not refused: it is never opened, and a write replaces it
/// (the entry itself, never what a link points to).
pub fn check_paths(live: &Path) -> Result<()> {
    for file in [path(live), log_path(live)] {
        if crate::live::lstat(&file)?.is_some_and(|metadata| metadata.file_type().is_dir()) {
            return Err(Error::unsafe_live(
                file,
                "is a directory where Stoker keeps its manifest; it will not remove it (move it away and run the sync again)",
            ));
        }
    }
    Ok(())
}

/// A manifest as [`read`] found it.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// The manifest, with its log applied; `None` when there is none or it cannot be used.
    pub manifest: Option<Manifest>,
    /// Why the manifest or its log was (partly) ignored. The engine then plans every file.
    pub warning: Option<String>,
    /// When the newest record was written, in nanoseconds since the epoch (the file system's
    /// clock, the one live files' ctimes come from): the mtime of the log after its last
    /// append, else the manifest's own. A file whose ctime is not older is not trusted unread.
    /// When the log cannot be fully used, the manifest's mtime, which is older than every
    /// record the log holds (so those files are read).
    pub written: Option<i64>,
}

/// Reads the manifest and its log. A missing, unreadable or foreign manifest is `None` plus a
/// warning: the engine then hashes every live file, which is slower but still correct.
pub fn read(live: &Path) -> Loaded {
    let file = path(live);
    match read_with_stat(&file) {
        Ok(Some((bytes, stat))) => assemble(live, &bytes, stat, read_with_stat(&log_path(live))),
        Ok(None) => Loaded::default(),
        Err(error) => Loaded {
            warning: Some(format!("ignored manifest {}: {error}", file.display())),
            ..Loaded::default()
        },
    }
}

/// Loads the manifest (see [`read`], which also says when it was written).
#[cfg(any(test, feature = "testing"))]
pub fn load(live: &Path) -> (Option<Manifest>, Option<String>) {
    let loaded = read(live);
    (loaded.manifest, loaded.warning)
}

/// A file's bytes and the `lstat` of what was read; `None` when it does not exist. A symlink
/// (at the file or at `.stoker`) is not followed, and anything but a regular file is an error
/// ([`fsops::open_state_file`]).
fn read_with_stat(file: &Path) -> std::io::Result<Option<(Vec<u8>, Stat)>> {
    let Some(opened) = fsops::open_state_file(file)? else {
        return Ok(None);
    };
    let stat = Stat::of(&opened.metadata()?);
    let mut bytes = Vec::with_capacity(usize::try_from(stat.size).unwrap_or(0));
    std::io::Read::read_to_end(&mut &opened, &mut bytes)?;
    Ok(Some((bytes, stat)))
}

/// The manifest in `bytes` (read with `stat`), extended by its log.
fn assemble(
    live: &Path,
    bytes: &[u8],
    stat: Stat,
    log: std::io::Result<Option<(Vec<u8>, Stat)>>,
) -> Loaded {
    let (manifest, warning) = decoded(&path(live), bytes);
    let Some(mut manifest) = manifest else {
        return Loaded {
            manifest: None,
            warning,
            written: None,
        };
    };
    let mut loaded = Loaded {
        manifest: None,
        warning: None,
        written: Some(stat.mtime),
    };
    let log_file = log_path(live);
    match log {
        Ok(None) => {}
        Ok(Some((log_bytes, log_stat))) => {
            let read = log::read(&log_bytes, &stat);
            let complete = read.deltas.len();
            manifest.apply_all(read.deltas);
            match read.problem {
                None if complete > 0 => loaded.written = Some(log_stat.mtime),
                None => {}
                Some(problem) => {
                    loaded.warning = Some(format!(
                        "manifest log {} {problem} (after {complete} complete record(s)): planning every file",
                        log_file.display()
                    ));
                }
            }
        }
        Err(error) => {
            loaded.warning = Some(format!(
                "ignored manifest log {}: {error}: planning every file",
                log_file.display()
            ));
        }
    }
    loaded.manifest = Some(manifest);
    loaded
}

/// The manifest in `bytes` (read from `file`), or why it is ignored.
fn decoded(file: &Path, bytes: &[u8]) -> (Option<Manifest>, Option<String>) {
    match wire::decode(bytes) {
        Ok(manifest) => (Some(manifest), None),
        Err(wire::DecodeError::Version(version)) => (
            None,
            Some(format!(
                "ignored manifest {}: version {version} (expected {MANIFEST_VERSION})",
                file.display()
            )),
        ),
        Err(wire::DecodeError::Corrupt(error)) => (
            None,
            Some(format!(
                "ignored corrupt manifest {}: {error}",
                file.display()
            )),
        ),
    }
}

/// The revision the live directory was last synced to, according to its manifest and log
/// (`None` when there is no usable manifest). Cheaper than [`read`]: of the manifest, only the
/// first fields are read.
pub fn last_revision(live: &Path) -> Option<Revision> {
    let read = |file: &Path| -> Option<Vec<u8>> {
        let opened = fsops::open_state_file(file).ok()??;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut &opened, &mut bytes).ok()?;
        Some(bytes)
    };
    // As [`read`]: a manifest that cannot be read (not a regular file, say) is none.
    let file = fsops::open_state_file(&path(live)).ok()??;
    // The revision comes first: a few hundred bytes of a file of megabytes.
    let mut head = Vec::with_capacity(4096);
    std::io::Read::read_to_end(&mut std::io::Read::take(&file, 4096), &mut head).ok()?;
    let (version, revision) = match wire::decode_revision(&head) {
        Some(found) => found,
        None => wire::decode_revision(&read(&path(live))?)?,
    };
    // Another version's manifest is ignored by [`read`], so it says nothing here either.
    if version != MANIFEST_VERSION {
        return None;
    }
    let base = Stat::of(&file.metadata().ok()?);
    let logged = read(&log_path(live)).and_then(|bytes| log::read(&bytes, &base).deltas.pop());
    match logged {
        Some(delta) => delta.revision,
        None => revision,
    }
}

/// When the manifest was last written (see [`Loaded::written`]). `None` when it cannot be read.
#[cfg(any(test, feature = "testing"))]
pub fn written_at(live: &Path) -> Option<i64> {
    read(live).written
}

/// A manifest read ahead of the sync that needs it: started when a sync begins, it is read and
/// decoded on another thread while the source resolves, fetches and diffs, and taken by the
/// plan once it holds the live directory's lock.
///
/// What was read is used only if the manifest and its log are still the ones read (same inode,
/// size and times, checked under the lock): the manifest is only ever replaced by a rename and
/// the log only appended to or removed, so any write in between is noticed and the manifest is
/// read again.
///
/// ```
/// use stoker_sync::manifest::ReadAhead;
/// let live = tempfile::tempdir().unwrap();
/// let ahead = ReadAhead::default();
/// ahead.start(live.path());
/// // No manifest yet: nothing to take, the plan reads (and finds) nothing itself.
/// assert!(ahead.take(live.path()).is_none());
/// ```
#[derive(Clone, Default)]
pub struct ReadAhead {
    slot: Arc<Mutex<Option<Reading>>>,
}

/// The live directory whose manifest is being read, and the thread reading it.
type Reading = (PathBuf, std::thread::JoinHandle<Option<Snapshot>>);

impl std::fmt::Debug for ReadAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAhead").finish_non_exhaustive()
    }
}

/// A manifest as read, and the `lstat` of the manifest and of its log (if any) it was read from.
struct Snapshot {
    read_from: (Stat, Option<Stat>),
    loaded: Loaded,
}

/// The `lstat` fields of a file, `None` when it does not exist.
fn stat_of(file: &Path) -> Result<Option<Stat>> {
    Ok(crate::live::lstat(file)?.map(|metadata| Stat::of(&metadata)))
}

impl ReadAhead {
    /// Starts reading the manifest of `live` on another thread (replacing a read not taken).
    pub fn start(&self, live: &Path) {
        let live_dir = live.to_path_buf();
        let reader = std::thread::Builder::new()
            .name("manifest-read-ahead".into())
            .spawn(move || {
                let (bytes, stat) = read_with_stat(&path(&live_dir)).ok()??;
                let log = read_with_stat(&log_path(&live_dir));
                let log_stat = match &log {
                    Ok(found) => found.as_ref().map(|(_, stat)| *stat),
                    // Read again by the plan, which then reports it.
                    Err(_) => return None,
                };
                Some(Snapshot {
                    read_from: (stat, log_stat),
                    loaded: assemble(&live_dir, &bytes, stat, log),
                })
            });
        match reader {
            Ok(handle) => {
                *self.slot.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some((live.to_path_buf(), handle));
            }
            Err(error) => {
                tracing::debug!(%error, "could not start reading the manifest ahead");
            }
        }
    }

    /// Waits for the read to finish (tests: to change the file after it).
    #[cfg(test)]
    fn wait_until_read(&self) {
        while self
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|(_, reader)| !reader.is_finished())
        {
            std::thread::yield_now();
        }
    }

    /// What [`ReadAhead::start`] read for `live`, if it is still what [`read`] would read now
    /// (call with the live directory's lock held). `None`: read it.
    pub fn take(&self, live: &Path) -> Option<Loaded> {
        let (started_for, handle) = self
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        let snapshot = handle.join().ok()??;
        // A file that cannot be looked at now is not the one read.
        let now = (stat_of(&path(live)).ok()??, stat_of(&log_path(live)).ok()?);
        (started_for == live && now == snapshot.read_from).then_some(snapshot.loaded)
    }
}

/// Writes the whole manifest atomically and durably, then removes its log.
///
/// A crash in between leaves a log that extends another manifest: it is ignored (with a
/// warning) and removed by the next write.
pub fn store(live: &Path, manifest: &Manifest) -> Result<()> {
    let file = path(live);
    let bytes = wire::encode(manifest).map_err(|source| Error::Manifest {
        path: file.clone(),
        source,
    })?;
    fsops::write_state_file(&file, &bytes)?;
    let old = log_path(live);
    match std::fs::remove_file(&old) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io("removing the old manifest", old, error))
        }
        _ => Ok(()),
    }
}

/// How [`record`] kept a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Appended to the log, in a record of this many bytes.
    Appended(usize),
    /// Applied to the manifest, written whole (the log was long, or there was none to extend).
    Rewritten,
}

/// Records what a sync changed: appended to the manifest's log (durably), or, when the log has
/// grown past a quarter of the manifest (and 256 KiB) or `manifest` is not the one on disk in
/// this version, applied to `manifest` and written whole with [`store`].
///
/// `manifest` is the manifest (with its log) as the sync read it, under the lock it still holds.
pub fn record(live: &Path, manifest: &mut Manifest, delta: ManifestDelta) -> Result<Recorded> {
    let log_file = log_path(live);
    let payload = wire::encode_delta(&delta).map_err(|source| Error::Manifest {
        path: log_file.clone(),
        source,
    })?;
    let base = stat_of(&path(live))?;
    let log = stat_of(&log_file)?;
    if let (Some(base), Some(framed)) = (base, log::frame(&payload)) {
        let extends_base = log.is_none() || log::header_matches(&log_file, &base);
        if manifest.version == MANIFEST_VERSION
            && extends_base
            && !log::too_long(&base, log.as_ref(), framed.len())
        {
            log::write_record(&log_file, &base, log.is_some(), &framed)?;
            return Ok(Recorded::Appended(framed.len()));
        }
    }
    manifest.apply(delta);
    manifest.version = MANIFEST_VERSION;
    store(live, manifest)?;
    Ok(Recorded::Rewritten)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn manifest(profile: &str) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            profile: profile.to_owned(),
            ..Manifest::default()
        }
    }

    fn stat(n: i64) -> Stat {
        Stat {
            size: n as u64,
            mtime: n * 1_000,
            ctime: n * 2_000,
            ino: n as u64 + 7,
            mode: 0o100644,
        }
    }

    fn entry(n: u8) -> ManifestEntry {
        ManifestEntry {
            id: ContentId([n; 20]),
            stat: stat(i64::from(n) + 1),
            recipe: (n % 2 == 1).then_some(Recipe {
                fingerprint: ContentId([9; 20]),
                source_id: (n == 1).then_some(ContentId([8; 20])),
            }),
        }
    }

    /// A manifest with a few of everything.
    fn sample() -> Manifest {
        let mut files = PathMap::new();
        for (n, path) in ["a/b/c.json", "a/b/d.json", "a/e.json", "z/ü.txt"]
            .iter()
            .enumerate()
        {
            files.insert(path, entry(n as u8));
        }
        let mut dirs = BTreeMap::new();
        for (n, path) in ["", "a", "a/b", "z"].iter().enumerate() {
            dirs.insert(
                (*path).to_owned(),
                DirRecord {
                    stat: stat(n as i64 + 10),
                    names: format!("x{n}/y{n}"),
                },
            );
        }
        Manifest {
            version: MANIFEST_VERSION,
            revision: Some(Revision::new("0123456789abcdef").with_reference("main")),
            profile: "default".to_owned(),
            files,
            dirs,
            plan: Some(PlanRecord {
                key: ContentId([3; 20]),
                mappings: Vec::new(),
                warnings: vec![crate::warning::Skipped::NotNormalized {
                    path: "w".to_owned(),
                }],
                rerender: vec!["a/e.json".to_owned()],
            }),
        }
    }

    /// A delta changing, adding and dropping files and directories.
    fn delta(revision: &str) -> ManifestDelta {
        ManifestDelta {
            revision: Some(Revision::new(revision)),
            profile: "default".to_owned(),
            plan: None,
            files: vec![
                ("a/b/c.json".to_owned(), Some(entry(40))),
                ("a/e.json".to_owned(), None),
                ("n/new.json".to_owned(), Some(entry(41))),
            ],
            dirs: vec![
                ("a".to_owned(), None),
                (
                    "n".to_owned(),
                    Some(DirRecord {
                        stat: stat(50),
                        names: "new.json".to_owned(),
                    }),
                ),
            ],
        }
    }

    fn live_with(manifest: &Manifest) -> tempfile::TempDir {
        let live = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(live.path().join(STATE_DIR)).unwrap();
        store(live.path(), manifest).unwrap();
        live
    }

    fn mtime(file: &Path) -> i64 {
        Stat::of(&std::fs::symlink_metadata(file).unwrap()).mtime
    }

    /// The streamed encoding writes exactly the bytes of the layout built the simple way
    /// (`wire::Whole`, with vectors), and reads back to the same manifest.
    #[test]
    fn the_streamed_encoding_is_the_layout() {
        let manifest = sample();
        let streamed = wire::encode(&manifest).unwrap();
        assert_eq!(streamed, wire::encode_with_vectors(&manifest));
        assert_eq!(wire::decode(&streamed).ok(), Some(manifest));
    }

    /// Deltas are appended to the log, leaving the manifest as it was, and read back applied in
    /// order, dated by the log's last append.
    #[test]
    fn deltas_appended_to_the_log_read_back_applied() {
        let base = sample();
        let live = live_with(&base);
        let base_file = path(live.path());
        let base_stat = stat_of(&base_file).unwrap().unwrap();

        let mut expected = base.clone();
        let mut recorded = base.clone();
        for revision in ["r1", "r2"] {
            let delta = delta(revision);
            let outcome = record(live.path(), &mut recorded, delta.clone()).unwrap();
            assert!(matches!(outcome, Recorded::Appended(_)), "{outcome:?}");
            expected.apply(delta);
        }
        // Appending changes neither the manifest file nor the manifest in hand.
        assert_eq!(stat_of(&base_file).unwrap(), Some(base_stat));
        assert_eq!(recorded, base);

        let loaded = read(live.path());
        assert_eq!(loaded.warning, None);
        assert_eq!(loaded.manifest.as_ref(), Some(&expected));
        assert!(!expected.files.contains_key("a/e.json"));
        assert!(!expected.dirs.contains_key("a"));
        assert_eq!(expected.files.get("n/new.json"), Some(&entry(41)));
        assert_eq!(loaded.written, Some(mtime(&log_path(live.path()))));
        assert_eq!(
            last_revision(live.path()).map(|r| r.id),
            Some("r2".to_owned())
        );
    }

    /// A torn or damaged record, or a log left beside another manifest, is reported; records
    /// the log cannot date are not vouched for (the manifest's own time is used).
    #[test]
    fn a_torn_damaged_or_foreign_log_is_reported_and_dated_by_the_manifest() {
        let base = sample();
        let live = live_with(&base);
        let log = log_path(live.path());
        let mut recorded = base.clone();
        record(live.path(), &mut recorded, delta("r1")).unwrap();
        record(live.path(), &mut recorded, delta("r2")).unwrap();
        let whole = std::fs::read(&log).unwrap();
        let mut first_only = base.clone();
        first_only.apply(delta("r1"));

        let torn = &whole[..whole.len() - 3];
        let mut flipped = whole.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        for damaged in [torn, &flipped[..]] {
            std::fs::write(&log, damaged).unwrap();
            let loaded = read(live.path());
            let warning = loaded.warning.unwrap();
            assert!(
                warning.contains("incomplete or damaged record"),
                "{warning}"
            );
            assert!(warning.contains("after 1 complete record"), "{warning}");
            assert_eq!(loaded.manifest, Some(first_only.clone()));
            assert_eq!(loaded.written, Some(mtime(&path(live.path()))));
        }

        // The manifest rewritten whole: the log is removed; one put back is foreign.
        store(live.path(), &first_only).unwrap();
        assert!(!log.exists());
        std::fs::write(&log, &whole).unwrap();
        let loaded = read(live.path());
        assert!(
            loaded.warning.unwrap().contains("extends another manifest"),
            "a foreign log was used"
        );
        assert_eq!(loaded.manifest, Some(first_only));
        // And it is not appended to: the delta goes into a manifest written whole.
        let mut in_hand = read(live.path()).manifest.unwrap();
        let outcome = record(live.path(), &mut in_hand, delta("r3")).unwrap();
        assert_eq!(outcome, Recorded::Rewritten);
        assert!(!log.exists());
        assert_eq!(read(live.path()).manifest, Some(in_hand));
    }

    /// Once the log outgrows a quarter of the manifest (and its floor), the delta is folded
    /// into a manifest written whole and the log removed.
    #[test]
    fn a_long_log_is_folded_into_the_manifest() {
        let base = sample();
        let live = live_with(&base);
        let mut big = delta("r1");
        // About 100 bytes a file: past the 256 KiB floor.
        big.files = (0..4000)
            .map(|n| (format!("big/file-{n:05}.json"), Some(entry(7))))
            .collect();
        let mut in_hand = base.clone();
        let outcome = record(live.path(), &mut in_hand, big.clone()).unwrap();
        assert_eq!(outcome, Recorded::Rewritten);
        assert!(!log_path(live.path()).exists());
        let mut expected = base;
        expected.apply(big);
        assert_eq!(in_hand, expected);
        let loaded = read(live.path());
        assert_eq!((loaded.manifest, loaded.warning), (Some(expected), None));
    }

    /// A manifest of another version (the pre-release versions 2 to 4 among them) is ignored
    /// with a warning naming its version, its log with it, and says no revision: the next sync
    /// plans every file. A delta for it is written as a whole manifest of this version.
    #[test]
    fn a_manifest_of_another_version_is_ignored_with_its_log() {
        for version in [2, 3, 4, MANIFEST_VERSION + 1] {
            let mut other = sample();
            other.version = version;
            let live = live_with(&other);
            let base = stat_of(&path(live.path())).unwrap().unwrap();
            let mut bytes = log::header(&base);
            bytes.extend(log::frame(&wire::encode_delta(&delta("r1")).unwrap()).unwrap());
            std::fs::write(log_path(live.path()), bytes).unwrap();

            let loaded = read(live.path());
            assert_eq!(loaded.manifest, None);
            assert_eq!(loaded.written, None);
            let warning = loaded.warning.unwrap();
            assert!(
                warning.contains(&format!("version {version} (expected {MANIFEST_VERSION})")),
                "{warning}"
            );
            assert_eq!(last_revision(live.path()), None);

            let mut in_hand = Manifest::default();
            let outcome = record(live.path(), &mut in_hand, delta("r2")).unwrap();
            assert_eq!(outcome, Recorded::Rewritten);
            assert_eq!(in_hand.version, MANIFEST_VERSION);
            assert!(!log_path(live.path()).exists());
            assert_eq!(read(live.path()).manifest, Some(in_hand));
        }
    }

    /// What was read ahead is taken only while the file is still the one read.
    #[test]
    fn a_manifest_read_ahead_is_taken_only_if_unchanged_since() {
        let live = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(live.path().join(STATE_DIR)).unwrap();
        store(live.path(), &manifest("first")).unwrap();
        let ahead = ReadAhead::default();

        ahead.start(live.path());
        let taken = ahead.take(live.path()).unwrap();
        assert_eq!(taken.warning, None);
        assert_eq!(taken.manifest.unwrap().profile, "first");
        // Taken once.
        assert!(ahead.take(live.path()).is_none());

        // Rewritten after the read: stale, not taken.
        ahead.start(live.path());
        ahead.wait_until_read();
        store(live.path(), &manifest("second")).unwrap();
        assert!(ahead.take(live.path()).is_none());

        // Its log appended to after the read: stale too.
        ahead.start(live.path());
        ahead.wait_until_read();
        let mut in_hand = read(live.path()).manifest.unwrap();
        record(live.path(), &mut in_hand, delta("r1")).unwrap();
        assert!(ahead.take(live.path()).is_none());
        ahead.start(live.path());
        let taken = ahead.take(live.path()).unwrap();
        assert_eq!(taken.manifest.unwrap().revision, Some(Revision::new("r1")));

        // Read for another directory.
        let other = tempfile::tempdir().unwrap();
        ahead.start(live.path());
        assert!(ahead.take(other.path()).is_none());
    }
}
