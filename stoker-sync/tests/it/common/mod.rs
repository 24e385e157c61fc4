//! Shared helpers for the engine's integration tests: repository directories, sync requests,
//! an in-memory artifact that counts reads, and live-tree snapshots.
#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use stoker_core::{
    Artifact, ContentId, Entry, EntryKind, Listing, LocalSource, Mapping, MappingType, Patch,
    Profile, Revision, SyncReport, SyncRequest, TemplateContext,
};
use stoker_sync::{ApplyOptions, MergeStrategy};

mod fork;
pub use fork::{no_fork, spawn, without_fork};

/// Creates `path` (and its parents) with `bytes`.
pub fn write(root: &Path, path: &str, bytes: impl AsRef<[u8]>) {
    let full = root.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, bytes).unwrap();
}

/// Sets the permission bits of `path`.
pub fn chmod(root: &Path, path: &str, mode: u32) {
    std::fs::set_permissions(root.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Creates a symlink at `path` pointing to `target`.
pub fn symlink(root: &Path, path: &str, target: impl AsRef<Path>) {
    let full = root.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, full).unwrap();
}

/// Creates the directory `path` and its parents.
pub fn mkdir(root: &Path, path: &str) {
    std::fs::create_dir_all(root.join(path)).unwrap();
}

/// A repository directory read through [`LocalSource`].
pub struct Repo {
    pub dir: tempfile::TempDir,
}

impl Repo {
    pub fn new() -> Self {
        Repo {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, path: &str, bytes: impl AsRef<[u8]>) -> &Self {
        write(self.path(), path, bytes);
        self
    }

    pub fn exec(&self, path: &str, bytes: impl AsRef<[u8]>) -> &Self {
        write(self.path(), path, bytes);
        chmod(self.path(), path, 0o755);
        self
    }

    pub fn remove(&self, path: &str) -> &Self {
        std::fs::remove_file(self.path().join(path)).unwrap();
        self
    }

    pub fn artifact(&self, revision: &str) -> Arc<dyn Artifact> {
        Arc::new(LocalSource::new(self.path()).artifact(Revision::new(revision)))
    }
}

/// A mapping with the type inferred.
pub fn map(source: &str, destination: &str) -> Mapping {
    Mapping {
        source: source.into(),
        destination: destination.into(),
        ..Default::default()
    }
}

/// A `dir` mapping.
pub fn dir(source: &str, destination: &str) -> Mapping {
    Mapping {
        kind: Some(MappingType::Dir),
        ..map(source, destination)
    }
}

/// A `file` mapping.
pub fn file(source: &str, destination: &str) -> Mapping {
    Mapping {
        kind: Some(MappingType::File),
        ..map(source, destination)
    }
}

/// A patch setting `(dot path, value template)` pairs in files matching `glob`.
pub fn patch(glob: &str, sets: &[(&str, &str)]) -> Patch {
    Patch {
        file: Some(glob.into()),
        set: sets
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// A request with the default profile settings and an empty template context.
pub fn request(artifact: Arc<dyn Artifact>, mappings: Vec<Mapping>, live: &Path) -> SyncRequest {
    SyncRequest {
        artifact,
        profile: Profile::new("test", mappings),
        context: TemplateContext::default(),
        live: live.to_path_buf(),
        dry_run: false,
        changed_paths: None,
        previous: None,
    }
}

/// A request mapping the repository's `projects` to live's `projects`, the set-up most rules
/// start from.
pub fn projects_request(artifact: Arc<dyn Artifact>, live: &Path) -> SyncRequest {
    request(artifact, vec![map("projects", "projects")], live)
}

/// Asserts that one of the report's warnings mentions `needle`.
#[track_caller]
pub fn assert_warned(report: &SyncReport, needle: &str) {
    assert!(
        report.warnings.iter().any(|w| w.contains(needle)),
        "no warning mentions {needle:?}: {:?}",
        report.warnings
    );
}

/// Plans and applies with default options.
pub fn sync(request: &SyncRequest) -> stoker_sync::Result<SyncReport> {
    without_fork(|| MergeStrategy::default().sync(request))
}

/// Plans and applies with the given options.
pub fn sync_with(options: ApplyOptions, request: &SyncRequest) -> stoker_sync::Result<SyncReport> {
    without_fork(|| MergeStrategy::new(options).sync(request))
}

/// A dry run of the request.
pub fn dry_run(request: &SyncRequest) -> stoker_sync::Result<SyncReport> {
    let mut request = request.clone();
    request.dry_run = true;
    without_fork(|| MergeStrategy::default().sync(&request))
}

/// What a snapshot records at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file: its bytes and whether the owner-executable bit is set.
    File { bytes: Vec<u8>, executable: bool },
    /// A symlink and its target (never followed).
    Symlink(PathBuf),
    /// A directory.
    Dir,
    /// A socket, FIFO or device.
    Other,
}

impl Node {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Node::File { bytes, .. } => bytes,
            other => panic!("not a file: {other:?}"),
        }
    }
}

/// A regular, non-executable file node.
pub fn text(bytes: impl AsRef<[u8]>) -> Node {
    Node::File {
        bytes: bytes.as_ref().to_vec(),
        executable: false,
    }
}

pub type Tree = BTreeMap<String, Node>;

/// Everything below `root` (not following symlinks), keyed by `/`-separated relative path
/// (lossy for names that are not UTF-8).
pub fn snapshot(root: &Path) -> Tree {
    let mut tree = Tree::new();
    if !root.exists() {
        return tree;
    }
    for entry in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        let entry = entry.unwrap();
        let relative = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let file_type = entry.file_type();
        let node = if file_type.is_symlink() {
            Node::Symlink(std::fs::read_link(entry.path()).unwrap())
        } else if file_type.is_dir() {
            Node::Dir
        } else if file_type.is_file() {
            let metadata = entry.metadata().unwrap();
            Node::File {
                bytes: std::fs::read(entry.path()).unwrap(),
                executable: metadata.mode() & 0o100 != 0,
            }
        } else {
            Node::Other
        };
        tree.insert(relative, node);
    }
    tree
}

/// A snapshot without the engine's own `.stoker/` state directory.
pub fn snapshot_live(root: &Path) -> Tree {
    snapshot(root)
        .into_iter()
        .filter(|(path, _)| path != ".stoker" && !path.starts_with(".stoker/"))
        .collect()
}

/// Paths of the engine's temporaries anywhere below `root` (including `.stoker/`).
pub fn temporaries(root: &Path) -> Vec<String> {
    snapshot(root)
        .into_keys()
        .filter(|path| {
            path.rsplit('/')
                .next()
                .is_some_and(|name| name.starts_with(".stoker-tmp-"))
        })
        .collect()
}

/// Bytes plus the `lstat` fields that any write, rename or replacement changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub bytes: Option<Vec<u8>>,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub ino: u64,
    pub mode: u32,
}

/// Fingerprints every entry below `root`.
pub fn fingerprints(root: &Path) -> BTreeMap<String, Fingerprint> {
    let mut map = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).follow_links(false) {
        let entry = entry.unwrap();
        let metadata = entry.metadata().unwrap();
        let relative = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        map.insert(
            relative,
            Fingerprint {
                bytes: entry
                    .file_type()
                    .is_file()
                    .then(|| std::fs::read(entry.path()).unwrap()),
                mtime: (metadata.mtime(), metadata.mtime_nsec()),
                ctime: (metadata.ctime(), metadata.ctime_nsec()),
                ino: metadata.ino(),
                mode: metadata.mode(),
            },
        );
    }
    map
}

/// Paths in a report's list.
pub fn paths(changes: &[stoker_core::FileChange]) -> Vec<&str> {
    changes.iter().map(|c| c.path.as_str()).collect()
}

/// An in-memory artifact that knows content ids (as a Git source does) and counts every
/// `read` / `open`.
pub struct MemArtifact {
    revision: Revision,
    entries: BTreeMap<String, (EntryKind, Vec<u8>)>,
    with_ids: bool,
    reads: AtomicUsize,
    lists: AtomicUsize,
}

impl MemArtifact {
    pub fn new(revision: &str, with_ids: bool) -> Self {
        MemArtifact {
            revision: Revision::new(revision),
            entries: BTreeMap::new(),
            with_ids,
            reads: AtomicUsize::new(0),
            lists: AtomicUsize::new(0),
        }
    }

    pub fn with(mut self, path: &str, kind: EntryKind, bytes: impl AsRef<[u8]>) -> Self {
        self.entries
            .insert(path.to_owned(), (kind, bytes.as_ref().to_vec()));
        self
    }

    pub fn file(self, path: &str, bytes: impl AsRef<[u8]>) -> Self {
        self.with(path, EntryKind::File, bytes)
    }

    /// The same entries at another revision.
    pub fn renamed(mut self, revision: &str) -> Self {
        self.revision = Revision::new(revision);
        self
    }

    /// Without the entry at `path`.
    pub fn without(mut self, path: &str) -> Self {
        self.entries.remove(path);
        self
    }

    /// Without any entry below `dir`.
    pub fn without_below(mut self, dir: &str) -> Self {
        let prefix = format!("{dir}/");
        self.entries.retain(|path, _| !path.starts_with(&prefix));
        self
    }

    /// The revision's id.
    pub fn revision_id(&self) -> String {
        self.revision.id.clone()
    }

    /// How many times content was read or opened.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// How many times the whole tree was listed.
    pub fn lists(&self) -> usize {
        self.lists.load(Ordering::SeqCst)
    }

    /// The paths whose entry differs from `other`'s (what a Git diff between the two says).
    pub fn changed_since(&self, other: &MemArtifact) -> Vec<String> {
        let mut paths: Vec<String> = self
            .entries
            .keys()
            .chain(other.entries.keys())
            .filter(|path| self.entries.get(*path) != other.entries.get(*path))
            .cloned()
            .collect();
        paths.sort();
        paths.dedup();
        paths
    }

    fn entry_at(&self, path: &str) -> Option<Entry> {
        let (kind, bytes) = self.entries.get(path)?;
        Some(Entry {
            path: path.to_owned(),
            kind: *kind,
            size: if kind.is_regular() {
                bytes.len() as u64
            } else {
                0
            },
            content_id: (self.with_ids && kind.is_regular()).then(|| ContentId::of_blob(bytes)),
        })
    }

    fn content(&self, path: &str) -> stoker_core::Result<Vec<u8>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        match self.entries.get(path) {
            Some((kind, bytes)) if kind.is_regular() => Ok(bytes.clone()),
            _ => Err(stoker_core::Error::NotFound {
                path: path.to_owned(),
                revision: self.revision.id.clone(),
            }),
        }
    }
}

impl Artifact for MemArtifact {
    fn revision(&self) -> &Revision {
        &self.revision
    }

    fn list(&self) -> stoker_core::Result<Listing> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        Ok(Listing {
            entries: self
                .entries
                .keys()
                .filter_map(|path| self.entry_at(path))
                .collect(),
            warnings: Vec::new(),
        })
    }

    /// Looked up without listing (as a Git tree answers).
    fn entry(&self, path: &str) -> stoker_core::Result<Option<Entry>> {
        Ok(self.entry_at(path))
    }

    fn has_entries_below(&self, dir: &str) -> stoker_core::Result<bool> {
        let prefix = format!("{dir}/");
        Ok(self
            .entries
            .keys()
            .any(|path| dir.is_empty() || path.starts_with(&prefix)))
    }

    fn read(&self, path: &str) -> stoker_core::Result<Vec<u8>> {
        self.content(path)
    }

    fn open(&self, path: &str) -> stoker_core::Result<Box<dyn std::io::Read + Send + '_>> {
        Ok(Box::new(std::io::Cursor::new(self.content(path)?)))
    }
}
