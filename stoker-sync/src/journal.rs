//! Crash recovery: before changing anything, the engine records in `.stoker/journal.json` the
//! directories where it will create temporaries and the directories its deletions may empty;
//! the next run removes the temporaries it finds there and prunes those directories if they are
//! empty, so an interrupted sync converges.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsops;
use crate::live::lstat;
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

/// The journal's name in the state directory.
const JOURNAL_FILE: &str = "journal.json";

fn path(live: &Path) -> PathBuf {
    live.join(STATE_DIR).join(JOURNAL_FILE)
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

/// What [`recover`] did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// How many temporaries it removed.
    pub temporaries: usize,
    /// What it found that a person should know about (a journal it could not use).
    pub warnings: Vec<String>,
}

/// Cleans up after an interrupted sync: removes its temporaries and prunes the directories its
/// deletions emptied (only those `scope` still allows to prune).
///
/// Directories named in the journal are re-validated (relative, no `..`) and are only entered
/// when every component is a real directory, so a journal cannot steer deletions elsewhere.
///
/// A journal that cannot be read as one is ignored with a warning, as if there were none (the
/// plan, seeing it, already planned every file). If it is not even a regular file, it is got
/// out of the way without following or emptying it: an empty directory is removed, anything
/// else (a directory holding something, a symlink, a special file) is renamed to
/// `journal.json.set-aside-<time>` in the state directory, for a person to look at.
pub fn recover(live: &Path, scope: &Scope) -> Result<Recovered> {
    // The engine's own files (this journal, the manifest and its log, the reports) are written
    // through temporaries in the state directory too; a crash leaves them there with or without
    // a journal (one killed while writing the journal itself leaves none). The directory is the
    // engine's alone, and the caller holds the lock. Neither it nor the reports directory is
    // entered through a symlink.
    let mut recovered = Recovered::default();
    if let Some(state) = fsops::state_dir(live)? {
        recovered.temporaries += fsops::remove_temporaries(&state)?;
    }
    if let Some(reports) = crate::diff_report::dir(live)? {
        recovered.temporaries += fsops::remove_temporaries(&reports)?;
    }
    let file = path(live);
    let opened = match fsops::open_state_file(&file) {
        Ok(Some(opened)) => opened,
        Ok(None) => return Ok(recovered),
        Err(error) if error.kind() == std::io::ErrorKind::InvalidInput => {
            recovered.warnings.push(set_aside(&file, &error)?);
            return Ok(recovered);
        }
        Err(source) => return Err(Error::io("opening", file, source)),
    };
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut &opened, &mut bytes)
        .map_err(|source| Error::io("reading", &file, source))?;
    drop(opened);
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
    for dir in journal.temporaries.iter().filter_map(valid) {
        recovered.temporaries += fsops::remove_temporaries(&live.join(&dir))?;
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
    Ok(recovered)
}

/// Gets what is at the journal's path, not a regular file (`problem` says what), out of the
/// way: an empty directory is removed, anything else renamed aside in the state directory.
/// Returns the warning saying what was done.
fn set_aside(file: &Path, problem: &std::io::Error) -> Result<String> {
    tracing::warn!(journal = %file.display(), %problem, "ignoring a journal that is not a regular file");
    if std::fs::remove_dir(file).is_ok() {
        return Ok(format!(
            "ignored the journal {}: it was an empty directory, now removed; planned every file",
            file.display()
        ));
    }
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.9fZ");
    let aside = file.with_file_name(format!("{JOURNAL_FILE}.set-aside-{stamp}"));
    if lstat(&aside)?.is_some() {
        return Err(Error::unsafe_live(
            aside,
            "already exists; Stoker would move a journal that is not a regular file there",
        ));
    }
    std::fs::rename(file, &aside).map_err(|source| Error::io("setting aside", file, source))?;
    Ok(format!(
        "ignored the journal {}: {problem}; moved it to {} (Stoker does not delete what it did \
         not write: remove it when you have looked at it) and planned every file",
        file.display(),
        aside.display()
    ))
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
