//! One sync at a time per live directory: an advisory lock on `live/.stoker/lock`.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::fsops;

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
        let path = dir.join("lock");
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

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
