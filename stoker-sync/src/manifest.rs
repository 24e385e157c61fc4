//! The manifest in `live/.stoker/manifest.bin`: what the last sync wrote, with the `lstat`
//! fields that let the next sync trust a file without reading it, what each directory below the
//! managed roots held (which lets it skip listing unchanged directories), and how the desired
//! set was made (which lets a sync between two commits plan only the changed paths).
//!
//! Format (version 3): [postcard](https://docs.rs/postcard), because it is read and rewritten
//! on every sync that changes something (about 3× smaller and many times faster to read and
//! write than the JSON of version 2 for 20k files). The fields, in order:
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
//! A version 2 manifest (`manifest.json`, written by earlier Stoker versions) is still read, and
//! replaced by the next write.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use stoker_core::{ContentId, Revision};

use crate::content::Recipe;
use crate::error::{Error, Result};
use crate::fsops;
use crate::live::{DirRecord, Stat};
use crate::scope::STATE_DIR;

/// Manifest format version; another version is ignored (everything is rehashed and every
/// directory listed).
///
/// Version 2 added `dirs` and stores entries as arrays; version 3 is binary (`manifest.bin`).
pub const MANIFEST_VERSION: u32 = 3;

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

mod sorted_map {
    //! A JSON object into a `BTreeMap`, built in one go from its (sorted) entries instead of one
    //! insertion at a time.
    use std::collections::BTreeMap;
    use std::marker::PhantomData;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, V>, D::Error> {
        struct Visitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<V> {
            type Value = Vec<(String, V)>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(entries)
            }
        }
        // `collect` sorts (a no-op pass on sorted input), keeps the last of equal keys, and
        // builds the tree in bulk.
        Ok(deserializer
            .deserialize_map(Visitor(PhantomData))?
            .into_iter()
            .collect())
    }
}

mod dirs_wire {
    //! `dirs` as a map of [`DirWire`](super::DirWire) arrays.
    use super::{BTreeMap, DirRecord, DirWire};
    use serde::{Deserializer, Serializer};

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
        let wire: BTreeMap<String, DirWire> = super::sorted_map::deserialize(deserializer)?;
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
    #[serde(deserialize_with = "sorted_map::deserialize")]
    pub files: BTreeMap<String, ManifestEntry>,
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

/// Path of the manifest.
pub fn path(live: &Path) -> PathBuf {
    live.join(STATE_DIR).join("manifest.bin")
}

/// Path of a version 2 manifest (JSON), written by earlier Stoker versions.
pub fn json_path(live: &Path) -> PathBuf {
    live.join(STATE_DIR).join("manifest.json")
}

/// Loads the manifest. A missing, unreadable or foreign one is `None` plus a warning: the engine
/// then hashes every live file, which is slower but still correct.
pub fn load(live: &Path) -> (Option<Manifest>, Option<String>) {
    let file = path(live);
    match std::fs::read(&file) {
        Ok(bytes) => decoded(&file, &bytes),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => load_json(live),
        Err(error) => (
            None,
            Some(format!("ignored manifest {}: {error}", file.display())),
        ),
    }
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
fn load_json(live: &Path) -> (Option<Manifest>, Option<String>) {
    let file = json_path(live);
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return (None, None),
        Err(error) => {
            return (
                None,
                Some(format!("ignored manifest {}: {error}", file.display())),
            );
        }
    };
    match serde_json::from_slice::<Manifest>(&bytes) {
        Ok(manifest) if manifest.version == JSON_VERSION => (
            Some(Manifest {
                version: MANIFEST_VERSION,
                ..manifest
            }),
            None,
        ),
        Ok(manifest) => (None, Some(version_warning(&file, manifest.version))),
        // An older format does not parse as this one: say so rather than "corrupt".
        Err(error) => match serde_json::from_slice::<Head>(&bytes) {
            Ok(head) if head.version != JSON_VERSION => {
                (None, Some(version_warning(&file, head.version)))
            }
            _ => (
                None,
                Some(format!(
                    "ignored corrupt manifest {}: {error}",
                    file.display()
                )),
            ),
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

/// The revision the live directory was last synced to, according to its manifest (`None` when
/// there is no usable manifest). Cheaper than [`load`]: only the first fields are read.
pub fn last_revision(live: &Path) -> Option<Revision> {
    match std::fs::File::open(path(live)) {
        Ok(file) => {
            // The revision comes first: a few hundred bytes of a file of megabytes.
            let mut head = Vec::with_capacity(4096);
            std::io::Read::read_to_end(&mut std::io::Read::take(&file, 4096), &mut head).ok()?;
            wire::decode_revision(&head).or_else(|| {
                let bytes = std::fs::read(path(live)).ok()?;
                wire::decode_revision(&bytes)
            })
        }
        Err(_) => {
            let bytes = std::fs::read(json_path(live)).ok()?;
            let head: Head = serde_json::from_slice(&bytes).ok()?;
            (head.version == JSON_VERSION).then_some(head.revision?)
        }
    }
}

/// When the manifest was written: its file's mtime, in nanoseconds since the epoch (the file
/// system's clock, the one live files' ctimes come from). `None` when it cannot be read.
pub fn written_at(live: &Path) -> Option<i64> {
    let metadata = std::fs::symlink_metadata(path(live))
        .or_else(|_| std::fs::symlink_metadata(json_path(live)))
        .ok()?;
    Some(Stat::of(&metadata).mtime)
}

/// A manifest read ahead of the sync that needs it: started when a sync begins, it is read and
/// decoded on another thread while the source resolves, fetches and diffs, and taken by the
/// plan once it holds the live directory's lock.
///
/// What was read is used only if the file is still the one read (same inode, size and times,
/// checked under the lock): the manifest is only ever replaced by a rename, so any write in
/// between is noticed and the manifest is read again.
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

/// A manifest as read, and the `lstat` of the file it was read from.
struct Snapshot {
    read_from: Stat,
    loaded: (Option<Manifest>, Option<String>),
}

impl ReadAhead {
    /// Starts reading the manifest of `live` on another thread (replacing a read not taken).
    pub fn start(&self, live: &Path) {
        let file = path(live);
        let reader = std::thread::Builder::new()
            .name("manifest-read-ahead".into())
            .spawn(move || {
                let opened = std::fs::File::open(&file).ok()?;
                let read_from = Stat::of(&opened.metadata().ok()?);
                let mut bytes = Vec::with_capacity(usize::try_from(read_from.size).ok()?);
                std::io::Read::read_to_end(&mut &opened, &mut bytes).ok()?;
                Some(Snapshot {
                    read_from,
                    loaded: decoded(&file, &bytes),
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

    /// What [`ReadAhead::start`] read for `live`, if it is still what [`load`] would read now
    /// (call with the live directory's lock held). `None`: load it.
    pub fn take(&self, live: &Path) -> Option<(Option<Manifest>, Option<String>)> {
        let (started_for, handle) = self
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        let snapshot = handle.join().ok()??;
        let now = std::fs::symlink_metadata(path(live)).ok()?;
        (started_for == live && Stat::of(&now) == snapshot.read_from).then_some(snapshot.loaded)
    }
}

/// Writes the manifest atomically and durably (and removes a version 2 manifest).
pub fn store(live: &Path, manifest: &Manifest) -> Result<()> {
    let file = path(live);
    let bytes = wire::encode(manifest).map_err(|source| Error::Manifest {
        path: file.clone(),
        source,
    })?;
    fsops::write_state_file(&file, &bytes)?;
    match std::fs::remove_file(json_path(live)) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(Error::io(
            "removing the old manifest",
            json_path(live),
            error,
        )),
        _ => Ok(()),
    }
}

mod wire {
    //! The binary format: borrowed on the way out, owned on the way in.
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};
    use stoker_core::{ContentId, MappingType, Revision};

    use super::{MANIFEST_VERSION, Manifest, ManifestEntry, PlanRecord};
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

    #[derive(Serialize, Deserialize)]
    struct Whole<'a> {
        version: u32,
        #[serde(borrow)]
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
        files: SeqOut<'a, ManifestEntry, File<'a>>,
        dirs: SeqOut<'a, DirRecord, Dir<'a>>,
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
    struct SeqOut<'a, V, T>(
        &'a BTreeMap<String, V>,
        fn(&mut Encoder<'a>, &'a str, &'a V) -> T,
    );

    impl<'a, V, T: Serialize> Serialize for SeqOut<'a, V, T> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut paths = Encoder { previous: "" };
            serializer.collect_seq(
                self.0
                    .iter()
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

    /// Undoes [`Encoder`]: the path after `previous`.
    fn decode_path(previous: &str, Path(shared, rest): Path<'_>) -> Result<String, DecodeError> {
        let shared = shared as usize;
        let prefix = previous
            .get(..shared)
            .ok_or_else(|| DecodeError::Corrupt(format!("bad path prefix length {shared}")))?;
        let mut path = String::with_capacity(shared + rest.len());
        path.push_str(prefix);
        path.push_str(&rest);
        Ok(path)
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
        if version != MANIFEST_VERSION {
            return Err(DecodeError::Version(version));
        }
        let whole: Whole<'_> = postcard::from_bytes(bytes).map_err(corrupt)?;
        // Files and directories are independent: built on two threads.
        let (files, dirs) = rayon::join(|| decode_files(whole.files), || decode_dirs(whole.dirs));
        let (files, dirs) = (files?, dirs?);
        Ok(Manifest {
            version,
            revision: whole.revision.map(revision),
            profile: whole.profile.into_owned(),
            files,
            dirs,
            plan: whole.plan.map(|plan| PlanRecord {
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
            }),
        })
    }

    fn decode_files(wire: Vec<File<'_>>) -> Result<BTreeMap<String, ManifestEntry>, DecodeError> {
        let mut files: Vec<(String, ManifestEntry)> = Vec::with_capacity(wire.len());
        for File(path, id, stat, recipe) in wire {
            let previous = files.last().map_or("", |(previous, _)| previous.as_str());
            files.push((
                decode_path(previous, path)?,
                ManifestEntry {
                    id: ContentId(id),
                    stat: stat.into(),
                    recipe: recipe.map(|(fingerprint, source_id)| Recipe {
                        fingerprint: ContentId(fingerprint),
                        source_id: source_id.map(ContentId),
                    }),
                },
            ));
        }
        // Written sorted: collecting builds the map in bulk.
        Ok(files.into_iter().collect())
    }

    fn decode_dirs(wire: Vec<Dir<'_>>) -> Result<BTreeMap<String, DirRecord>, DecodeError> {
        let mut dirs: Vec<(String, DirRecord)> = Vec::with_capacity(wire.len());
        for Dir(path, stat, names) in wire {
            let previous = dirs.last().map_or("", |(previous, _)| previous.as_str());
            dirs.push((
                decode_path(previous, path)?,
                DirRecord {
                    stat: stat.into(),
                    names: names.into_owned(),
                },
            ));
        }
        Ok(dirs.into_iter().collect())
    }

    pub(super) fn decode_revision(bytes: &[u8]) -> Option<Revision> {
        let (head, _) = postcard::take_from_bytes::<Head<'_>>(bytes).ok()?;
        (head.version == MANIFEST_VERSION).then_some(revision(head.revision?))
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

    /// The streamed encoding writes exactly the bytes of the version 3 layout (`wire::Whole`,
    /// what earlier versions wrote), and reads back to the same manifest.
    #[test]
    fn the_streamed_encoding_is_the_version_3_layout() {
        let stat = |n: i64| Stat {
            size: n as u64,
            mtime: n * 1_000,
            ctime: n * 2_000,
            ino: n as u64 + 7,
            mode: 0o100644,
        };
        let mut files = BTreeMap::new();
        for (n, path) in ["a/b/c.json", "a/b/d.json", "a/e.json", "z/ü.txt"]
            .iter()
            .enumerate()
        {
            files.insert(
                (*path).to_owned(),
                ManifestEntry {
                    id: ContentId([n as u8; 20]),
                    stat: stat(n as i64 + 1),
                    recipe: (n % 2 == 1).then_some(Recipe {
                        fingerprint: ContentId([9; 20]),
                        source_id: (n == 1).then_some(ContentId([8; 20])),
                    }),
                },
            );
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
        let manifest = Manifest {
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
        };
        let streamed = wire::encode(&manifest).unwrap();
        assert_eq!(streamed, wire::encode_as_version_3(&manifest));
        assert_eq!(wire::decode(&streamed).ok(), Some(manifest));
    }

    /// What was read ahead is taken only while the file is still the one read.
    #[test]
    fn a_manifest_read_ahead_is_taken_only_if_unchanged_since() {
        let live = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(live.path().join(STATE_DIR)).unwrap();
        store(live.path(), &manifest("first")).unwrap();
        let ahead = ReadAhead::default();

        ahead.start(live.path());
        let (taken, warning) = ahead.take(live.path()).unwrap();
        assert_eq!(warning, None);
        assert_eq!(taken.unwrap().profile, "first");
        // Taken once.
        assert!(ahead.take(live.path()).is_none());

        // Rewritten after the read: stale, not taken.
        ahead.start(live.path());
        ahead.wait_until_read();
        store(live.path(), &manifest("second")).unwrap();
        assert!(ahead.take(live.path()).is_none());

        // Read for another directory.
        let other = tempfile::tempdir().unwrap();
        ahead.start(live.path());
        assert!(ahead.take(other.path()).is_none());
    }
}
