//! The cache: one bare repository per URL, a lock per repository, detection and repair of what a
//! crash or a disk problem can leave behind.
//!
//! Crash safety rests on how gix writes (checked in gix-pack 0.77 and gix-ref 0.69): a pack is
//! written to a temporary file and renamed to `pack-<hash>.pack`, then its index to
//! `pack-<hash>.idx` (the object database only loads packs through their index); refs and the
//! `shallow` file are written through `*.lock` files renamed into place. A process killed
//! mid-fetch therefore leaves temporary files, `.keep` files, stale `*.lock` files or a pack
//! without an index — never a half-written file under a final name. [`open_or_init`] removes
//! all of these (holding the lock, so no live writer is affected), checks that every pack ends
//! with the checksum its index records (a truncated pack fails this), and replaces a repository
//! it cannot open.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Where one URL's cache lives.
#[derive(Debug, Clone)]
pub(crate) struct CachePaths {
    /// The cache directory.
    pub dir: PathBuf,
    /// `<dir>/<key>.git`, the bare repository.
    pub repo: PathBuf,
    /// `<dir>/<key>.lock`, locked by the process fetching into the repository.
    pub lock: PathBuf,
    /// The stable hash of the URL.
    pub key: String,
}

impl CachePaths {
    /// The paths for `url` (credentials already removed, so a rotated token keeps the cache).
    pub fn new(dir: &Path, url: &str) -> CachePaths {
        let key = crate::ContentId::of_blob(url.as_bytes()).to_string()[..20].to_owned();
        CachePaths {
            dir: dir.to_path_buf(),
            repo: dir.join(format!("{key}.git")),
            lock: dir.join(format!("{key}.lock")),
            key,
        }
    }

    /// A repository used only to talk to remotes (`ls-refs`): never written after creation.
    pub fn scratch(&self) -> PathBuf {
        self.dir.join(".stoker-scratch.git")
    }

    /// Private files (ssh logs, key copies).
    pub fn private_dir(&self) -> PathBuf {
        self.dir.join(".stoker-private")
    }
}

/// An exclusive lock on one cache repository, released when dropped (or when the process
/// dies: it is an advisory file lock, never a stale lock file).
#[derive(Debug)]
pub(crate) struct CacheLock {
    _file: File,
}

/// Takes the lock, waiting for another process (or thread) that holds it.
pub(crate) fn lock(paths: &CachePaths) -> std::io::Result<CacheLock> {
    std::fs::create_dir_all(&paths.dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&paths.lock)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::info!(cache = %paths.repo.display(), "another fetch holds the cache; waiting for it");
            file.lock()?;
        }
        Err(std::fs::TryLockError::Error(error)) => return Err(error),
    }
    Ok(CacheLock { _file: file })
}

/// How the repository was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opened {
    /// It existed and passed the checks.
    Existing,
    /// It was created empty (first use, or after a corrupt one was removed).
    Created,
}

/// Opens the cache repository, creating it when missing and replacing it when it cannot be
/// opened or a pack is damaged. Call with the lock held.
pub(crate) fn open_or_init(
    paths: &CachePaths,
    options: &gix::open::Options,
) -> Result<(gix::ThreadSafeRepository, Opened), String> {
    remove_leftover_dirs(paths);
    if paths.repo.exists() {
        remove_stale_files(&paths.repo);
        match gix::ThreadSafeRepository::open_opts(&paths.repo, options.clone()) {
            Ok(repo) => match damaged_pack(&paths.repo) {
                None => return Ok((repo, Opened::Existing)),
                Some(problem) => {
                    tracing::warn!(cache = %paths.repo.display(), %problem, "the Git cache is damaged; removing it and fetching again");
                }
            },
            Err(error) => {
                tracing::warn!(cache = %paths.repo.display(), error = %error, "the Git cache cannot be opened; removing it and fetching again");
            }
        }
        wipe(paths)?;
    }
    let repo = init(&paths.repo, &paths.dir, &paths.key, options)?;
    Ok((repo, Opened::Created))
}

/// Opens (creating it atomically if needed) a repository that is only used to connect to
/// remotes. Several processes may race to create it: each builds its own and renames it into
/// place; the losers use the winner's.
pub(crate) fn open_scratch(
    paths: &CachePaths,
    options: &gix::open::Options,
) -> Result<gix::ThreadSafeRepository, String> {
    let path = paths.scratch();
    if let Ok(repo) = gix::ThreadSafeRepository::open_opts(&path, options.clone()) {
        return Ok(repo);
    }
    std::fs::create_dir_all(&paths.dir)
        .map_err(|error| format!("creating {}: {error}", paths.dir.display()))?;
    if path.exists() {
        // Unopenable: move it aside (another process may be using it; it only ever reads).
        let _ = std::fs::rename(&path, trash_name(&paths.dir, ".stoker-scratch"));
    }
    init(&path, &paths.dir, ".stoker-scratch", options)
}

/// Removes the cache repository: renamed aside first (atomic), then deleted, so that a crash
/// during the deletion never leaves a half-deleted repository under the real name.
pub(crate) fn wipe(paths: &CachePaths) -> Result<(), String> {
    if !paths.repo.exists() {
        return Ok(());
    }
    let trash = trash_name(&paths.dir, &paths.key);
    std::fs::rename(&paths.repo, &trash)
        .map_err(|error| format!("moving {} aside: {error}", paths.repo.display()))?;
    std::fs::remove_dir_all(&trash)
        .map_err(|error| format!("removing {}: {error}", trash.display()))
}

fn trash_name(dir: &Path, key: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    dir.join(format!("{key}.git.trash-{}-{nanos}", std::process::id()))
}

fn init(
    path: &Path,
    dir: &Path,
    key: &str,
    options: &gix::open::Options,
) -> Result<gix::ThreadSafeRepository, String> {
    std::fs::create_dir_all(dir).map_err(|error| format!("creating {}: {error}", dir.display()))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let temporary = dir.join(format!("{key}.git.tmp-{}-{nanos}", std::process::id()));
    gix::create::into(
        &temporary,
        gix::create::Kind::Bare,
        gix::create::Options::default(),
    )
    .map_err(|error| format!("creating a repository in {}: {error}", temporary.display()))?;
    if let Err(error) = std::fs::rename(&temporary, path) {
        let _ = std::fs::remove_dir_all(&temporary);
        // Someone else created it first (the scratch repository): use theirs.
        if !path.exists() {
            return Err(format!(
                "moving the new repository to {}: {error}",
                path.display()
            ));
        }
    }
    gix::ThreadSafeRepository::open_opts(path, options.clone())
        .map_err(|error| format!("opening {}: {error}", path.display()))
}

/// Removes temporary and trash directories that a crash left next to the repositories.
fn remove_leftover_dirs(paths: &CachePaths) {
    let Ok(entries) = std::fs::read_dir(&paths.dir) else {
        return;
    };
    let own = format!("{}.git.", paths.key);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(&own) && (name.contains(".git.tmp-") || name.contains(".git.trash-")) {
            tracing::debug!(path = %entry.path().display(), "removing a leftover of an interrupted run");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Removes what an interrupted fetch leaves in a repository: `*.lock` files, temporary pack
/// files, `.keep` files, and packs without their index (or indexes without their pack).
fn remove_stale_files(repo: &Path) {
    let remove = |path: &Path| {
        tracing::debug!(path = %path.display(), "removing a leftover of an interrupted fetch");
        let _ = std::fs::remove_file(path);
    };
    // Lock files: top level (`HEAD.lock`, `config.lock`, `packed-refs.lock`, `shallow.lock`)
    // and anywhere under refs/.
    let mut dirs = vec![repo.to_path_buf(), repo.join("refs")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if dir != repo && path.starts_with(repo.join("refs")) {
                    dirs.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "lock") {
                remove(&path);
            }
        }
    }
    let pack_dir = repo.join("objects").join("pack");
    let Ok(entries) = std::fs::read_dir(&pack_dir) else {
        return;
    };
    let mut packs = std::collections::BTreeSet::new();
    let mut indexes = std::collections::BTreeSet::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name
            .strip_suffix(".pack")
            .filter(|s| s.starts_with("pack-"))
        {
            packs.insert(stem.to_owned());
        } else if let Some(stem) = name.strip_suffix(".idx").filter(|s| s.starts_with("pack-")) {
            indexes.insert(stem.to_owned());
        } else if name.ends_with(".keep") || !name.starts_with("pack-") {
            // Temporary files (`.tmp*`, `tmp_pack_*`), `.keep` markers, a multi-pack-index
            // that might reference removed packs: none is needed.
            remove(&path);
        }
    }
    for orphan in packs.symmetric_difference(&indexes) {
        for extension in ["pack", "idx", "rev", "bitmap"] {
            let path = pack_dir.join(format!("{orphan}.{extension}"));
            if path.exists() {
                remove(&path);
            }
        }
    }
}

/// Beyond this many packs (one per incremental fetch), the cache is rebuilt by the next fetch
/// that needs the network: a shallow fetch of one commit is cheap, while every object lookup
/// scans the packs' indexes.
pub(crate) const MAX_PACKS: usize = 64;

/// How many packs the repository has.
pub(crate) fn pack_count(repo: &Path) -> usize {
    std::fs::read_dir(repo.join("objects").join("pack")).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
            .count()
    })
}

/// The first pack whose trailing checksum differs from the one its index records (a truncated
/// or overwritten pack), described.
pub(crate) fn damaged_pack(repo: &Path) -> Option<String> {
    let pack_dir = repo.join("objects").join("pack");
    let entries = std::fs::read_dir(&pack_dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "idx") {
            continue;
        }
        let pack = path.with_extension("pack");
        match pack_matches_index(&pack, &path) {
            Ok(true) => {}
            Ok(false) => return Some(format!("{} does not match its index", pack.display())),
            Err(error) => return Some(format!("{}: {error}", pack.display())),
        }
    }
    None
}

/// A pack ends with the SHA-1 of its content; its index records that checksum just before its
/// own trailing checksum.
fn pack_matches_index(pack: &Path, index: &Path) -> std::io::Result<bool> {
    const HASH: u64 = 20;
    let read_at_end = |path: &Path, from_end: u64| -> std::io::Result<Option<[u8; 20]>> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        if len < from_end + 12 {
            return Ok(None);
        }
        file.seek(SeekFrom::Start(len - from_end))?;
        let mut hash = [0u8; 20];
        file.read_exact(&mut hash)?;
        Ok(Some(hash))
    };
    let Some(in_pack) = read_at_end(pack, HASH)? else {
        return Ok(false);
    };
    let Some(in_index) = read_at_end(index, 2 * HASH)? else {
        return Ok(false);
    };
    Ok(in_pack == in_index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_paths_are_stable_and_credential_free() {
        let a = CachePaths::new(Path::new("/c"), "https://example.com/r.git");
        let b = CachePaths::new(Path::new("/c"), "https://example.com/r.git");
        assert_eq!(a.repo, b.repo);
        assert_eq!(a.key.len(), 20);
        assert!(a.repo.to_string_lossy().ends_with(".git"));
        assert_ne!(
            a.repo,
            CachePaths::new(Path::new("/c"), "https://example.com/other.git").repo
        );
    }

    #[test]
    fn stale_files_are_removed_and_complete_packs_kept() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();
        let pack_dir = repo.join("objects/pack");
        std::fs::create_dir_all(&pack_dir).unwrap();
        std::fs::create_dir_all(repo.join("refs/heads")).unwrap();
        for name in [
            "pack-a.pack",
            "pack-a.idx",
            "pack-b.pack",
            "pack-c.idx",
            "pack-a.keep",
            ".tmpXYZ",
        ] {
            std::fs::write(pack_dir.join(name), "x").unwrap();
        }
        std::fs::write(repo.join("refs/heads/main.lock"), "x").unwrap();
        std::fs::write(repo.join("packed-refs.lock"), "x").unwrap();
        std::fs::write(repo.join("HEAD"), "x").unwrap();
        remove_stale_files(repo);
        let mut left: Vec<String> = std::fs::read_dir(&pack_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["pack-a.idx", "pack-a.pack"]);
        assert!(!repo.join("refs/heads/main.lock").exists());
        assert!(!repo.join("packed-refs.lock").exists());
        assert!(repo.join("HEAD").exists());
    }

    #[test]
    fn packs_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(pack_count(dir.path()), 0);
        std::fs::create_dir_all(dir.path().join("objects/pack")).unwrap();
        for name in ["pack-a.pack", "pack-a.idx", "pack-b.pack"] {
            std::fs::write(dir.path().join("objects/pack").join(name), "").unwrap();
        }
        assert_eq!(pack_count(dir.path()), 2);
    }

    #[test]
    fn locks_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let paths = CachePaths::new(dir.path(), "u");
        let held = lock(&paths).unwrap();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&paths.lock)
            .unwrap();
        assert!(matches!(
            file.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        assert!(file.try_lock().is_ok());
    }
}
