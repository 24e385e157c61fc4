//! Crash recovery: before changing anything, the engine records in `.stoker/journal.json` the
//! directories where it will create temporaries and the directories its deletions may empty;
//! the next run removes the temporaries it finds there and prunes those directories if they are
//! empty, so an interrupted sync converges.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsops;
use crate::scope::{STATE_DIR, Scope};

/// What an interrupted sync may have left behind.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Journal {
    /// Directories (relative to `live`) that receive temporaries.
    temporaries: BTreeSet<String>,
    /// Directories (relative to `live`) the sync's deletions may empty.
    #[serde(default)]
    prune: BTreeSet<String>,
}

fn path(live: &Path) -> PathBuf {
    live.join(STATE_DIR).join("journal.json")
}

/// Records the directories (relative to `live`) that will receive temporaries, and those that
/// the deletions may leave empty.
pub fn begin(live: &Path, temporaries: &BTreeSet<String>, prune: &BTreeSet<String>) -> Result<()> {
    let file = path(live);
    let journal = Journal {
        temporaries: temporaries.clone(),
        prune: prune.clone(),
    };
    let bytes = serde_json::to_vec(&journal).map_err(|source| Error::Json {
        path: file.clone(),
        source,
    })?;
    fsops::write_state_file(&file, &bytes)
}

/// True when a sync began and did not finish (its journal is still there).
pub fn pending(live: &Path) -> bool {
    std::fs::symlink_metadata(path(live)).is_ok()
}

/// Marks the sync complete.
pub fn finish(live: &Path) -> Result<()> {
    let file = path(live);
    match std::fs::remove_file(&file) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::io("removing", file, source)),
    }
}

/// Cleans up after an interrupted sync: removes its temporaries and prunes the directories its
/// deletions emptied (only those `scope` still allows to prune). Returns how many temporaries
/// were removed.
///
/// Directories named in the journal are re-validated (relative, no `..`) and are only entered
/// when every component is a real directory, so a journal cannot steer deletions elsewhere.
pub fn recover(live: &Path, scope: &Scope) -> Result<usize> {
    // The engine's own files (this journal, the manifest and its log, the reports) are written
    // through temporaries in the state directory too; a crash leaves them there with or without
    // a journal (one killed while writing the journal itself leaves none). The directory is the
    // engine's alone, and the caller holds the lock. Neither it nor the reports directory is
    // entered through a symlink.
    let mut left_in_state = 0;
    if let Some(state) = fsops::state_dir(live)? {
        left_in_state += fsops::remove_temporaries(&state)?;
    }
    if let Some(reports) = crate::diff_report::dir(live)? {
        left_in_state += fsops::remove_temporaries(&reports)?;
    }
    let file = path(live);
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(left_in_state),
        Err(source) => return Err(Error::io("reading", file, source)),
    };
    let journal: Journal = match serde_json::from_slice(&bytes) {
        Ok(journal) => journal,
        Err(error) => {
            tracing::warn!(journal = %file.display(), %error, "ignoring unreadable journal");
            Journal::default()
        }
    };
    let valid = |dir: &String| -> Option<String> {
        let dir = stoker_core::relpath::normalize(dir, "journal").ok()?;
        (!crosses_symlink(live, &dir)).then_some(dir)
    };
    let mut removed = 0;
    for dir in journal.temporaries.iter().filter_map(valid) {
        removed += fsops::remove_temporaries(&live.join(&dir))?;
    }
    // Without this, a crash between the deletions and the pruning would leave directories the
    // next run sees as "already empty" and keeps: it would not converge.
    let prune: BTreeSet<String> = journal
        .prune
        .iter()
        .filter_map(valid)
        .filter(|dir| scope.may_prune(dir))
        .collect();
    fsops::remove_empty_dirs(live, &prune, &fsops::Steps::default())?;
    finish(live)?;
    Ok(removed + left_in_state)
}

fn crosses_symlink(live: &Path, dir: &str) -> bool {
    let mut current = live.to_path_buf();
    for component in dir.split('/').filter(|c| !c.is_empty()) {
        current.push(component);
        match std::fs::symlink_metadata(&current) {
            Ok(metadata) if metadata.file_type().is_dir() => {}
            _ => return true,
        }
    }
    false
}
