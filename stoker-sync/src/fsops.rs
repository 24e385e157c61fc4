//! File-system steps with the engine's safety rules: temporaries in the target's directory,
//! rename into place, never through a symlink; and a fault injector for crash tests.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use stoker_core::ContentId;
use stoker_core::content_id::BlobHasher;

use crate::error::{Error, Result};
use crate::live::{LiveKind, Stat, lstat};
use crate::scope::{STATE_DIR, TEMP_PREFIX};

/// Counts file-system steps and, in crash tests, fails at a chosen one.
#[derive(Debug, Default)]
pub struct Steps {
    done: AtomicU64,
    fail_at: Option<u64>,
    /// Disk-full tests: how many more bytes of file content may be written.
    budget: Option<AtomicU64>,
}

impl Steps {
    /// Fail (as a crash would) when step number `fail_at` (1-based) is about to complete.
    pub fn failing_at(fail_at: Option<u64>) -> Self {
        Steps {
            done: AtomicU64::new(0),
            fail_at,
            budget: None,
        }
    }

    /// Disk-full tests: once `bytes` bytes of file content have been written, writing more
    /// fails with `ENOSPC`, as a full file system would (feature `fault-injection`).
    #[cfg(any(test, feature = "testing", feature = "fault-injection"))]
    pub fn with_byte_budget(mut self, bytes: Option<u64>) -> Self {
        self.budget = bytes.map(AtomicU64::new);
        self
    }

    /// Takes `bytes` from the budget, or fails as a full disk does.
    fn charge(&self, bytes: u64) -> std::io::Result<()> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(bytes)
            })
            .map(|_| ())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::StorageFull))
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
    #[cfg(any(test, feature = "testing"))]
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

/// What a write put in the file: its content id (Git blob id) and length, computed while
/// copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// The Git blob id of the bytes written.
    pub id: ContentId,
    /// How many bytes were written (holes included).
    pub len: u64,
}

/// Writes what `content` yields (`expected_len` bytes, which the hash needs up front) to
/// `target` atomically: a temporary in the same directory, then a rename over the target (which
/// replaces a symlink or special file there instead of following it). The content is copied in
/// chunks of at most [`CHUNK`] bytes, hashed on the way, and chunks of zeros are left as holes
/// (see [`copy_sparse`]): memory stays the same whatever the file's size. Returns the new
/// file's `lstat` and what was written.
pub fn write_atomic(
    target: &Path,
    content: &mut dyn Read,
    expected_len: u64,
    executable: bool,
    fsync: bool,
    steps: &Steps,
) -> Result<(Stat, Copied)> {
    let (temp, copied) = write_temporary(target, content, expected_len, executable, fsync, steps)?;
    rename_into_place(&temp, target, steps)?;
    Ok((stat_written(target)?, copied))
}

/// A file written by [`write_atomic_swapping`].
#[derive(Debug)]
pub struct Swapped {
    /// The new file's `lstat`.
    pub stat: Stat,
    /// What was written.
    pub copied: Copied,
    /// What was at the target, now under a temporary name in the same directory: remove it
    /// with [`remove_replaced`] before the sync's journal is finished (until then, a crash
    /// leaves it to the next sync's recovery, as any temporary).
    pub replaced: Option<PathBuf>,
}

/// [`write_atomic`], for a target that holds a file: the new file takes its place with
/// `renameat2(RENAME_EXCHANGE)`, and the old one is left under the temporary's name for
/// [`remove_replaced`]. A rename over a file frees the old one, and on a file system that
/// discards freed blocks (ext4 mounted with `discard`) that waits for the disk; swapping does
/// not, so the new files are all in place sooner and the old ones are removed later, several at
/// once, while other work goes on.
///
/// Nothing at the target (anymore), a file system or kernel without the exchange, or another
/// system: a plain rename, as [`write_atomic`]. A directory at the target (put there since the
/// plan) is swapped back, and the write fails as a rename over it would.
pub fn write_atomic_swapping(
    target: &Path,
    content: &mut dyn Read,
    expected_len: u64,
    executable: bool,
    fsync: bool,
    steps: &Steps,
) -> Result<Swapped> {
    let (temp, copied) = write_temporary(target, content, expected_len, executable, fsync, steps)?;
    let replaced = match exchange(&temp, target) {
        Ok(()) => {
            steps.step()?;
            let swapped_out = std::fs::symlink_metadata(&temp)
                .map_err(|source| Error::io("inspecting the replaced file", &temp, source))?;
            if swapped_out.is_dir() {
                let back = exchange(&temp, target);
                let _ = std::fs::remove_file(&temp);
                back.map_err(|source| Error::io("putting a directory back", target, source))?;
                return Err(Error::io(
                    "renaming into place",
                    target,
                    std::io::Error::from(std::io::ErrorKind::IsADirectory),
                ));
            }
            Some(temp)
        }
        Err(error) if exchange_unavailable(&error) => {
            rename_into_place(&temp, target, steps)?;
            None
        }
        Err(source) => {
            let _ = std::fs::remove_file(&temp);
            return Err(Error::io("swapping into place", target, source));
        }
    };
    Ok(Swapped {
        stat: stat_written(target)?,
        copied,
        replaced,
    })
}

/// Removes what [`write_atomic_swapping`] swapped out (a file, a symlink or a special file).
/// Already gone is not an error.
pub fn remove_replaced(replaced: &Path, steps: &Steps) -> Result<()> {
    match std::fs::remove_file(replaced) {
        Ok(()) => steps.step(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::io("removing the replaced file", replaced, source)),
    }
}

/// Swaps two directory entries atomically (both must exist).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// True when an exchange failed because it cannot be done here (nothing at the target, or a
/// kernel or file system without it), so a plain rename is the way.
fn exchange_unavailable(error: &std::io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        use rustix::io::Errno;
        let errno = Errno::from_io_error(error);
        if errno.is_some_and(|errno| {
            [Errno::NOENT, Errno::INVAL, Errno::NOSYS, Errno::OPNOTSUPP].contains(&errno)
        }) {
            return true;
        }
    }
    error.kind() == std::io::ErrorKind::Unsupported
}

/// Writes what `content` yields to a new temporary next to `target`; its path and what was
/// written.
fn write_temporary(
    target: &Path,
    content: &mut dyn Read,
    expected_len: u64,
    executable: bool,
    fsync: bool,
    steps: &Steps,
) -> Result<(PathBuf, Copied)> {
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
    let written = copy_sparse(content, &mut file, expected_len, steps)
        .map_err(|error| match error {
            CopyError::Read(source) => Error::io("reading the content of", target, source),
            CopyError::Write(source) => Error::io("writing temporary file", &temp, source),
        })
        .and_then(|copied| {
            if copied.len == expected_len {
                return Ok(copied);
            }
            // The source yielded another length than it announced (a local file that changed
            // while being read): the id hashed on the way is not the blob id. Hash what was
            // written.
            let id = crate::content::hash_file(&temp)
                .map_err(|source| Error::io("reading temporary file", &temp, source))?;
            Ok(Copied { id, ..copied })
        })
        .and_then(|copied| {
            if fsync {
                file.sync_all()
                    .map_err(|source| Error::io("writing temporary file", &temp, source))?;
            }
            Ok(copied)
        });
    drop(file);
    match written {
        Ok(copied) => {
            steps.step()?;
            Ok((temp, copied))
        }
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            Err(error)
        }
    }
}

/// Largest chunk [`copy_sparse`] reads, hashes and writes at a time (and the granularity of the
/// holes it leaves).
pub const CHUNK: usize = 128 << 10;

/// Why [`copy_sparse`] failed: reading the content, or writing the file.
#[derive(Debug)]
pub enum CopyError {
    /// Reading the content failed.
    Read(std::io::Error),
    /// Writing the file failed.
    Write(std::io::Error),
}

/// Copies `content` into `file` (new and empty) in chunks of at most [`CHUNK`] bytes, hashing
/// it as a Git blob of `expected_len` bytes on the way, and returns the id and the length
/// copied (the id is the blob id only when the length is `expected_len`).
///
/// **Holes.** A chunk that is all zeros is not written: the file offset moves past it and the
/// file's length is set at the end, so the file system leaves a hole there. Chunks start at
/// multiples of the chunk size, so a sparse source (a local file with holes, a Git blob of
/// zeros) stays sparse at that granularity; runs of zeros shorter than a chunk, or not aligned
/// on one, are written. This works the same for every source (a Git blob has no holes to ask
/// about; `SEEK_DATA`/`SEEK_HOLE` would only serve a local source), at the price of comparing
/// each chunk with zeros, and it also leaves holes where a source file had written zeros (the
/// bytes read back are the same).
///
/// Memory: one buffer of at most [`CHUNK`] bytes (smaller for a small file), whatever the size
/// of the content.
pub fn copy_sparse(
    content: &mut dyn Read,
    file: &mut File,
    expected_len: u64,
    steps: &Steps,
) -> std::result::Result<Copied, CopyError> {
    let size = usize::try_from(expected_len.saturating_add(1))
        .unwrap_or(CHUNK)
        .clamp(512, CHUNK);
    let mut buffer = vec![0u8; size];
    let mut hasher = BlobHasher::new(expected_len);
    let mut len = 0u64;
    let mut holes = false;
    loop {
        let filled = fill(content, &mut buffer).map_err(CopyError::Read)?;
        if filled == 0 {
            break;
        }
        let chunk = &buffer[..filled];
        hasher.update(chunk);
        if chunk.iter().all(|byte| *byte == 0) {
            file.seek(SeekFrom::Current(filled as i64))
                .map_err(CopyError::Write)?;
            holes = true;
        } else {
            steps.charge(filled as u64).map_err(CopyError::Write)?;
            file.write_all(chunk).map_err(CopyError::Write)?;
        }
        len += filled as u64;
        if filled < buffer.len() {
            break;
        }
    }
    if holes {
        // A hole at the end: the length makes it part of the file.
        file.set_len(len).map_err(CopyError::Write)?;
    }
    Ok(Copied {
        id: hasher.finish(),
        len,
    })
}

/// Reads until `buffer` is full or the content ends; how many bytes were read.
fn fill(content: &mut dyn Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match content.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

fn rename_into_place(temp: &Path, target: &Path, steps: &Steps) -> Result<()> {
    if let Err(source) = std::fs::rename(temp, target) {
        let _ = std::fs::remove_file(temp);
        return Err(Error::io("renaming into place", target, source));
    }
    steps.step()
}

fn stat_written(target: &Path) -> Result<Stat> {
    let metadata = std::fs::symlink_metadata(target)
        .map_err(|source| Error::io("inspecting written file", target, source))?;
    Ok(Stat::of(&metadata))
}

/// Creates the directory `live/relative` and its missing parents. Every existing component
/// must be a real directory: the plan has already cleared managed non-directories, so anything
/// else here is refused.
#[cfg(any(test, feature = "testing"))]
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

/// The state directory `live/.stoker` if it exists; `None` when it does not. Anything there
/// but a real directory (a symlink, wherever it points; a file) is refused, never followed.
pub fn state_dir(live: &Path) -> Result<Option<PathBuf>> {
    let dir = live.join(STATE_DIR);
    match lstat(&dir)? {
        None => Ok(None),
        Some(metadata) if metadata.file_type().is_dir() => Ok(Some(dir)),
        Some(metadata) => Err(not_a_state_dir(
            dir,
            &metadata,
            "Stoker keeps its state there",
        )),
    }
}

/// Makes sure `live/.stoker` is a real directory (creating `live` too when needed); see
/// [`state_dir`].
pub fn ensure_state_dir(live: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(live)
        .map_err(|source| Error::io("creating live directory", live, source))?;
    match state_dir(live)? {
        Some(dir) => Ok(dir),
        None => {
            let dir = live.join(STATE_DIR);
            std::fs::create_dir(&dir).map_err(|source| Error::io("creating", &dir, source))?;
            Ok(dir)
        }
    }
}

/// The error refusing `path`, one of the engine's directories, found to be something else
/// (`metadata`, not followed); `what` says what the directory is for.
pub(crate) fn not_a_state_dir(path: PathBuf, metadata: &std::fs::Metadata, what: &str) -> Error {
    let found = if metadata.file_type().is_symlink() {
        "is a symbolic link"
    } else {
        "is not a directory"
    };
    Error::unsafe_live(
        path,
        format!(
            "{found}; {what} and will not follow, replace or remove it (move it away and run the sync again)"
        ),
    )
}

/// Opens `file`, one of the engine's own files in its state directory, without following a
/// symlink: neither `file` nor its directory may be one (`O_NOFOLLOW`, and the directory is
/// opened `O_DIRECTORY | O_NOFOLLOW` first). `flags` says how (read, append…).
fn open_no_follow(file: &Path, flags: OFlags, mode: Mode) -> std::io::Result<File> {
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    };
    let refused = |message: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, message);
    let dir_fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| match errno {
        Errno::LOOP => refused("its directory is a symbolic link, which Stoker does not follow"),
        Errno::NOTDIR => refused("its directory is not a directory"),
        errno => errno.into(),
    })?;
    let fd = rustix::fs::openat(
        &dir_fd,
        name,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        mode,
    )
    .map_err(|errno| match errno {
        Errno::LOOP => refused("is a symbolic link, which Stoker does not follow"),
        errno => errno.into(),
    })?;
    Ok(File::from(fd))
}

/// `file` if it is a regular file; the error saying it is not, otherwise.
fn regular(file: File) -> std::io::Result<File> {
    if file.metadata()?.file_type().is_file() {
        Ok(file)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is not a regular file (Stoker did not write it)",
        ))
    }
}

/// Opens one of the engine's own files in its state directory for reading; `None` when it does
/// not exist. A symlink (at the file or its directory) is never followed, and anything but a
/// regular file is an error (opened without blocking, so a FIFO planted there cannot hang the
/// sync). An error of kind [`std::io::ErrorKind::InvalidInput`] means "not what Stoker wrote".
pub fn open_state_file(file: &Path) -> std::io::Result<Option<File>> {
    match open_no_follow(file, OFlags::RDONLY | OFlags::NONBLOCK, Mode::empty()) {
        Ok(opened) => regular(opened).map(Some),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Opens one of the engine's own files in its state directory for appending (it must exist
/// and be a regular file; never through a symlink).
pub fn open_state_file_append(file: &Path) -> std::io::Result<File> {
    open_no_follow(
        file,
        OFlags::WRONLY | OFlags::APPEND | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .and_then(regular)
}

/// Opens (creating it when missing) one of the engine's own files in its state directory for
/// reading and writing, never through a symlink (the lock file).
pub fn open_state_file_creating(file: &Path) -> std::io::Result<File> {
    open_no_follow(
        file,
        OFlags::RDWR | OFlags::CREATE | OFlags::NONBLOCK,
        Mode::from_raw_mode(0o666),
    )
    .and_then(regular)
}

/// Writes one of the engine's own state files atomically and durably (fsync of the file and of
/// its directory).
pub fn write_state_file(target: &Path, bytes: &[u8]) -> Result<()> {
    write_whole(target, true, |file| file.write_all(bytes))
}

/// Writes a file for people to read (a diff report) atomically, without waiting for the disk:
/// no state depends on it, and a power cut right after loses at most that file. `write` writes
/// the content into the new file.
pub fn write_record_file(
    target: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    write_whole(target, false, write)
}

/// Writes `target` as a new file beside it, renamed into place once `write` succeeded (removed
/// when anything failed).
fn write_whole(
    target: &Path,
    durable: bool,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<()> {
    let parent = target
        .parent()
        .ok_or_else(|| Error::unsafe_live(target, "has no parent directory"))?;
    let temp = parent.join(temp_name());
    let result = (|| -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        write(&mut file)?;
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

/// Removes the engine's temporaries from one live directory (left by a crash): new files not
/// yet renamed into place, and entries [`write_atomic_swapping`] swapped out and did not remove
/// yet. Returns how many were removed.
///
/// `dir` itself must be a real directory: a symlink there is never followed (an error), and
/// nothing there is nothing to remove.
pub fn remove_temporaries(dir: &Path) -> Result<usize> {
    match lstat(dir)? {
        None => return Ok(0),
        Some(metadata) if metadata.file_type().is_dir() => {}
        Some(_) => {
            return Err(Error::unsafe_live(
                dir,
                "is not a directory (a symbolic link?); temporaries are not looked for through it",
            ));
        }
    }
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
        // A file, or a symlink or special file an exchange swapped out; never a directory.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_temp && !is_dir {
            std::fs::remove_file(entry.path())
                .map_err(|source| Error::io("removing temporary", entry.path(), source))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn temporaries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(TEMP_PREFIX))
            .collect();
        names.sort();
        names
    }

    /// Swaps `new` in at `target` (neither executable nor synced).
    fn swap_in_new(target: &Path, steps: &Steps) -> Swapped {
        write_atomic_swapping(target, &mut &b"new"[..], 3, false, false, steps).unwrap()
    }

    /// A symlink at `link` to a file `outside.json` in `dir` holding `not ours` (a file Stoker
    /// must never touch through the link); that file's path.
    fn link_to_outside(dir: &Path, link: &Path) -> PathBuf {
        let outside = dir.join("outside.json");
        std::fs::write(&outside, "not ours").unwrap();
        std::os::unix::fs::symlink(&outside, link).unwrap();
        outside
    }

    #[test]
    fn a_swapped_file_is_in_place_and_the_old_one_waits_for_its_removal() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("view.json");
        std::fs::write(&target, "old").unwrap();
        let steps = Steps::default();
        let swapped = swap_in_new(&target, &steps);
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(
            swapped.stat,
            Stat::of(&std::fs::symlink_metadata(&target).unwrap())
        );
        let replaced = swapped.replaced.unwrap();
        assert_eq!(replaced.parent(), Some(dir.path()));
        assert_eq!(std::fs::read(&replaced).unwrap(), b"old");
        remove_replaced(&replaced, &steps).unwrap();
        assert!(temporaries(dir.path()).is_empty());
        // Already gone: not an error.
        remove_replaced(&replaced, &steps).unwrap();
    }

    #[test]
    fn with_nothing_at_the_target_a_swap_is_a_rename() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("new.json");
        let swapped =
            write_atomic_swapping(&target, &mut &b"new"[..], 3, true, false, &Steps::default())
                .unwrap();
        assert!(swapped.replaced.is_none());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert!(swapped.stat.executable());
        assert!(temporaries(dir.path()).is_empty());
    }

    #[test]
    fn a_directory_at_the_target_is_put_back_and_the_write_fails() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("view.json");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("kept"), "user data").unwrap();
        let error = write_atomic_swapping(
            &target,
            &mut &b"new"[..],
            3,
            false,
            false,
            &Steps::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("view.json"), "{error}");
        assert_eq!(std::fs::read(target.join("kept")).unwrap(), b"user data");
        assert!(temporaries(dir.path()).is_empty());
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_and_removed_without_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("view.json");
        let outside = link_to_outside(dir.path(), &target);
        let steps = Steps::default();
        let swapped = swap_in_new(&target, &steps);
        assert!(std::fs::symlink_metadata(&target).unwrap().is_file());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        remove_replaced(&swapped.replaced.unwrap(), &steps).unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"not ours");
        assert!(temporaries(dir.path()).is_empty());
    }

    /// What a crash between the swap and the removal leaves is a temporary like any other;
    /// a directory with the prefix is never removed.
    #[test]
    fn recovery_removes_swapped_out_entries_but_never_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link.json");
        let outside = link_to_outside(dir.path(), &link);
        let file = dir.path().join("file.json");
        std::fs::write(&file, "old").unwrap();
        let steps = Steps::default();
        swap_in_new(&link, &steps);
        swap_in_new(&file, &steps);
        let odd_dir = dir.path().join(format!("{TEMP_PREFIX}a-directory"));
        std::fs::create_dir(&odd_dir).unwrap();
        assert_eq!(remove_temporaries(dir.path()).unwrap(), 2);
        assert_eq!(
            temporaries(dir.path()),
            [format!("{TEMP_PREFIX}a-directory")]
        );
        assert_eq!(std::fs::read(&outside).unwrap(), b"not ours");
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
    }
}
