//! The manifest in `live/.stoker/manifest.json`: what the last sync wrote, with the `lstat`
//! fields that let the next sync trust a file without reading it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use stoker_core::{ContentId, Revision};

use crate::error::{Error, Result};
use crate::fsops;
use crate::live::Stat;
use crate::scope::STATE_DIR;

/// Manifest format version; another version is ignored (everything is rehashed).
pub const MANIFEST_VERSION: u32 = 1;

/// One file the engine wrote or confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Content id of the file as written.
    pub id: ContentId,
    /// Its `lstat` right after.
    #[serde(flatten)]
    pub stat: Stat,
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
    pub files: BTreeMap<String, ManifestEntry>,
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
    match serde_json::from_slice::<Manifest>(&bytes) {
        Ok(manifest) if manifest.version == MANIFEST_VERSION => (Some(manifest), None),
        Ok(manifest) => (
            None,
            Some(format!(
                "ignored manifest {}: version {} (expected {MANIFEST_VERSION})",
                file.display(),
                manifest.version
            )),
        ),
        Err(error) => (
            None,
            Some(format!(
                "ignored corrupt manifest {}: {error}",
                file.display()
            )),
        ),
    }
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
