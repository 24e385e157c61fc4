//! File-system steps with the engine's safety rules: temporaries in the target's directory,
//! rename into place, never through a symlink; and a fault injector for crash tests.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::live::{LiveKind, Stat, lstat};
use crate::scope::{STATE_DIR, TEMP_PREFIX};

/// Counts file-system steps and, in crash tests, fails at a chosen one.
#[derive(Debug, Default)]
pub struct Steps {
    done: AtomicU64,
    fail_at: Option<u64>,
}

impl Steps {
    /// Fail (as a crash would) when step number `fail_at` (1-based) is about to complete.
    pub fn failing_at(fail_at: Option<u64>) -> Self {
        Steps {
            done: AtomicU64::new(0),
            fail_at,
        }
    }

    /// Records one completed step; errors once the injected failure is reached, and for every
    /// step after it (other threads stop too).
    pub fn step(&self) -> Result<()> {
        let number = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        match self.fail_at {
            Some(limit) if number >= limit => Err(Error::Injected(limit)),
            _ => Ok(()),
        }
    }

    /// Steps recorded so far.
    pub fn count(&self) -> u64 {
        self.done.load(Ordering::SeqCst)
    }
}

fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{TEMP_PREFIX}{}-{n}-{nanos:08x}", std::process::id())
}

/// Writes `bytes` to `target` atomically: a temporary in the same directory, then a rename over
/// the target (which replaces a symlink or special file there instead of following it).
/// Returns the new file's `lstat`.
pub fn write_atomic(
    target: &Path,
    bytes: &[u8],
    executable: bool,
    fsync: bool,
    steps: &Steps,
) -> Result<Stat> {
    let parent = target
        .parent()
        .ok_or_else(|| Error::unsafe_live(target, "has no parent directory"))?;
    let temp = parent.join(temp_name());
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if executable { 0o755 } else { 0o644 })
        .open(&temp)
        .map_err(|source| Error::io("creating temporary file", &temp, source))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| if fsync { file.sync_all() } else { Ok(()) });
    if let Err(source) = written {
        drop(file);
        let _ = std::fs::remove_file(&temp);
        return Err(Error::io("writing temporary file", &temp, source));
    }
    drop(file);
    steps.step()?;
    if let Err(source) = std::fs::rename(&temp, target) {
        let _ = std::fs::remove_file(&temp);
        return Err(Error::io("renaming into place", target, source));
    }
    steps.step()?;
    let metadata = std::fs::symlink_metadata(target)
        .map_err(|source| Error::io("inspecting written file", target, source))?;
    Ok(Stat::of(&metadata))
}

/// Creates the directory `live/relative` and its missing parents. Every existing component
/// must be a real directory: the plan has already cleared managed non-directories, so anything
/// else here is refused.
pub fn create_dirs(live: &Path, relative: &str, steps: &Steps) -> Result<()> {
    create_dirs_once(live, relative, steps, &mut HashSet::new())
}

/// [`create_dirs`] for each of `relatives`, checking every directory on the way once (the
/// directories of a sync's writes share most of their ancestors).
pub fn create_all_dirs<'a>(
    live: &Path,
    relatives: impl IntoIterator<Item = &'a str>,
    steps: &Steps,
) -> Result<()> {
    let mut checked = HashSet::new();
    for relative in relatives {
        create_dirs_once(live, relative, steps, &mut checked)?;
    }
    Ok(())
}

/// [`create_dirs`], skipping the directories in `checked` and adding those it checks or makes.
fn create_dirs_once(
    live: &Path,
    relative: &str,
    steps: &Steps,
    checked: &mut HashSet<String>,
) -> Result<()> {
    let mut current = live.to_path_buf();
    let mut prefix = String::with_capacity(relative.len());
    for component in relative.split('/').filter(|c| !c.is_empty()) {
        current.push(component);
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(component);
        if checked.contains(&prefix) {
            continue;
        }
        create_dir_checked(&current, steps)?;
        checked.insert(prefix.clone());
    }
    Ok(())
}

/// Makes sure `current` is a real directory, creating it when missing.
fn create_dir_checked(current: &Path, steps: &Steps) -> Result<()> {
    match lstat(current)? {
        Some(metadata) if metadata.file_type().is_dir() => Ok(()),
        Some(_) => Err(Error::unsafe_live(
            current,
            "is not a directory where one is needed (changed during the sync?)",
        )),
        None => match std::fs::create_dir(current) {
            Ok(()) => steps.step(),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                // Another worker made it; check it is a directory on the next component.
                if std::fs::symlink_metadata(current).is_ok_and(|m| m.is_dir()) {
                    Ok(())
                } else {
                    Err(Error::unsafe_live(current, "is not a directory"))
                }
            }
            Err(source) => Err(Error::io("creating directory", current, source)),
        },
    }
}

/// Removes one live entry of the given kind (a file, symlink or special file; or an empty
/// directory). A missing entry is not an error.
pub fn remove(path: &Path, kind: LiveKind, steps: &Steps) -> Result<()> {
    let result = match kind {
        LiveKind::Dir => std::fs::remove_dir(path),
        _ => std::fs::remove_file(path),
    };
    match result {
        Ok(()) => steps.step(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::io("removing", path, source)),
    }
}

/// Removes the directories `live/<dir>` that are empty, deepest first (so a parent emptied by
/// its children's removal goes too). A directory that is not empty, is gone, or is no longer a
/// directory stays as it is.
pub fn remove_empty_dirs(
    live: &Path,
    dirs: &std::collections::BTreeSet<String>,
    steps: &Steps,
) -> Result<()> {
    let mut ordered: Vec<&String> = dirs.iter().collect();
    ordered.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    for dir in ordered {
        let full = live.join(dir);
        match std::fs::remove_dir(&full) {
            Ok(()) => steps.step()?,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::DirectoryNotEmpty
                        | std::io::ErrorKind::NotFound
                        | std::io::ErrorKind::NotADirectory
                ) => {}
            Err(source) => return Err(Error::io("removing empty directory", full, source)),
        }
    }
    Ok(())
}

/// Makes sure `live/.stoker` is a real directory (creating `live` too when needed).
pub fn ensure_state_dir(live: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(live)
        .map_err(|source| Error::io("creating live directory", live, source))?;
    let dir = live.join(STATE_DIR);
    match lstat(&dir)? {
        Some(metadata) if metadata.file_type().is_dir() => Ok(dir),
        Some(_) => Err(Error::unsafe_live(
            dir,
            "is not a directory; Stoker keeps its state there and will not replace it",
        )),
        None => {
            std::fs::create_dir(&dir).map_err(|source| Error::io("creating", &dir, source))?;
            Ok(dir)
        }
    }
}

/// Writes one of the engine's own state files atomically and durably (fsync of the file and of
/// its directory).
pub fn write_state_file(target: &Path, bytes: &[u8]) -> Result<()> {
    write_whole(target, bytes, true)
}

/// Writes a file for people to read (a diff report) atomically, without waiting for the disk:
/// no state depends on it, and a power cut right after loses at most that file.
pub fn write_record_file(target: &Path, bytes: &[u8]) -> Result<()> {
    write_whole(target, bytes, false)
}

fn write_whole(target: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let parent = target
        .parent()
        .ok_or_else(|| Error::unsafe_live(target, "has no parent directory"))?;
    let temp = parent.join(temp_name());
    let result = (|| -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&temp, target)?;
        if durable {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    })();
    if let Err(source) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(Error::io("writing", target, source));
    }
    Ok(())
}

/// Removes the engine's temporaries from one live directory (left by a crash).
/// Returns how many were removed.
pub fn remove_temporaries(dir: &Path) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => return Err(Error::io("listing", dir, source)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|source| Error::io("listing", dir, source))?;
        let is_temp = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(TEMP_PREFIX));
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_temp && is_file {
            std::fs::remove_file(entry.path())
                .map_err(|source| Error::io("removing temporary", entry.path(), source))?;
            removed += 1;
        }
    }
    Ok(removed)
}
