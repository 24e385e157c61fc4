//! One sync at a time per live directory: an advisory lock on `live/.stoker/lock`.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsops;
use crate::live::lstat;
use crate::scope::STATE_DIR;

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
    pub fn acquire(live: &Path) -> Result<LiveLock> {
        let dir = fsops::ensure_state_dir(live)?;
        let path = dir.join(LOCK_FILE);
        // Opening with `create` follows a symlink (and creates its target, wherever it points):
        // anything but a regular file planted there is refused instead.
        if let Some(metadata) = lstat(&path)?
            && !metadata.file_type().is_file()
        {
            return Err(Error::unsafe_live(
                path,
                "is not a regular file; Stoker keeps its lock there and will not follow or replace it",
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
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

    /// Takes the lock only if the lock file exists (for a dry run, which must not create
    /// anything); `None` when it does not.
    pub fn acquire_existing(live: &Path) -> Result<Option<LiveLock>> {
        match lstat(&live.join(STATE_DIR).join(LOCK_FILE))? {
            None => Ok(None),
            Some(_) => LiveLock::acquire(live).map(Some),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
