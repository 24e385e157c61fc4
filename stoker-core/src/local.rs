//! A directory on the local file system as a [`Source`] (feature `local`).
//!
//! Useful for tests, for `stoker-agent sync --source DIR`, and for single hosts that get their
//! files by other means. Content ids are not free here: the engine hashes what it reads.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::{Artifact, Entry, EntryKind, Listing, Revision, Source};

/// A directory as a source. `resolve` ignores the reference's value and fingerprints the tree
/// (paths, sizes, modification times), so a changed directory gets a new revision id.
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
}

impl LocalSource {
    /// A source reading the directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalSource { root: root.into() }
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
            listing: OnceLock::new(),
        }
    }
}

#[async_trait]
impl Source for LocalSource {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn resolve(&self, reference: &str) -> Result<Revision> {
        let listing = list_directory(&self.root)?;
        let mut fingerprint = String::new();
        for entry in &listing.entries {
            let mtime = std::fs::symlink_metadata(self.root.join(&entry.path))
                .map(|meta| (meta.mtime(), meta.mtime_nsec()))
                .unwrap_or_default();
            fingerprint.push_str(&format!(
                "{}\0{:?}\0{}\0{}.{}\n",
                entry.path, entry.kind, entry.size, mtime.0, mtime.1
            ));
        }
        let id = crate::ContentId::of_blob(fingerprint.as_bytes()).to_string();
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
        Ok(Arc::new(self.artifact(revision.clone())))
    }
}

/// The tree of a [`LocalSource`]. The listing is taken once, on first use.
#[derive(Debug)]
pub struct LocalArtifact {
    root: PathBuf,
    revision: Revision,
    listing: OnceLock<Listing>,
}

impl Artifact for LocalArtifact {
    fn revision(&self) -> &Revision {
        &self.revision
    }

    fn list(&self) -> Result<Listing> {
        Ok(self.listing()?.clone())
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
}

impl LocalArtifact {
    fn listing(&self) -> Result<&Listing> {
        if let Some(listing) = self.listing.get() {
            return Ok(listing);
        }
        let listing = list_directory(&self.root)?;
        Ok(self.listing.get_or_init(|| listing))
    }

    /// The full path of a listed regular file. Only paths the listing reached without following
    /// a symlink are readable, so `link-to-elsewhere/file` is refused; the final component is
    /// checked again in case it was replaced by a symlink after listing.
    fn checked_path(&self, path: &str) -> Result<PathBuf> {
        let normalized = crate::relpath::normalize(path, "local artifact path")?;
        let full = self.root.join(&normalized);
        if !self
            .listing()?
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

/// Lists a directory without following symlinks. Names that are not UTF-8 are skipped with a
/// warning (Stoker's paths are UTF-8, as Git hosts and Ignition expect).
fn list_directory(root: &Path) -> Result<Listing> {
    let mut listing = Listing::default();
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
        listing.entries.push(Entry {
            path: path.to_owned(),
            kind,
            size: if kind.is_regular() { metadata.len() } else { 0 },
            content_id: None,
        });
    }
    // walkdir sorts per directory by file name; Stoker's order is by whole path bytes.
    listing.entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(listing)
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
}
