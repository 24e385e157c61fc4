//! One sync at a time per live directory: an advisory lock on `live/.stoker/lock`.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::live::lstat;
use crate::{diff_report, fsops, manifest};

/// The lock file's name in `live/.stoker/`.
pub const LOCK_FILE: &str = "lock";

/// Holds the lock until dropped. The lock is released by the kernel if the process dies, so a
/// crash never leaves a stale lock behind.
#[derive(Debug)]
pub struct LiveLock {
    _file: File,
    path: PathBuf,
}

impl LiveLock {
    /// Takes the lock, creating `live/.stoker/` when needed; fails at once with
    /// [`Error::Locked`] when another sync holds it.
    ///
    /// Also checks what the engine's state directory holds before anything is written: a
    /// `.stoker` or `.stoker/reports` that is a symlink or not a directory, a directory where
    /// the manifest goes ([`manifest::check_paths`]), or a lock file that is not a regular file,
    /// is refused with [`Error::UnsafeLive`] naming it (never followed).
    pub fn acquire(live: &Path) -> Result<LiveLock> {
        let dir = fsops::ensure_state_dir(live)?;
        LiveLock::lock(live, &dir)
    }

    /// Takes the lock only if the lock file exists (for a dry run, which must not create
    /// anything); `None` when it does not. The state directory is checked as by
    /// [`LiveLock::acquire`] when it exists.
    pub fn acquire_existing(live: &Path) -> Result<Option<LiveLock>> {
        let Some(dir) = fsops::state_dir(live)? else {
            return Ok(None);
        };
        match lstat(&dir.join(LOCK_FILE))? {
            None => check_state(live).map(|()| None),
            Some(_) => LiveLock::lock(live, &dir).map(Some),
        }
    }

    /// Takes the lock in the state directory `dir` (a real directory).
    fn lock(live: &Path, dir: &Path) -> Result<LiveLock> {
        check_state(live)?;
        let path = dir.join(LOCK_FILE);
        // Opening with `create` would follow a symlink (and create its target, wherever it
        // points): anything but a regular file planted there is refused instead.
        if let Some(metadata) = lstat(&path)?
            && !metadata.file_type().is_file()
        {
            return Err(Error::unsafe_live(
                path,
                "is not a regular file; Stoker keeps its lock there and will not follow or replace it",
            ));
        }
        let file = fsops::open_state_file_creating(&path)
            .map_err(|source| Error::io("opening lock", &path, source))?;
        match file.try_lock() {
            Ok(()) => Ok(LiveLock { _file: file, path }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked {
                live: live.to_path_buf(),
                lock: path,
            }),
            Err(TryLockError::Error(source)) => Err(Error::io("locking", path, source)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The checks of the state directory's entries besides the lock (see [`LiveLock::acquire`]).
fn check_state(live: &Path) -> Result<()> {
    diff_report::dir(live)?;
    manifest::check_paths(live)
}
