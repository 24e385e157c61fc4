//! The manifest's one binary format (see the parent module for its layout): borrowed on the
//! way out, owned on the way in, and the log's records ([`ManifestDelta`]s).
use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use stoker_core::{ContentId, MappingType, Revision};

use super::{MANIFEST_VERSION, Manifest, ManifestDelta, ManifestEntry, PlanRecord};
use crate::content::Recipe;
use crate::desired::ResolvedMapping;
use crate::live::{DirRecord, Stat};
use crate::path_map::PathMap;
use crate::warning::Skipped;

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
    warnings: Cow<'a, [Skipped]>,
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
        warnings: Cow::Borrowed(&plan.warnings),
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

/// The layout built with vectors, the simple way (tests compare the streamed encoding with
/// it).
#[cfg(test)]
pub(super) fn encode_with_vectors(manifest: &Manifest) -> Vec<u8> {
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
                let plan: Option<Plan<'de>> = seq.next_element()?.ok_or_else(|| missing("plan"))?;
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

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
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
        warnings: plan.warnings.into_owned(),
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
                        entry
                            .recipe
                            .map(|recipe| (recipe.fingerprint.0, recipe.source_id.map(|id| id.0))),
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

/// The version and revision a manifest starts with (`None`: too short, or not a manifest).
pub(super) fn decode_revision(bytes: &[u8]) -> Option<(u32, Option<Revision>)> {
    let (head, _) = postcard::take_from_bytes::<Head<'_>>(bytes).ok()?;
    Some((head.version, head.revision.map(revision)))
}

fn revision((id, reference): (Cow<'_, str>, Option<Cow<'_, str>>)) -> Revision {
    Revision {
        id: id.into_owned(),
        reference: reference.map(Cow::into_owned),
    }
}
