//! The JSON diff report kept per sync in `live/.stoker/reports/`.

use std::path::Path;

use serde::Serialize;
use stoker_core::{Revision, SyncReport};

use crate::error::{Error, Result};
use crate::fsops;
use crate::scope::STATE_DIR;

/// Counts by action.
#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    /// Files added.
    pub added: usize,
    /// Files modified.
    pub modified: usize,
    /// Files deleted.
    pub deleted: usize,
    /// Files unchanged.
    pub unchanged: u64,
}

/// One line of the diff.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// Live path.
    pub path: String,
    /// `added`, `modified` or `deleted`.
    pub action: &'static str,
    /// Content id after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
    /// Content id before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_content_id: Option<String>,
}

/// The JSON diff report (`fromCommit`, `toCommit`, counts, `changes[]`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiffReport {
    /// Revision synced before, if known.
    pub from_commit: Option<String>,
    /// Revision synced now.
    pub to_commit: String,
    /// Profile used.
    pub profile: String,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// Counts by action.
    pub counts: Counts,
    /// Every change.
    pub changes: Vec<Change>,
}

impl DiffReport {
    /// Builds the diff report of a sync.
    pub fn new(from: Option<&Revision>, report: &SyncReport) -> Self {
        let mut changes = Vec::with_capacity(report.changed());
        let lines = [
            ("added", &report.added),
            ("modified", &report.modified),
            ("deleted", &report.deleted),
        ];
        for (action, list) in lines {
            changes.extend(list.iter().map(|change| Change {
                path: change.path.clone(),
                action,
                content_id: change.content_id.map(|id| id.to_string()),
                previous_content_id: change.previous_content_id.map(|id| id.to_string()),
            }));
        }
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        DiffReport {
            from_commit: from.map(|r| r.id.clone()),
            to_commit: report.revision.id.clone(),
            profile: report.profile.clone(),
            time: jiff::Timestamp::now().to_string(),
            counts: Counts {
                added: report.added.len(),
                modified: report.modified.len(),
                deleted: report.deleted.len(),
                unchanged: report.unchanged,
            },
            changes,
        }
    }
}

/// Writes the diff report of a sync and keeps only the newest `keep`.
pub fn store(live: &Path, from: Option<&Revision>, report: &SyncReport, keep: usize) -> Result<()> {
    let dir = live.join(STATE_DIR).join("reports");
    std::fs::create_dir_all(&dir).map_err(|source| Error::io("creating", &dir, source))?;
    let diff = DiffReport::new(from, report);
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%S%.fZ")
        .to_string();
    let file = dir.join(format!("{stamp}-{}.json", report.revision.short_id()));
    let bytes = serde_json::to_vec_pretty(&diff).map_err(|source| Error::Json {
        path: file.clone(),
        source,
    })?;
    fsops::write_state_file(&file, &bytes)?;
    let mut existing: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|source| Error::io("listing", &dir, source))?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    existing.sort();
    let excess = existing.len().saturating_sub(keep);
    for old in &existing[..excess] {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}
