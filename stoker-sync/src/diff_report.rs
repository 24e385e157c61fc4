//! The JSON diff report kept per sync in `live/.stoker/reports/`.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use stoker_core::{Revision, SyncReport};

use crate::error::{Error, Result};
use crate::fsops;
use crate::live::lstat;
use crate::scope::STATE_DIR;

/// The directory below the state directory where the reports are kept.
pub const REPORTS_DIR: &str = "reports";

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
pub struct Change<'a> {
    /// Live path.
    pub path: &'a str,
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
pub struct DiffReport<'a> {
    /// Revision synced before, if known.
    pub from_commit: Option<&'a str>,
    /// Revision synced now.
    pub to_commit: &'a str,
    /// Profile used.
    pub profile: &'a str,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// Counts by action.
    pub counts: Counts,
    /// Every change.
    pub changes: Vec<Change<'a>>,
}

impl<'a> DiffReport<'a> {
    /// Builds the diff report of a sync, borrowing the report's paths (a cold sync's report
    /// lists every file).
    pub fn new(from: Option<&'a Revision>, report: &'a SyncReport) -> Self {
        let mut changes = Vec::with_capacity(report.changed());
        let lines = [
            ("added", &report.added),
            ("modified", &report.modified),
            ("deleted", &report.deleted),
        ];
        for (action, list) in lines {
            changes.extend(list.iter().map(|change| Change {
                path: &change.path,
                action,
                content_id: change.content_id.map(|id| id.to_string()),
                previous_content_id: change.previous_content_id.map(|id| id.to_string()),
            }));
        }
        changes.sort_by(|a, b| a.path.cmp(b.path));
        DiffReport {
            from_commit: from.map(|r| r.id.as_str()),
            to_commit: &report.revision.id,
            profile: &report.profile,
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

/// The reports directory `live/.stoker/reports` if it exists; `None` when it does not.
/// Anything there but a real directory (a symlink, wherever it points; a file) is refused with
/// [`Error::UnsafeLive`] naming it: it is never followed, replaced or removed.
pub fn dir(live: &Path) -> Result<Option<PathBuf>> {
    let dir = live.join(STATE_DIR).join(REPORTS_DIR);
    match lstat(&dir)? {
        None => Ok(None),
        Some(metadata) if metadata.file_type().is_dir() => Ok(Some(dir)),
        Some(metadata) => Err(fsops::not_a_state_dir(
            dir,
            &metadata,
            "Stoker keeps its diff reports there",
        )),
    }
}

/// Writes the diff report of a sync and keeps only the newest `keep` of Stoker's reports.
///
/// Neither `.stoker` nor `.stoker/reports` is followed if it is a symlink (an error, see
/// [`dir`]). Pruning removes only regular files named as Stoker names its reports; anything
/// else in the directory is left as it is and does not count.
pub fn store(live: &Path, from: Option<&Revision>, report: &SyncReport, keep: usize) -> Result<()> {
    let dir = match dir(live)? {
        Some(dir) => dir,
        None => {
            let dir = fsops::ensure_state_dir(live)?.join(REPORTS_DIR);
            match std::fs::create_dir(&dir) {
                Ok(()) => dir,
                // Made since it was looked at: look again.
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    self::dir(live)?.ok_or_else(|| Error::io("creating", &dir, error))?
                }
                Err(source) => return Err(Error::io("creating", &dir, source)),
            }
        }
    };
    let diff = DiffReport::new(from, report);
    let file = dir.join(file_name(jiff::Timestamp::now(), &report.revision));
    // Streamed to the file: a cold sync's report lists every file, and for 20k files the
    // whole text in memory was the largest single allocation of the sync.
    fsops::write_record_file(&file, |out| {
        let mut out = BufWriter::new(out);
        serde_json::to_writer_pretty(&mut out, &diff)?;
        out.flush()
    })?;
    let mut existing = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|source| Error::io("listing", &dir, source))? {
        let entry = entry.map_err(|source| Error::io("listing", &dir, source))?;
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|name| is_report_name(name)) else {
            continue;
        };
        // The entry's own type (`lstat`): a symlink named like a report is not one.
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            existing.push(name.to_owned());
        } else {
            tracing::debug!(path = %entry.path().display(), "not a report Stoker wrote; left alone");
        }
    }
    existing.sort();
    let excess = existing.len().saturating_sub(keep);
    for old in &existing[..excess] {
        let old = dir.join(old);
        if let Err(error) = std::fs::remove_file(&old) {
            tracing::warn!(report = %old.display(), %error, "could not remove an old diff report");
        }
    }
    Ok(())
}

/// The report's file name. Names sort in time order (the pruning above keeps the last ones by
/// name), so the fraction of a second has a fixed width: `%.f` trims trailing zeros, and
/// `…05.12Z` would sort after `…05.123Z`.
fn file_name(time: jiff::Timestamp, revision: &Revision) -> String {
    let stamp = time.strftime("%Y%m%dT%H%M%S%.9fZ");
    format!("{stamp}-{}.json", revision.short_id())
}

/// True for a name [`file_name`] gives: `YYYYMMDDTHHMMSS.nnnnnnnnnZ-<revision>.json`.
fn is_report_name(name: &str) -> bool {
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let Some(rest) = name.strip_suffix(".json") else {
        return false;
    };
    let Some((stamp, revision)) = rest.split_once('-') else {
        return false;
    };
    let shape = |stamp: &str| -> Option<()> {
        let (date, time) = stamp.split_once('T')?;
        let (seconds, fraction) = time.strip_suffix('Z')?.split_once('.')?;
        (digits(date)
            && date.len() == 8
            && digits(seconds)
            && seconds.len() == 6
            && digits(fraction)
            && fraction.len() == 9)
            .then_some(())
    };
    !revision.is_empty() && shape(stamp).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: with a trimmed fraction, report names did not sort in time order, so the
    /// newest reports could be the ones deleted.
    #[test]
    fn report_file_names_sort_in_time_order() {
        let revision = Revision::new("0123456789");
        let times = [
            "2026-11-23T01:02:03Z",
            "2026-11-23T01:02:03.12Z",
            "2026-11-23T01:02:03.123Z",
            "2026-11-23T01:02:03.5Z",
            "2026-11-23T01:02:04Z",
        ];
        let names: Vec<String> = times
            .iter()
            .map(|t| file_name(t.parse().unwrap(), &revision))
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(sorted, names);
        assert_eq!(names[1], "20261123T010203.120000000Z-0123456.json");
        assert!(names.iter().all(|name| is_report_name(name)));
    }

    #[test]
    fn only_names_stoker_gives_are_report_names() {
        for name in [
            "20261123T010203.120000000Z-0123456.json",
            "20261123T010203.120000000Z-r1.json",
            "20261123T010203.120000000Z-a-b.json",
        ] {
            assert!(is_report_name(name), "{name}");
        }
        for name in [
            "notes.json",
            "20261123T010203.120000000Z-0123456.json.bak",
            "20261123T010203.120000000Z-.json",
            "20261123T010203.12Z-0123456.json",
            "20261123T010203Z-0123456.json",
            "2026112T010203.120000000Z-0123456.json",
            "20261123X010203.120000000Z-0123456.json",
            ".stoker-tmp-1-0-0000",
        ] {
            assert!(!is_report_name(name), "{name}");
        }
    }
}
