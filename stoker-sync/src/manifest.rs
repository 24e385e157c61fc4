//! The manifest in `live/.stoker/manifest.bin`: what the last sync wrote, with the `lstat`
//! fields that let the next sync trust a file without reading it, what each directory below the
//! managed roots held (which lets it skip listing unchanged directories), and how the desired
//! set was made (which lets a sync between two commits plan only the changed paths).
//!
//! Format (version 4, the layout of version 3): [postcard](https://docs.rs/postcard), because
//! it is read on every sync (about 3× smaller and many times faster to read and write than the
//! JSON of version 2 for 20k files). The fields, in order:
//!
//! ```text
//! version: u32, revision: Option<(id, Option<reference>)>, profile: String,
//! files: [(path, blob id [u8; 20], size, mtime, ctime, ino, mode, Option<(fingerprint, Option<source id>)>)],
//! dirs:  [(path, size, mtime, ctime, ino, mode, "name/name/…")],
//! (each path front-coded: the length it shares with the previous path, then the rest)
//! plan:  Option<(key, [(source, destination, Option<dir|file>)], warnings, rerender)>
//! ```
//!
//! Times are nanoseconds since the epoch; a directory's names are sorted and joined with `/`.
//!
//! **The log.** A sync between two commits changes a few records of tens of thousands: it
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
//! A version 3 manifest (written by Stoker versions without the log) is read and never takes a
//! log; a version 2 manifest (`manifest.json`) is still read too. Both are replaced by the next
//! write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use stoker_core::{ContentId, Revision};

use crate::content::Recipe;
use crate::error::{Error, Result};
use crate::fsops;
use crate::live::{DirRecord, Stat};
use crate::path_map::PathMap;
use crate::scope::STATE_DIR;

/// Manifest format version; another version is ignored (everything is rehashed and every
/// directory listed).
///
/// Version 2 added `dirs` and stores entries as arrays; version 3 is binary (`manifest.bin`);
/// version 4 has the layout of version 3 and may be extended by a log (`manifest.log`).
pub const MANIFEST_VERSION: u32 = 4;

/// The binary version without a log, still read.
const VERSION_WITHOUT_LOG: u32 = 3;

/// The first bytes of `manifest.log`.
const LOG_MAGIC: &[u8; 8] = b"stkmlog1";

/// The magic, then the inode, size and mtime of the manifest the log extends.
const LOG_HEADER_LEN: usize = 8 + 24;

/// Each record's length and CRC-32.
const RECORD_HEADER_LEN: usize = 8;

/// The log is folded into a new manifest once it is longer than this and than a quarter of the
/// manifest: past that, reading it back costs more than rewriting the manifest saves.
const LOG_FLOOR: u64 = 256 * 1024;

/// The JSON format earlier Stoker versions wrote to `manifest.json`, still read.
const JSON_VERSION: u32 = 2;

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

/// `[id, size, mtime, ctime, ino, mode]`, then `fingerprint, sourceId|null` when there is a
/// recipe.
impl Serialize for ManifestEntry {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut tuple = serializer.serialize_tuple(if self.recipe.is_some() { 8 } else { 6 })?;
        tuple.serialize_element(&self.id)?;
        tuple.serialize_element(&self.stat.size)?;
        tuple.serialize_element(&self.stat.mtime)?;
        tuple.serialize_element(&self.stat.ctime)?;
        tuple.serialize_element(&self.stat.ino)?;
        tuple.serialize_element(&self.stat.mode)?;
        if let Some(recipe) = &self.recipe {
            tuple.serialize_element(&recipe.fingerprint)?;
            tuple.serialize_element(&recipe.source_id)?;
        }
        tuple.end()
    }
}

impl<'de> Deserialize<'de> for ManifestEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ManifestEntry;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("[id, size, mtime, ctime, ino, mode] with an optional recipe")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ManifestEntry, A::Error> {
                fn next<'de, T: Deserialize<'de>, A: serde::de::SeqAccess<'de>>(
                    seq: &mut A,
                    index: usize,
                ) -> Result<T, A::Error> {
                    seq.next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(index, &"6 or 8 items"))
                }
                let id = next(&mut seq, 0)?;
                let stat = Stat {
                    size: next(&mut seq, 1)?,
                    mtime: next(&mut seq, 2)?,
                    ctime: next(&mut seq, 3)?,
                    ino: next(&mut seq, 4)?,
                    mode: next(&mut seq, 5)?,
                };
                let recipe = match seq.next_element::<ContentId>()? {
                    Some(fingerprint) => Some(Recipe {
                        fingerprint,
                        source_id: next(&mut seq, 7)?,
                    }),
                    None => None,
                };
                Ok(ManifestEntry { id, stat, recipe })
            }
        }
        deserializer.deserialize_seq(Visitor)
    }
}

/// `[size, mtime, ctime, ino, mode, names]`.
#[derive(Serialize, Deserialize)]
struct DirWire(u64, i64, i64, u64, u32, String);

impl From<DirWire> for DirRecord {
    fn from(DirWire(size, mtime, ctime, ino, mode, names): DirWire) -> Self {
        DirRecord {
            stat: Stat {
                size,
                mtime,
                ctime,
                ino,
                mode,
            },
            names,
        }
    }
}

impl From<DirRecord> for DirWire {
    fn from(record: DirRecord) -> Self {
        let Stat {
            size,
            mtime,
            ctime,
            ino,
            mode,
        } = record.stat;
        DirWire(size, mtime, ctime, ino, mode, record.names)
    }
}

mod dirs_wire {
    //! `dirs` as a map of [`DirWire`](super::DirWire) arrays.
    use super::{BTreeMap, DirRecord, DirWire};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        dirs: &BTreeMap<String, DirRecord>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(dirs.iter().map(|(path, record)| {
            let wire: DirWire = record.clone().into();
            (path, wire)
        }))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, DirRecord>, D::Error> {
        let wire = BTreeMap::<String, DirWire>::deserialize(deserializer)?;
        Ok(wire.into_iter().map(|(p, w)| (p, w.into())).collect())
    }
}

impl ManifestEntry {
    /// The content id, if the live file's `lstat` still matches what was recorded.
    pub fn id_if_unchanged(&self, stat: &Stat) -> Option<ContentId> {
        (self.stat == *stat).then_some(self.id)
    }
}

/// The whole manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
    #[serde(default, with = "dirs_wire")]
    pub dirs: BTreeMap<String, DirRecord>,
    /// What the next sync needs to plan only the paths a commit changed (absent in manifests
    /// written before it existed: the next sync then plans everything, and writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanRecord>,
}

/// How the last sync's desired set was made, besides the artifact: enough for the next sync to
/// recompute only the destinations a commit's changed paths map to (see
/// [`crate::incremental`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRecord {
    /// Fingerprint of the profile, the template variables (but `Commit` and `Ref`), the rendered
    /// mappings and the engine's version.
    pub key: ContentId,
    /// The mappings as rendered and resolved against the artifact.
    pub mappings: Vec<crate::desired::ResolvedMapping>,
    /// The desired set's warnings (skipped mappings and entries).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Destinations whose content depends on the revision (templates reading `{{.Commit}}` or
    /// `{{.Ref}}`): produced again by every sync.
    #[serde(default)]
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

/// Path of a version 2 manifest (JSON), written by earlier Stoker versions.
pub fn json_path(live: &Path) -> PathBuf {
    live.join(STATE_DIR).join("manifest.json")
}

/// Refuses a directory where the manifest, its log or a version 2 manifest goes (with
/// [`Error::UnsafeLive`] naming it): the manifest could not be written there, and Stoker does not
/// remove what it did not write. Checked when the lock is taken, before anything is written. A
/// symlink or special file there is not refused: it is never opened, and a write replaces it
/// (the entry itself, never what a link points to).
pub fn check_paths(live: &Path) -> Result<()> {
    for file in [path(live), log_path(live), json_path(live)] {
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
        Ok(None) => load_json(live),
        Err(error) => Loaded {
            warning: Some(format!("ignored manifest {}: {error}", file.display())),
            ..Loaded::default()
        },
    }
}

/// Loads the manifest (see [`read`], which also says when it was written).
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
    if manifest.version == MANIFEST_VERSION {
        let log_file = log_path(live);
        match log {
            Ok(None) => {}
            Ok(Some((log_bytes, log_stat))) => {
                let read = read_log(&log_bytes, &stat);
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
    }
    loaded.manifest = Some(manifest);
    loaded
}

/// The deltas a log holds, in order, and why the rest of it (if any) was not used.
struct LogRead {
    deltas: Vec<ManifestDelta>,
    problem: Option<String>,
}

/// Identifies the manifest a log extends: it is only ever replaced by a rename, which gives a
/// new inode and mtime.
fn base_identity(base: &Stat) -> [u8; 24] {
    let mut identity = [0; 24];
    identity[..8].copy_from_slice(&base.ino.to_le_bytes());
    identity[8..16].copy_from_slice(&base.size.to_le_bytes());
    identity[16..].copy_from_slice(&base.mtime.to_le_bytes());
    identity
}

fn log_header(base: &Stat) -> Vec<u8> {
    let mut header = Vec::with_capacity(LOG_HEADER_LEN);
    header.extend_from_slice(LOG_MAGIC);
    header.extend_from_slice(&base_identity(base));
    header
}

/// Reads a log written for the manifest whose `lstat` is `base`.
fn read_log(bytes: &[u8], base: &Stat) -> LogRead {
    let mut read = LogRead {
        deltas: Vec::new(),
        problem: None,
    };
    if bytes.len() < LOG_HEADER_LEN || bytes[..LOG_MAGIC.len()] != LOG_MAGIC[..] {
        read.problem = Some("is not a manifest log".to_owned());
        return read;
    }
    if bytes[LOG_MAGIC.len()..LOG_HEADER_LEN] != base_identity(base) {
        read.problem = Some("extends another manifest".to_owned());
        return read;
    }
    let mut rest = &bytes[LOG_HEADER_LEN..];
    while !rest.is_empty() {
        let Some((payload, after)) = next_record(rest) else {
            read.problem = Some("ends in an incomplete or damaged record".to_owned());
            return read;
        };
        match wire::decode_delta(payload) {
            Ok(delta) => read.deltas.push(delta),
            Err(error) => {
                read.problem = Some(format!("holds a record that does not decode: {error}"));
                return read;
            }
        }
        rest = after;
    }
    read
}

/// The payload of the record `bytes` starts with, if complete and intact, and what follows it.
fn next_record(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let header = bytes.get(..RECORD_HEADER_LEN)?;
    let length = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    let end = RECORD_HEADER_LEN.checked_add(length)?;
    let payload = bytes.get(RECORD_HEADER_LEN..end)?;
    (crc32fast::hash(payload) == crc).then(|| (payload, &bytes[end..]))
}

/// A delta as a log record.
fn frame(payload: &[u8]) -> Option<Vec<u8>> {
    let length = u32::try_from(payload.len()).ok()?;
    let mut record = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    record.extend_from_slice(&length.to_le_bytes());
    record.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    record.extend_from_slice(payload);
    Some(record)
}

/// The manifest in `bytes` (read from `file`), or why it is ignored.
fn decoded(file: &Path, bytes: &[u8]) -> (Option<Manifest>, Option<String>) {
    match wire::decode(bytes) {
        Ok(manifest) => (Some(manifest), None),
        Err(wire::DecodeError::Version(version)) => (None, Some(version_warning(file, version))),
        Err(wire::DecodeError::Corrupt(error)) => (
            None,
            Some(format!(
                "ignored corrupt manifest {}: {error}",
                file.display()
            )),
        ),
    }
}

fn version_warning(file: &Path, version: u32) -> String {
    format!(
        "ignored manifest {}: version {version} (expected {MANIFEST_VERSION})",
        file.display()
    )
}

/// Loads a version 2 manifest (JSON).
fn load_json(live: &Path) -> Loaded {
    let file = json_path(live);
    let ignored = |warning: String| Loaded {
        warning: Some(warning),
        ..Loaded::default()
    };
    let (bytes, stat) = match read_with_stat(&file) {
        Ok(Some(read)) => read,
        Ok(None) => return Loaded::default(),
        Err(error) => return ignored(format!("ignored manifest {}: {error}", file.display())),
    };
    match serde_json::from_slice::<Manifest>(&bytes) {
        Ok(manifest) if manifest.version == JSON_VERSION => Loaded {
            manifest: Some(Manifest {
                version: MANIFEST_VERSION,
                ..manifest
            }),
            warning: None,
            written: Some(stat.mtime),
        },
        Ok(manifest) => ignored(version_warning(&file, manifest.version)),
        // An older format does not parse as this one: say so rather than "corrupt".
        Err(error) => match serde_json::from_slice::<Head>(&bytes) {
            Ok(head) if head.version != JSON_VERSION => {
                ignored(version_warning(&file, head.version))
            }
            _ => ignored(format!(
                "ignored corrupt manifest {}: {error}",
                file.display()
            )),
        },
    }
}

/// The first fields of a JSON manifest (the rest is skipped unparsed).
#[derive(Deserialize)]
struct Head {
    version: u32,
    #[serde(default)]
    revision: Option<Revision>,
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
    match fsops::open_state_file(&path(live)) {
        Ok(Some(file)) => {
            // The revision comes first: a few hundred bytes of a file of megabytes.
            let mut head = Vec::with_capacity(4096);
            std::io::Read::read_to_end(&mut std::io::Read::take(&file, 4096), &mut head).ok()?;
            let (version, revision) = match wire::decode_revision(&head) {
                Some(found) => found,
                None => wire::decode_revision(&read(&path(live))?)?,
            };
            if version != MANIFEST_VERSION {
                return revision;
            }
            let base = Stat::of(&file.metadata().ok()?);
            let logged = read(&log_path(live)).and_then(|log| read_log(&log, &base).deltas.pop());
            match logged {
                Some(delta) => delta.revision,
                None => revision,
            }
        }
        Ok(None) => {
            let bytes = read(&json_path(live))?;
            let head: Head = serde_json::from_slice(&bytes).ok()?;
            (head.version == JSON_VERSION).then_some(head.revision?)
        }
        // As [`read`]: a manifest that cannot be read (not a regular file, say) is none.
        Err(_) => None,
    }
}

/// When the manifest was last written (see [`Loaded::written`]). `None` when it cannot be read.
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

/// Writes the whole manifest atomically and durably, then removes its log (and a version 2
/// manifest).
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
    for old in [log_path(live), json_path(live)] {
        match std::fs::remove_file(&old) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io("removing the old manifest", old, error));
            }
            _ => {}
        }
    }
    Ok(())
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
    let base_file = path(live);
    let log_file = log_path(live);
    let payload = wire::encode_delta(&delta).map_err(|source| Error::Manifest {
        path: log_file.clone(),
        source,
    })?;
    let base = stat_of(&base_file)?;
    let log = stat_of(&log_file)?;
    let extends_base = match (&base, &log) {
        (Some(base), Some(_)) => log_header_matches(&log_file, base),
        (Some(_), None) => true,
        (None, _) => false,
    };
    let long = |base: &Stat, log: &Option<Stat>| {
        let after = log.map_or(LOG_HEADER_LEN as u64, |log| log.size)
            + (RECORD_HEADER_LEN + payload.len()) as u64;
        after > LOG_FLOOR && after > base.size / 4
    };
    let framed = frame(&payload);
    match (base, framed) {
        (Some(base), Some(framed))
            if manifest.version == MANIFEST_VERSION && extends_base && !long(&base, &log) =>
        {
            match log {
                None => {
                    let mut bytes = log_header(&base);
                    bytes.extend_from_slice(&framed);
                    fsops::write_state_file(&log_file, &bytes)?;
                }
                Some(_) => append(&log_file, &framed)?,
            }
            Ok(Recorded::Appended(framed.len()))
        }
        _ => {
            manifest.apply(delta);
            manifest.version = MANIFEST_VERSION;
            store(live, manifest)?;
            Ok(Recorded::Rewritten)
        }
    }
}

/// True when the log at `log_file` starts with the header of a log extending `base`.
fn log_header_matches(log_file: &Path, base: &Stat) -> bool {
    let mut header = [0; LOG_HEADER_LEN];
    fsops::open_state_file(log_file)
        .and_then(|file| file.ok_or_else(|| std::io::ErrorKind::NotFound.into()))
        .and_then(|file| std::io::Read::read_exact(&mut &file, &mut header))
        .is_ok_and(|()| header[..] == log_header(base)[..])
}

/// Appends a record to the log, durably. A failure part-way leaves a torn record, which the
/// next read reports (and the next sync then rewrites the manifest).
fn append(log_file: &Path, record: &[u8]) -> Result<()> {
    let appended = fsops::open_state_file_append(log_file).and_then(|mut file| {
        std::io::Write::write_all(&mut file, record)?;
        file.sync_data()
    });
    appended.map_err(|source| Error::io("appending to", log_file, source))
}

mod wire {
    //! The binary format: borrowed on the way out, owned on the way in.
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};
    use stoker_core::{ContentId, MappingType, Revision};

    use super::{
        MANIFEST_VERSION, Manifest, ManifestDelta, ManifestEntry, PathMap, PlanRecord,
        VERSION_WITHOUT_LOG,
    };
    use crate::content::Recipe;
    use crate::desired::ResolvedMapping;
    use crate::live::{DirRecord, Stat};

    type Id = [u8; 20];

    /// A path as the number of bytes it shares with the previous one, and the rest (sorted
    /// paths share most of their bytes: this makes the manifest about a third of the size).
    #[derive(Serialize, Deserialize)]
    struct Path<'a>(u32, #[serde(borrow)] Cow<'a, str>);

    /// `size, mtime, ctime, ino, mode` (inline: postcard adds no framing).
    #[derive(Serialize, Deserialize)]
    struct StatWire(u64, i64, i64, u64, u32);

    impl From<Stat> for StatWire {
        fn from(stat: Stat) -> Self {
            StatWire(stat.size, stat.mtime, stat.ctime, stat.ino, stat.mode)
        }
    }

    impl From<StatWire> for Stat {
        fn from(StatWire(size, mtime, ctime, ino, mode): StatWire) -> Self {
            Stat {
                size,
                mtime,
                ctime,
                ino,
                mode,
            }
        }
    }

    #[derive(Serialize, Deserialize)]
    struct File<'a>(
        #[serde(borrow)] Path<'a>,
        Id,
        StatWire,
        Option<(Id, Option<Id>)>,
    );

    #[derive(Serialize, Deserialize)]
    struct Dir<'a>(
        #[serde(borrow)] Path<'a>,
        StatWire,
        #[serde(borrow)] Cow<'a, str>,
    );

    #[derive(Serialize, Deserialize)]
    struct Mapping<'a>(
        #[serde(borrow)] Cow<'a, str>,
        #[serde(borrow)] Cow<'a, str>,
        Option<MappingType>,
    );

    #[derive(Serialize, Deserialize)]
    struct Plan<'a> {
        key: Id,
        #[serde(borrow)]
        mappings: Vec<Mapping<'a>>,
        warnings: Vec<Cow<'a, str>>,
        rerender: Vec<Cow<'a, str>>,
    }

    /// The layout as a struct (tests build the reference encoding with it).
    #[cfg(test)]
    #[derive(Serialize)]
    struct Whole<'a> {
        version: u32,
        revision: Option<(Cow<'a, str>, Option<Cow<'a, str>>)>,
        profile: Cow<'a, str>,
        files: Vec<File<'a>>,
        dirs: Vec<Dir<'a>>,
        plan: Option<Plan<'a>>,
    }

    /// [`Whole`] on the way out: the files and directories are encoded as they are iterated,
    /// with no intermediate vectors (a fresh process pays for every page it touches: the
    /// vectors were 3 MB for 20k files).
    #[derive(Serialize)]
    struct WholeOut<'a> {
        version: u32,
        revision: Option<(Cow<'a, str>, Option<Cow<'a, str>>)>,
        profile: Cow<'a, str>,
        files: SeqOut<'a, PathMap<ManifestEntry>, ManifestEntry, File<'a>>,
        dirs: SeqOut<'a, BTreeMap<String, DirRecord>, DirRecord, Dir<'a>>,
        plan: Option<Plan<'a>>,
    }

    fn file_wire<'a>(paths: &mut Encoder<'a>, path: &'a str, entry: &'a ManifestEntry) -> File<'a> {
        File(
            paths.path(path),
            entry.id.0,
            entry.stat.into(),
            entry
                .recipe
                .map(|recipe| (recipe.fingerprint.0, recipe.source_id.map(|id| id.0))),
        )
    }

    fn dir_wire<'a>(paths: &mut Encoder<'a>, path: &'a str, record: &'a DirRecord) -> Dir<'a> {
        Dir(
            paths.path(path),
            record.stat.into(),
            Cow::Borrowed(&record.names),
        )
    }

    fn revision_wire(revision: &Revision) -> (Cow<'_, str>, Option<Cow<'_, str>>) {
        (
            Cow::Borrowed(revision.id.as_str()),
            revision.reference.as_deref().map(Cow::Borrowed),
        )
    }

    fn plan_wire(plan: &PlanRecord) -> Plan<'_> {
        Plan {
            key: plan.key.0,
            mappings: plan
                .mappings
                .iter()
                .map(|m| {
                    Mapping(
                        Cow::Borrowed(&m.source),
                        Cow::Borrowed(&m.destination),
                        m.kind,
                    )
                })
                .collect(),
            warnings: plan
                .warnings
                .iter()
                .map(|w| Cow::Borrowed(w.as_str()))
                .collect(),
            rerender: plan
                .rerender
                .iter()
                .map(|r| Cow::Borrowed(r.as_str()))
                .collect(),
        }
    }

    /// A map's entries as a sequence of wire records (`wire(paths, path, value)`), front-coded
    /// as they go.
    struct SeqOut<'a, M, V, T>(&'a M, fn(&mut Encoder<'a>, &'a str, &'a V) -> T);

    /// A map's entries, sorted by path.
    trait Entries<V> {
        fn entries<'a>(&'a self) -> impl Iterator<Item = (&'a str, &'a V)>
        where
            V: 'a;
    }

    impl<V> Entries<V> for PathMap<V> {
        fn entries<'a>(&'a self) -> impl Iterator<Item = (&'a str, &'a V)>
        where
            V: 'a,
        {
            self.iter()
        }
    }

    impl<V> Entries<V> for BTreeMap<String, V> {
        fn entries<'a>(&'a self) -> impl Iterator<Item = (&'a str, &'a V)>
        where
            V: 'a,
        {
            self.iter().map(|(path, value)| (path.as_str(), value))
        }
    }

    impl<'a, M: Entries<V>, V: 'a, T: Serialize> Serialize for SeqOut<'a, M, V, T> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut paths = Encoder { previous: "" };
            serializer.collect_seq(
                self.0
                    .entries()
                    .map(|(path, value)| (self.1)(&mut paths, path, value)),
            )
        }
    }

    /// The leading fields, enough to find the revision.
    #[derive(Deserialize)]
    struct Head<'a> {
        version: u32,
        #[serde(borrow)]
        revision: Option<(Cow<'a, str>, Option<Cow<'a, str>>)>,
    }

    pub(super) enum DecodeError {
        Version(u32),
        Corrupt(String),
    }

    /// Front-codes sorted paths.
    struct Encoder<'a> {
        previous: &'a str,
    }

    impl<'a> Encoder<'a> {
        fn path(&mut self, path: &'a str) -> Path<'a> {
            let mut shared = self
                .previous
                .bytes()
                .zip(path.bytes())
                .take_while(|(a, b)| a == b)
                .count();
            // Whole characters only.
            while !path.is_char_boundary(shared) {
                shared -= 1;
            }
            self.previous = path;
            // Paths are far shorter than 4 GiB; a longer prefix is simply not shared.
            let (shared, rest) = match u32::try_from(shared) {
                Ok(length) => (length, &path[shared..]),
                Err(_) => (0, path),
            };
            Path(shared, Cow::Borrowed(rest))
        }
    }

    pub(super) fn encode(manifest: &Manifest) -> postcard::Result<Vec<u8>> {
        let whole = WholeOut {
            version: manifest.version,
            revision: manifest.revision.as_ref().map(revision_wire),
            profile: Cow::Borrowed(&manifest.profile),
            files: SeqOut(&manifest.files, file_wire),
            dirs: SeqOut(&manifest.dirs, dir_wire),
            plan: manifest.plan.as_ref().map(plan_wire),
        };
        // Room for what 20k files take (about 90 bytes each, and a directory's names), so the
        // buffer is not copied as it grows; capacity never written is never touched.
        let room = 4096 + manifest.files.len() * 128 + manifest.dirs.len() * 512;
        postcard::to_extend(&whole, Vec::with_capacity(room))
    }

    /// The version 3 layout built as earlier versions built it, with vectors (tests compare the
    /// streamed encoding with it).
    #[cfg(test)]
    pub(super) fn encode_as_version_3(manifest: &Manifest) -> Vec<u8> {
        let mut files = Encoder { previous: "" };
        let mut dirs = Encoder { previous: "" };
        let whole = Whole {
            version: manifest.version,
            revision: manifest.revision.as_ref().map(revision_wire),
            profile: Cow::Borrowed(&manifest.profile),
            files: manifest
                .files
                .iter()
                .map(|(path, entry)| file_wire(&mut files, path, entry))
                .collect(),
            dirs: manifest
                .dirs
                .iter()
                .map(|(path, record)| dir_wire(&mut dirs, path, record))
                .collect(),
            plan: manifest.plan.as_ref().map(plan_wire),
        };
        postcard::to_stdvec(&whole).unwrap_or_default()
    }

    pub(super) fn decode(bytes: &[u8]) -> Result<Manifest, DecodeError> {
        let corrupt = |error: postcard::Error| DecodeError::Corrupt(error.to_string());
        let (version, _) = postcard::take_from_bytes::<u32>(bytes).map_err(corrupt)?;
        if version != MANIFEST_VERSION && version != VERSION_WITHOUT_LOG {
            return Err(DecodeError::Version(version));
        }
        let whole: WholeIn = postcard::from_bytes(bytes).map_err(corrupt)?;
        // The files stay in the map they were decoded into; the directories (a few thousand)
        // are built into a tree in bulk. On one thread: the manifest is read ahead while the
        // sync resolves and diffs on another, which should keep its core.
        let dirs = whole.dirs.into_iter().collect();
        Ok(Manifest {
            version,
            revision: whole.revision,
            profile: whole.profile,
            files: whole.files,
            dirs,
            plan: whole.plan,
        })
    }

    /// The layout on the way in: the files and directories are decoded straight into sorted
    /// `(path, record)` pairs, with no vector of wire records in between (a fresh process pays
    /// for every page it touches).
    struct WholeIn {
        revision: Option<Revision>,
        profile: String,
        files: PathMap<ManifestEntry>,
        dirs: PathMap<DirRecord>,
        plan: Option<PlanRecord>,
    }

    impl<'de> Deserialize<'de> for WholeIn {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl<'de> serde::de::Visitor<'de> for Visitor {
                type Value = WholeIn;

                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a manifest")
                }

                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<WholeIn, A::Error> {
                    use serde::de::Error;
                    let missing = |field: &str| A::Error::custom(format!("no {field}"));
                    let _version: u32 = seq.next_element()?.ok_or_else(|| missing("version"))?;
                    let revision: Option<(Cow<'de, str>, Option<Cow<'de, str>>)> =
                        seq.next_element()?.ok_or_else(|| missing("revision"))?;
                    let profile: Cow<'de, str> =
                        seq.next_element()?.ok_or_else(|| missing("profile"))?;
                    let files = seq
                        .next_element_seed(Section::new(|File(path, id, stat, recipe)| {
                            (path, file_entry(id, stat, recipe))
                        }))?
                        .ok_or_else(|| missing("files"))?;
                    let dirs = seq
                        .next_element_seed(Section::new(|Dir(path, stat, names)| {
                            (
                                path,
                                DirRecord {
                                    stat: stat.into(),
                                    names: names.into_owned(),
                                },
                            )
                        }))?
                        .ok_or_else(|| missing("dirs"))?;
                    let plan: Option<Plan<'de>> =
                        seq.next_element()?.ok_or_else(|| missing("plan"))?;
                    Ok(WholeIn {
                        revision: revision.map(self::revision),
                        profile: profile.into_owned(),
                        files,
                        dirs,
                        plan: plan.map(plan_record),
                    })
                }
            }
            // Postcard encodes a struct as the tuple of its fields.
            deserializer.deserialize_tuple(6, Visitor)
        }
    }

    /// A section of front-coded records, decoded into a [`PathMap`]: `split` takes a record
    /// apart. Each path is rebuilt in one reused buffer and copied into the map's one string (no
    /// allocation per path).
    struct Section<'de, W, V> {
        split: fn(W) -> (Path<'de>, V),
    }

    impl<'de, W, V> Section<'de, W, V> {
        fn new(split: fn(W) -> (Path<'de>, V)) -> Self {
            Section { split }
        }
    }

    impl<'de, W: Deserialize<'de>, V> serde::de::DeserializeSeed<'de> for Section<'de, W, V> {
        type Value = PathMap<V>;

        fn deserialize<D: serde::Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_seq(self)
        }
    }

    impl<'de, W: Deserialize<'de>, V> serde::de::Visitor<'de> for Section<'de, W, V> {
        type Value = PathMap<V>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a sequence of records")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            use serde::de::Error;
            // The length comes from the file: a damaged one must not reserve gigabytes.
            let len = seq.size_hint().unwrap_or(0).min(1 << 20);
            // Paths average about 60 bytes.
            let mut map = PathMap::with_capacity(len, len * 64);
            let mut path = String::new();
            while let Some(record) = seq.next_element::<W>()? {
                let (Path(shared, rest), value) = (self.split)(record);
                let shared = shared as usize;
                if !path.is_char_boundary(shared) {
                    return Err(A::Error::custom(format!("bad path prefix length {shared}")));
                }
                path.truncate(shared);
                path.push_str(&rest);
                if map.push_sorted(&path, value).is_err() {
                    return Err(A::Error::custom(format!("path {path:?} out of order")));
                }
            }
            Ok(map)
        }
    }

    fn file_entry(id: Id, stat: StatWire, recipe: Option<(Id, Option<Id>)>) -> ManifestEntry {
        ManifestEntry {
            id: ContentId(id),
            stat: stat.into(),
            recipe: recipe.map(|(fingerprint, source_id)| Recipe {
                fingerprint: ContentId(fingerprint),
                source_id: source_id.map(ContentId),
            }),
        }
    }

    fn plan_record(plan: Plan<'_>) -> PlanRecord {
        PlanRecord {
            key: ContentId(plan.key),
            mappings: plan
                .mappings
                .into_iter()
                .map(|Mapping(source, destination, kind)| ResolvedMapping {
                    source: source.into_owned(),
                    destination: destination.into_owned(),
                    kind,
                })
                .collect(),
            warnings: plan.warnings.into_iter().map(Cow::into_owned).collect(),
            rerender: plan.rerender.into_iter().map(Cow::into_owned).collect(),
        }
    }

    /// A file's record in a delta: `None` when it is no longer desired.
    type FileChange = Option<(Id, StatWire, Option<(Id, Option<Id>)>)>;

    /// A directory's record in a delta: `None` when it is dropped.
    type DirChange<'a> = Option<(StatWire, Cow<'a, str>)>;

    /// A [`ManifestDelta`]: whole paths (a delta is small: front-coding would not pay).
    #[derive(Serialize, Deserialize)]
    struct Delta<'a> {
        #[serde(borrow)]
        revision: Option<(Cow<'a, str>, Option<Cow<'a, str>>)>,
        profile: Cow<'a, str>,
        plan: Option<Plan<'a>>,
        files: Vec<(Cow<'a, str>, FileChange)>,
        dirs: Vec<(Cow<'a, str>, DirChange<'a>)>,
    }

    pub(super) fn encode_delta(delta: &ManifestDelta) -> postcard::Result<Vec<u8>> {
        let wire = Delta {
            revision: delta.revision.as_ref().map(revision_wire),
            profile: Cow::Borrowed(&delta.profile),
            plan: delta.plan.as_ref().map(plan_wire),
            files: delta
                .files
                .iter()
                .map(|(path, entry)| {
                    let change = entry.map(|entry| {
                        (
                            entry.id.0,
                            entry.stat.into(),
                            entry.recipe.map(|recipe| {
                                (recipe.fingerprint.0, recipe.source_id.map(|id| id.0))
                            }),
                        )
                    });
                    (Cow::Borrowed(path.as_str()), change)
                })
                .collect(),
            dirs: delta
                .dirs
                .iter()
                .map(|(path, record)| {
                    let change = record
                        .as_ref()
                        .map(|record| (record.stat.into(), Cow::Borrowed(record.names.as_str())));
                    (Cow::Borrowed(path.as_str()), change)
                })
                .collect(),
        };
        postcard::to_stdvec(&wire)
    }

    pub(super) fn decode_delta(bytes: &[u8]) -> postcard::Result<ManifestDelta> {
        let wire: Delta<'_> = postcard::from_bytes(bytes)?;
        Ok(ManifestDelta {
            revision: wire.revision.map(revision),
            profile: wire.profile.into_owned(),
            plan: wire.plan.map(plan_record),
            files: wire
                .files
                .into_iter()
                .map(|(path, change)| {
                    let entry = change.map(|(id, stat, recipe)| file_entry(id, stat, recipe));
                    (path.into_owned(), entry)
                })
                .collect(),
            dirs: wire
                .dirs
                .into_iter()
                .map(|(path, change)| {
                    let record = change.map(|(stat, names)| DirRecord {
                        stat: stat.into(),
                        names: names.into_owned(),
                    });
                    (path.into_owned(), record)
                })
                .collect(),
        })
    }

    /// The version and revision a manifest starts with (`None`: not a manifest this version
    /// reads, or too short).
    pub(super) fn decode_revision(bytes: &[u8]) -> Option<(u32, Option<Revision>)> {
        let (head, _) = postcard::take_from_bytes::<Head<'_>>(bytes).ok()?;
        (head.version == MANIFEST_VERSION || head.version == VERSION_WITHOUT_LOG)
            .then(|| (head.version, head.revision.map(revision)))
    }

    fn revision((id, reference): (Cow<'_, str>, Option<Cow<'_, str>>)) -> Revision {
        Revision {
            id: id.into_owned(),
            reference: reference.map(Cow::into_owned),
        }
    }
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
                warnings: vec!["w".to_owned()],
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

    /// The streamed encoding writes exactly the bytes of the version 3 layout (`wire::Whole`,
    /// what earlier versions wrote), and reads back to the same manifest.
    #[test]
    fn the_streamed_encoding_is_the_version_3_layout() {
        let manifest = sample();
        let streamed = wire::encode(&manifest).unwrap();
        assert_eq!(streamed, wire::encode_as_version_3(&manifest));
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

    /// A version 3 manifest (written by Stoker versions without the log) is read, never takes
    /// a log, and a delta for it is written as a whole version 4 manifest.
    #[test]
    fn a_version_3_manifest_takes_no_log() {
        let mut old = sample();
        old.version = VERSION_WITHOUT_LOG;
        let live = live_with(&old);
        let base = stat_of(&path(live.path())).unwrap().unwrap();
        let mut log = log_header(&base);
        log.extend(frame(&wire::encode_delta(&delta("r1")).unwrap()).unwrap());
        std::fs::write(log_path(live.path()), log).unwrap();

        let loaded = read(live.path());
        assert_eq!(
            (loaded.manifest.as_ref(), loaded.warning),
            (Some(&old), None)
        );
        assert_eq!(
            last_revision(live.path()).map(|r| r.id),
            Some("0123456789abcdef".to_owned())
        );

        let mut in_hand = old.clone();
        let outcome = record(live.path(), &mut in_hand, delta("r2")).unwrap();
        assert_eq!(outcome, Recorded::Rewritten);
        assert_eq!(in_hand.version, MANIFEST_VERSION);
        assert_eq!(read(live.path()).manifest, Some(in_hand));
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
