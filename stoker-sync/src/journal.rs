//! Crash recovery: before writing, the engine records in `.stoker/journal.json` the directories
//! where it will create temporaries; the next run removes any it finds there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsops;
use crate::scope::STATE_DIR;

fn path(live: &Path) -> PathBuf {
    live.join(STATE_DIR).join("journal.json")
}

/// Records the directories (relative to `live`) that will receive temporaries.
pub fn begin(live: &Path, dirs: &BTreeSet<String>) -> Result<()> {
    let file = path(live);
    let bytes = serde_json::to_vec(dirs).map_err(|source| Error::Json {
        path: file.clone(),
        source,
    })?;
    fsops::write_state_file(&file, &bytes)
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

/// Removes temporaries left by an interrupted sync; returns how many.
///
/// Directories named in the journal are re-validated (relative, no `..`) and are only entered
/// when every component is a real directory, so a journal cannot steer deletions elsewhere.
pub fn recover(live: &Path) -> Result<usize> {
    let file = path(live);
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => return Err(Error::io("reading", file, source)),
    };
    let dirs: BTreeSet<String> = match serde_json::from_slice(&bytes) {
        Ok(dirs) => dirs,
        Err(error) => {
            tracing::warn!(journal = %file.display(), %error, "ignoring unreadable journal");
            BTreeSet::new()
        }
    };
    let mut removed = 0;
    for dir in dirs {
        let Ok(dir) = stoker_core::relpath::normalize(&dir, "journal") else {
            continue;
        };
        if crosses_symlink(live, &dir) {
            continue;
        }
        removed += fsops::remove_temporaries(&live.join(&dir))?;
    }
    finish(live)?;
    Ok(removed)
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
