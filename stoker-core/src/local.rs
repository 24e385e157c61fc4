//! A directory on the local file system as a [`Source`] (feature `local`).
//!
//! Useful for tests, for `stoker-agent sync --source DIR`, and for single hosts that get their
//! files by other means. Content ids are not free here: the engine hashes what it reads.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::{Artifact, ContentId, Entry, EntryKind, Listing, Revision, Source};

/// A directory as a source. `resolve` ignores the reference's value and fingerprints the tree
/// (paths, sizes, modification and change times), so a changed directory gets a new revision
/// id; `fetch` reuses the listing `resolve` made.
///
/// A directory has no free content ids, so the engine hashes what it reads. With
/// [`LocalSource::with_id_cache`] the ids it computed are remembered in a file, keyed by each
/// file's `lstat`, and listed for free next time: an incremental sync then reads only the files
/// that changed.
///
/// ```
/// # tokio_test();
/// # fn tokio_test() {
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// use stoker_core::{LocalSource, Source};
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("a.txt"), "hello").unwrap();
/// let source = LocalSource::new(dir.path());
/// let revision = source.resolve("HEAD").await.unwrap();
/// let artifact = source.fetch(&revision).await.unwrap();
/// assert_eq!(artifact.read("a.txt").unwrap(), b"hello");
/// # });
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct LocalSource {
    root: PathBuf,
    id_cache: Option<PathBuf>,
    id_cache_min_age: std::time::Duration,
    /// The scan `resolve` made, handed to the next `fetch` of the same revision.
    resolved: Arc<Mutex<Option<ResolvedScan>>>,
}

/// A revision id and the scan it was computed from.
type ResolvedScan = (String, Arc<Scan>);

/// The `lstat` fields that key a remembered content id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct FileStat {
    size: u64,
    mtime: i64,
    ctime: i64,
    ino: u64,
}

impl FileStat {
    fn of(metadata: &std::fs::Metadata) -> Self {
        let nanos =
            |seconds: i64, nanos: i64| seconds.saturating_mul(1_000_000_000).saturating_add(nanos);
        FileStat {
            size: metadata.size(),
            mtime: nanos(metadata.mtime(), metadata.mtime_nsec()),
            ctime: nanos(metadata.ctime(), metadata.ctime_nsec()),
            ino: metadata.ino(),
        }
    }
}

/// One walk of the directory.
#[derive(Debug)]
struct Scan {
    listing: Listing,
    stats: HashMap<String, FileStat>,
}

impl LocalSource {
    /// A source reading the directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalSource {
            root: root.into(),
            id_cache: None,
            id_cache_min_age: std::time::Duration::from_secs(1),
            resolved: Arc::new(Mutex::new(None)),
        }
    }

    /// Remembers computed content ids in `file` (created when missing; a corrupt or foreign
    /// file is ignored and rewritten). An id is trusted only while the file's size, mtime,
    /// ctime and inode are unchanged, and only recorded for files whose last change is more
    /// than a second old, so a write in the same timestamp tick cannot hide behind it.
    pub fn with_id_cache(mut self, file: impl Into<PathBuf>) -> Self {
        self.id_cache = Some(file.into());
        self
    }

    /// How long after its last change a file's id may be remembered (default one second, above
    /// any file system's timestamp granularity).
    pub fn with_id_cache_min_age(mut self, age: std::time::Duration) -> Self {
        self.id_cache_min_age = age;
        self
    }

    /// The directory read.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens the directory as an artifact with the given revision, without a `resolve`.
    pub fn artifact(&self, revision: Revision) -> LocalArtifact {
        LocalArtifact {
            root: self.root.clone(),
            revision,
            scan: OnceLock::new(),
            ids: self
                .id_cache
                .as_ref()
                .map(|file| IdCache::load(file, &self.root, self.id_cache_min_age)),
        }
    }
}

#[async_trait]
impl Source for LocalSource {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn resolve(&self, reference: &str) -> Result<Revision> {
        let scan = Arc::new(scan_directory(&self.root)?);
        let mut fingerprint = String::new();
        for entry in &scan.listing.entries {
            let stat = scan.stats.get(&entry.path);
            fingerprint.push_str(&format!(
                "{}\0{:?}\0{}\0{:?}\n",
                entry.path,
                entry.kind,
                entry.size,
                stat.map(|s| (s.mtime, s.ctime, s.ino))
            ));
        }
        let id = ContentId::of_blob(fingerprint.as_bytes()).to_string();
        if let Ok(mut resolved) = self.resolved.lock() {
            *resolved = Some((id.clone(), scan));
        }
        let mut revision = Revision::new(id);
        if !reference.is_empty() {
            revision = revision.with_reference(reference);
        }
        Ok(revision)
    }

    async fn fetch(&self, revision: &Revision) -> Result<Arc<dyn Artifact>> {
        let metadata = std::fs::metadata(&self.root)
            .map_err(|source| Error::io("opening source directory", &self.root, source))?;
        if !metadata.is_dir() {
            return Err(Error::io(
                "opening source directory",
                &self.root,
                std::io::Error::other("not a directory"),
            ));
        }
        let artifact = self.artifact(revision.clone());
        let reused = self
            .resolved
            .lock()
            .ok()
            .and_then(|mut resolved| resolved.take())
            .filter(|(id, _)| *id == revision.id);
        if let Some((_, scan)) = reused {
            let _ = artifact.scan.set(scan);
        }
        Ok(Arc::new(artifact))
    }
}

/// The tree of a [`LocalSource`]. The directory is walked once, on first use.
#[derive(Debug)]
pub struct LocalArtifact {
    root: PathBuf,
    revision: Revision,
    scan: OnceLock<Arc<Scan>>,
    ids: Option<IdCache>,
}

impl Artifact for LocalArtifact {
    fn revision(&self) -> &Revision {
        &self.revision
    }

    fn list(&self) -> Result<Listing> {
        let scan = self.scan()?;
        let mut listing = scan.listing.clone();
        if let Some(ids) = &self.ids {
            for entry in &mut listing.entries {
                if let Some(stat) = scan.stats.get(&entry.path) {
                    entry.content_id = ids.get(&entry.path, stat);
                }
            }
        }
        Ok(listing)
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        let full = self.checked_path(path)?;
        std::fs::read(&full).map_err(|source| Error::io("reading", full, source))
    }

    fn open(&self, path: &str) -> Result<Box<dyn std::io::Read + Send + '_>> {
        let full = self.checked_path(path)?;
        let file =
            std::fs::File::open(&full).map_err(|source| Error::io("opening", full, source))?;
        Ok(Box::new(file))
    }

    fn local_path(&self, path: &str) -> Option<PathBuf> {
        self.checked_path(path).ok()
    }

    fn record_content_id(&self, path: &str, id: ContentId) {
        if let (Some(ids), Ok(scan)) = (&self.ids, self.scan())
            && let Some(stat) = scan.stats.get(path)
        {
            ids.record(path, *stat, id);
        }
    }
}

impl Drop for LocalArtifact {
    fn drop(&mut self) {
        if let (Some(ids), Some(scan)) = (&self.ids, self.scan.get()) {
            // A cache that cannot be written only costs speed next time.
            let _ = ids.store(&scan.stats);
        }
    }
}

impl LocalArtifact {
    fn scan(&self) -> Result<&Arc<Scan>> {
        if let Some(scan) = self.scan.get() {
            return Ok(scan);
        }
        let scan = Arc::new(scan_directory(&self.root)?);
        Ok(self.scan.get_or_init(|| scan))
    }

    /// The full path of a listed regular file. Only paths the listing reached without following
    /// a symlink are readable, so `link-to-elsewhere/file` is refused; the final component is
    /// checked again in case it was replaced by a symlink after listing.
    fn checked_path(&self, path: &str) -> Result<PathBuf> {
        let normalized = crate::relpath::normalize(path, "local artifact path")?;
        let full = self.root.join(&normalized);
        if !self
            .scan()?
            .listing
            .get(&normalized)
            .is_some_and(|entry| entry.kind.is_regular())
        {
            return Err(Error::NotFound {
                path: normalized,
                revision: self.revision.id.clone(),
            });
        }
        let metadata = std::fs::symlink_metadata(&full)
            .map_err(|source| Error::io("reading", &full, source))?;
        if !metadata.file_type().is_file() {
            return Err(Error::io(
                "reading",
                full,
                std::io::Error::other("not a regular file (symlinks are never followed)"),
            ));
        }
        Ok(full)
    }
}

/// Path → the `lstat` an id was computed at, and the id.
type RememberedIds = HashMap<String, (FileStat, ContentId)>;

/// Content ids remembered between runs, keyed by path and `lstat`.
#[derive(Debug)]
struct IdCache {
    file: PathBuf,
    root: String,
    known: RememberedIds,
    recorded: Mutex<RememberedIds>,
    dirty: AtomicBool,
    min_age_nanos: i64,
}

#[derive(Serialize, Deserialize)]
struct IdCacheFile {
    version: u32,
    root: String,
    entries: RememberedIds,
}

const ID_CACHE_VERSION: u32 = 1;

impl IdCache {
    fn load(file: &Path, root: &Path, min_age: std::time::Duration) -> IdCache {
        let root = root.to_string_lossy().into_owned();
        let known = std::fs::read(file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<IdCacheFile>(&bytes).ok())
            .filter(|cache| cache.version == ID_CACHE_VERSION && cache.root == root)
            .map(|cache| cache.entries)
            .unwrap_or_default();
        IdCache {
            file: file.to_path_buf(),
            root,
            known,
            recorded: Mutex::new(HashMap::new()),
            dirty: AtomicBool::new(false),
            min_age_nanos: i64::try_from(min_age.as_nanos()).unwrap_or(i64::MAX),
        }
    }

    fn get(&self, path: &str, stat: &FileStat) -> Option<ContentId> {
        self.known
            .get(path)
            .filter(|(known, _)| known == stat)
            .map(|(_, id)| *id)
    }

    fn record(&self, path: &str, stat: FileStat, id: ContentId) {
        if self.get(path, &stat) == Some(id) {
            return;
        }
        // A file changed less than a second ago may change again within the same timestamp
        // tick without its stat changing: do not vouch for it.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        if now.saturating_sub(stat.ctime) < self.min_age_nanos
            || now.saturating_sub(stat.mtime) < self.min_age_nanos
        {
            return;
        }
        if let Ok(mut recorded) = self.recorded.lock() {
            recorded.insert(path.to_owned(), (stat, id));
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Writes known-and-still-valid plus newly recorded ids, atomically.
    fn store(&self, current: &HashMap<String, FileStat>) -> std::io::Result<()> {
        let stale = self
            .known
            .iter()
            .any(|(path, (stat, _))| current.get(path) != Some(stat));
        if !self.dirty.load(Ordering::Relaxed) && !stale {
            return Ok(());
        }
        let mut entries: RememberedIds = self
            .known
            .iter()
            .filter(|(path, (stat, _))| current.get(*path) == Some(stat))
            .map(|(path, value)| (path.clone(), *value))
            .collect();
        if let Ok(recorded) = self.recorded.lock() {
            entries.extend(recorded.iter().map(|(path, value)| (path.clone(), *value)));
        }
        let bytes = serde_json::to_vec(&IdCacheFile {
            version: ID_CACHE_VERSION,
            root: self.root.clone(),
            entries,
        })
        .map_err(std::io::Error::other)?;
        let dir = self.file.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let temp = dir.join(format!(
            ".{}.tmp-{}",
            self.file
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            std::process::id()
        ));
        std::fs::write(&temp, bytes)?;
        std::fs::rename(&temp, &self.file)
    }
}

/// Walks a directory without following symlinks. Names that are not UTF-8 are skipped with a
/// warning (Stoker's paths are UTF-8, as Git hosts and Ignition expect).
fn scan_directory(root: &Path) -> Result<Scan> {
    let mut listing = Listing::default();
    let mut stats = HashMap::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .sort_by_file_name();
    for item in walker {
        let item = item.map_err(|error| {
            let path = error.path().unwrap_or(root).to_path_buf();
            Error::io(
                "listing",
                path,
                error
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("file system loop")),
            )
        })?;
        let file_type = item.file_type();
        if file_type.is_dir() {
            continue;
        }
        let relative = item.path().strip_prefix(root).unwrap_or(item.path());
        let Some(path) = relative.to_str() else {
            listing.warnings.push(format!(
                "skipped {}: file name is not valid UTF-8",
                relative.to_string_lossy()
            ));
            continue;
        };
        let metadata = item
            .metadata()
            .map_err(|error| Error::io("listing", item.path(), std::io::Error::other(error)))?;
        let kind = if file_type.is_symlink() {
            EntryKind::Symlink
        } else if file_type.is_file() {
            if metadata.permissions().mode() & 0o111 != 0 {
                EntryKind::Executable
            } else {
                EntryKind::File
            }
        } else {
            EntryKind::Other
        };
        if kind.is_regular() {
            stats.insert(path.to_owned(), FileStat::of(&metadata));
        }
        listing.entries.push(Entry {
            path: path.to_owned(),
            kind,
            size: if kind.is_regular() { metadata.len() } else { 0 },
            content_id: None,
        });
    }
    // walkdir sorts per directory by file name; Stoker's order is by whole path bytes.
    listing.entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Scan { listing, stats })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_marks_symlinks_and_executables_and_never_follows() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/run.sh"), "#!/bin/sh").unwrap();
        std::fs::set_permissions(
            dir.path().join("d/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).unwrap();
        let artifact = LocalSource::new(dir.path()).artifact(Revision::new("t"));
        let listing = artifact.list().unwrap();
        let paths: Vec<_> = listing
            .entries
            .iter()
            .map(|e| (e.path.as_str(), e.kind))
            .collect();
        assert_eq!(
            paths,
            vec![
                ("d/run.sh", EntryKind::Executable),
                ("escape", EntryKind::Symlink)
            ]
        );
        assert!(artifact.read("escape/secret").is_err());
        assert!(artifact.read("escape").is_err());
    }

    #[test]
    fn non_utf8_names_are_skipped_with_a_warning() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let name = std::ffi::OsStr::from_bytes(b"bad\xffname");
        std::fs::write(dir.path().join(name), "x").unwrap();
        std::fs::write(dir.path().join("good"), "x").unwrap();
        let listing = LocalSource::new(dir.path())
            .artifact(Revision::new("t"))
            .list()
            .unwrap();
        assert_eq!(listing.entries.len(), 1);
        assert_eq!(listing.warnings.len(), 1);
        assert!(listing.warnings[0].contains("UTF-8"));
    }

    #[test]
    fn id_cache_lists_remembered_ids_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let cache_file = cache.path().join("ids.json");
        std::fs::write(dir.path().join("a"), "one").unwrap();
        std::fs::write(dir.path().join("b"), "two").unwrap();
        let source = LocalSource::new(dir.path())
            .with_id_cache(&cache_file)
            .with_id_cache_min_age(std::time::Duration::ZERO);
        {
            let artifact = source.artifact(Revision::new("1"));
            assert!(
                artifact
                    .list()
                    .unwrap()
                    .entries
                    .iter()
                    .all(|e| e.content_id.is_none())
            );
            artifact.record_content_id("a", ContentId::of_blob(b"one"));
            artifact.record_content_id("b", ContentId::of_blob(b"two"));
        }
        std::fs::write(dir.path().join("b"), "TWO").unwrap();
        let listing = source.artifact(Revision::new("2")).list().unwrap();
        let ids: Vec<_> = listing.entries.iter().map(|e| e.content_id).collect();
        assert_eq!(ids, vec![Some(ContentId::of_blob(b"one")), None]);
    }

    #[test]
    fn id_cache_never_vouches_for_a_file_changed_within_the_minimum_age() {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "one").unwrap();
        let source = LocalSource::new(dir.path())
            .with_id_cache(cache.path().join("ids.json"))
            .with_id_cache_min_age(std::time::Duration::from_secs(3600));
        source
            .artifact(Revision::new("1"))
            .record_content_id("a", ContentId::of_blob(b"one"));
        let listing = source.artifact(Revision::new("2")).list().unwrap();
        assert_eq!(listing.entries[0].content_id, None);
    }

    #[test]
    fn corrupt_id_cache_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let cache_file = cache.path().join("ids.json");
        std::fs::write(&cache_file, "{not json").unwrap();
        std::fs::write(dir.path().join("a"), "one").unwrap();
        let source = LocalSource::new(dir.path()).with_id_cache(&cache_file);
        let listing = source.artifact(Revision::new("1")).list().unwrap();
        assert_eq!(listing.entries[0].content_id, None);
    }
}
