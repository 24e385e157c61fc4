//! What a sync did: [`SyncReport`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{ContentId, Revision};

/// One file added, modified or deleted by a sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileChange {
    /// Path relative to the live directory.
    pub path: String,
    /// Content id after the sync (`None` for deletions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_id: Option<ContentId>,
    /// Content id before the sync, when known (`None` for additions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_content_id: Option<ContentId>,
}

/// The outcome of one sync (or of a dry run, which computes the same report and writes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    /// The revision synced.
    pub revision: Revision,
    /// The profile used.
    pub profile: String,
    /// True when nothing was written.
    pub dry_run: bool,
    /// Files that did not exist in the live directory.
    pub added: Vec<FileChange>,
    /// Files whose content or executable bit changed.
    pub modified: Vec<FileChange>,
    /// Orphans removed from managed paths.
    pub deleted: Vec<FileChange>,
    /// Desired files already up to date.
    pub unchanged: u64,
    /// Bytes written to the live directory.
    pub bytes_written: u64,
    /// Things skipped or worth a look (symlinks in the source, protected destinations…).
    pub warnings: Vec<String>,
    /// Wall time of plan + apply.
    #[serde(with = "duration_seconds")]
    pub duration: Duration,
    /// Ignition projects in the desired set (`projects/<name>/project.json`), sorted.
    pub projects: Vec<String>,
}

impl SyncReport {
    /// Number of files added, modified or deleted.
    pub fn changed(&self) -> usize {
        self.added.len() + self.modified.len() + self.deleted.len()
    }
}

mod duration_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(duration.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let seconds = f64::deserialize(deserializer)?;
        Duration::try_from_secs_f64(seconds).map_err(serde::de::Error::custom)
    }
}
