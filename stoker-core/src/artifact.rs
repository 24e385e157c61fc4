//! A read-only view of a source tree at one revision.

use std::io::Read;
use std::path::PathBuf;

use crate::{ContentId, Revision, error::Result};

/// What kind of entry a tree holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A regular file with the executable bit.
    Executable,
    /// A symbolic link: never followed; the engine skips it with a warning.
    Symlink,
    /// Anything else (submodule, socket, device…): skipped with a warning.
    Other,
}

impl EntryKind {
    /// Regular files, executable or not.
    pub fn is_regular(self) -> bool {
        matches!(self, EntryKind::File | EntryKind::Executable)
    }
}

/// One entry of an [`Artifact`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Normalised relative path, `/`-separated, valid UTF-8.
    pub path: String,
    /// File, executable, symlink or other.
    pub kind: EntryKind,
    /// Size in bytes (0 where unknown for non-regular entries).
    pub size: u64,
    /// The Git blob id when the source knows it without reading the content (Git does; a local
    /// directory does not).
    pub content_id: Option<ContentId>,
}

/// All entries of an artifact, sorted by path, and what was skipped while listing them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Entries sorted by `path` (byte order), no duplicates.
    pub entries: Vec<Entry>,
    /// Human-readable notes about entries that could not be listed (a name that is not UTF-8…).
    pub warnings: Vec<String>,
}

impl Listing {
    /// The entry at exactly `path`.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|entry| entry.path.as_str().cmp(path))
            .ok()
            .map(|index| &self.entries[index])
    }

    /// The entries strictly below directory `dir` (all entries for the root `""`).
    pub fn below<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        let start = if dir.is_empty() {
            0
        } else {
            // `dir/` sorts after `dir` and before every `dir/…`.
            let prefix = format!("{dir}/");
            self.entries
                .partition_point(|entry| entry.path.as_str() < prefix.as_str())
        };
        self.entries[start..]
            .iter()
            .take_while(move |entry| crate::relpath::is_within(&entry.path, dir))
            .filter(move |entry| entry.path != dir)
    }
}

/// A read-only tree at one revision: list it, read a blob.
///
/// Implementations are blocking (the engine calls them from worker threads) and must be safe to
/// share between threads.
pub trait Artifact: Send + Sync {
    /// The revision this tree is.
    fn revision(&self) -> &Revision;

    /// Every entry, sorted by path.
    fn list(&self) -> Result<Listing>;

    /// The whole content of the regular file at `path`.
    fn read(&self, path: &str) -> Result<Vec<u8>>;

    /// The entry at `path` (a file, symlink or special entry), or `None` when there is none or
    /// it is a directory. The engine's incremental plan asks this for the few paths a commit
    /// changed; a source that can look one path up (a Git tree) should answer without listing
    /// everything. The default searches [`Artifact::list`], which is correct but lists the whole
    /// tree on every call.
    ///
    /// ```
    /// # #[cfg(feature = "local")] {
    /// use stoker_core::{Artifact, LocalSource, Revision};
    /// let repo = tempfile::tempdir().unwrap();
    /// std::fs::create_dir(repo.path().join("config")).unwrap();
    /// std::fs::write(repo.path().join("config/db.json"), "{}").unwrap();
    /// let artifact = LocalSource::new(repo.path()).artifact(Revision::new("r1"));
    /// assert_eq!(artifact.entry("config/db.json").unwrap().unwrap().size, 2);
    /// assert!(artifact.entry("config").unwrap().is_none());
    /// # }
    /// ```
    fn entry(&self, path: &str) -> Result<Option<Entry>> {
        Ok(self.list()?.get(path).cloned())
    }

    /// True when `dir` is a directory with at least one entry below it that [`Artifact::list`]
    /// would list (`""` is the root). The default searches [`Artifact::list`].
    fn has_entries_below(&self, dir: &str) -> Result<bool> {
        Ok(self.list()?.below(dir).next().is_some())
    }

    /// A reader over the content at `path`; the default reads it whole with [`Artifact::read`].
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(std::io::Cursor::new(self.read(path)?)))
    }

    /// Where the file lives on the local file system, if it does (a local directory source).
    /// Lets the engine copy with the kernel's fast paths.
    fn local_path(&self, path: &str) -> Option<PathBuf> {
        let _ = path;
        None
    }

    /// Tells the artifact the content id the engine computed for `path` by reading it, so a
    /// source without free ids can remember it (the local source keeps a stat-keyed cache and
    /// lists remembered ids next time). The default forgets it.
    fn record_content_id(&self, path: &str, id: ContentId) {
        let _ = (path, id);
    }
}
