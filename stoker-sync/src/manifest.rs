//! The manifest in `live/.stoker/manifest.json`: what the last sync wrote, with the `lstat`
//! fields that let the next sync trust a file without reading it, and what each directory below
//! the managed roots held, which lets it skip listing unchanged directories.
//!
//! Format (version 2), compact because it is read on every sync:
//!
//! ```json
//! {"version": 2, "revision": {"id": "…", "reference": "main"}, "profile": "default",
//!  "files": {"projects/a/project.json": ["<blob id>", size, mtime, ctime, ino, mode],
//!            "config/db.json": ["<id>", size, mtime, ctime, ino, mode, "<recipe>", "<source id>"]},
//!  "dirs": {"projects/a": [size, mtime, ctime, ino, mode, "name/name/…"]}}
//! ```
//!
//! Times are nanoseconds since the epoch; a directory's names are sorted and joined with `/`. A
//! transformed file may carry its [`Recipe`] (fingerprint, source id or `null`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
/// Version 2 added `dirs` and stores entries as arrays.
pub const MANIFEST_VERSION: u32 = 2;

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
}

/// Path of the manifest.
pub fn path(live: &Path) -> PathBuf {
    live.join(STATE_DIR).join("manifest.json")
}

/// Loads the manifest. A missing, unreadable or foreign one is `None` plus a warning: the engine
/// then hashes every live file, which is slower but still correct.
pub fn load(live: &Path) -> (Option<Manifest>, Option<String>) {
    let file = path(live);
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
    let version_warning = |version: u32| {
        format!(
            "ignored manifest {}: version {version} (expected {MANIFEST_VERSION})",
            file.display()
        )
    };
    match serde_json::from_slice::<Manifest>(&bytes) {
        Ok(manifest) if manifest.version == MANIFEST_VERSION => (Some(manifest), None),
        Ok(manifest) => (None, Some(version_warning(manifest.version))),
        // An older format does not parse as this one: say so rather than "corrupt".
        Err(error) => match serde_json::from_slice::<Head>(&bytes) {
            Ok(head) if head.version != MANIFEST_VERSION => {
                (None, Some(version_warning(head.version)))
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

/// The first fields of a manifest (the rest is skipped unparsed).
#[derive(Deserialize)]
struct Head {
    version: u32,
    #[serde(default)]
    revision: Option<Revision>,
}

/// The revision the live directory was last synced to, according to its manifest (`None` when
/// there is no usable manifest). Cheaper than [`load`]: the entries are skipped, not built.
pub fn last_revision(live: &Path) -> Option<Revision> {
    let bytes = std::fs::read(path(live)).ok()?;
    let head: Head = serde_json::from_slice(&bytes).ok()?;
    (head.version == MANIFEST_VERSION).then_some(head.revision?)
}

/// When the manifest was written: its file's mtime, in nanoseconds since the epoch (the file
/// system's clock, the one live files' ctimes come from). `None` when it cannot be read.
pub fn written_at(live: &Path) -> Option<i64> {
    let metadata = std::fs::symlink_metadata(path(live)).ok()?;
    Some(Stat::of(&metadata).mtime)
}

/// Writes the manifest atomically and durably.
pub fn store(live: &Path, manifest: &Manifest) -> Result<()> {
    let file = path(live);
    let bytes = serde_json::to_vec(manifest).map_err(|source| Error::Json {
        path: file.clone(),
        source,
    })?;
    fsops::write_state_file(&file, &bytes)
}
