//! [`GitArtifact`]: a commit's tree, read straight from the cache's object database.

use std::sync::{Mutex, OnceLock, PoisonError};

use std::io::Read;

use super::pack::{InflateReader, Opened, Packs};
use super::tree::{self, TreeError};
use crate::error::{Error, GitErrorKind, Result};
use crate::{Artifact, Entry, Listing, Revision};

/// Thread-local repository handles kept for reuse: opening one (`to_thread_local`) clones the
/// configuration and sets up caches, which costs more than reading a small blob.
const MAX_POOLED: usize = 64;

/// The tree of one commit in a [`GitSource`](super::GitSource)'s cache.
///
/// Content ids are the blob ids, so the engine never reads an unchanged file. The listing is
/// taken when the commit was just fetched (which also proves its trees readable), otherwise on
/// first use; single paths ([`Artifact::entry`], [`Artifact::read`]) are looked up through the
/// trees along the path without listing the rest, which is what an incremental sync of a few
/// changed paths needs. Trees and blobs are read from the cache's packs on demand, from any
/// number of threads at once, with positioned reads (see the `pack` module: no pack is mapped
/// into memory); an object in no pack (a loose one) is read through gix, with a repository
/// handle borrowed from a small pool.
pub struct GitArtifact {
    revision: Revision,
    url: String,
    repo: gix::ThreadSafeRepository,
    /// The commit's root tree.
    root: gix::ObjectId,
    packs: std::sync::Arc<Packs>,
    listing: OnceLock<Listing>,
    /// Trees read by single-path lookups, and the entries those found (the engine looks a
    /// changed path up when planning, then reads it when writing).
    trees: tree::TreeCache,
    entries: Mutex<std::collections::HashMap<String, Option<Entry>>>,
    pool: Mutex<Vec<gix::Repository>>,
}

impl std::fmt::Debug for GitArtifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitArtifact")
            .field("revision", &self.revision)
            .field("url", &self.url)
            .field("entries", &self.listing.get().map(|l| l.entries.len()))
            .finish_non_exhaustive()
    }
}

impl GitArtifact {
    pub(crate) fn new(
        revision: Revision,
        url: String,
        repo: gix::ThreadSafeRepository,
        root: gix::ObjectId,
        packs: std::sync::Arc<Packs>,
        listing: Option<Listing>,
    ) -> Self {
        let cell = OnceLock::new();
        if let Some(listing) = listing {
            let _ = cell.set(listing);
        }
        GitArtifact {
            revision,
            url,
            repo,
            root,
            packs,
            listing: cell,
            trees: tree::TreeCache::default(),
            entries: Mutex::new(std::collections::HashMap::new()),
            pool: Mutex::new(Vec::new()),
        }
    }

    /// The listing, without copying it (taken on first use).
    pub fn listing(&self) -> Result<&Listing> {
        if let Some(listing) = self.listing.get() {
            return Ok(listing);
        }
        let listing = self
            .with_repo(|repo| tree::list_tree(repo, Some(&self.packs), self.root))
            .map_err(|error| self.tree_error(error))?;
        Ok(self.listing.get_or_init(|| listing))
    }

    fn with_repo<R>(&self, f: impl FnOnce(&gix::Repository) -> R) -> R {
        let pooled = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let repo = pooled.unwrap_or_else(|| {
            let mut repo = self.repo.to_thread_local();
            // Each blob is read once: caching decoded objects only costs memory. Delta bases
            // stay cached by the pack cache.
            repo.object_cache_size(None);
            repo
        });
        let result = f(&repo);
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < MAX_POOLED {
            pool.push(repo);
        }
        result
    }

    /// The entry at `path`: from the listing when it was taken, else through the trees.
    fn lookup(&self, path: &str) -> Result<Option<Entry>> {
        let normalized;
        let path = match crate::relpath::normalize(path, "git artifact path") {
            Ok(clean) if clean == path => path,
            Ok(clean) => {
                normalized = clean;
                normalized.as_str()
            }
            Err(_) => return Ok(None),
        };
        if let Some(listing) = self.listing.get() {
            return Ok(listing.get(path).cloned());
        }
        let known = |entries: &Mutex<std::collections::HashMap<String, Option<Entry>>>| {
            entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(path)
                .cloned()
        };
        if let Some(entry) = known(&self.entries) {
            return Ok(entry);
        }
        let entry = self
            .with_repo(|repo| tree::lookup(repo, Some(&self.packs), &self.trees, self.root, path))
            .map_err(|error| self.tree_error(error))?;
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_owned(), entry.clone());
        Ok(entry)
    }

    fn blob_id(&self, path: &str) -> Result<gix::ObjectId> {
        match self.lookup(path)? {
            Some(entry) if entry.kind.is_regular() => {
                let id = entry.content_id.ok_or_else(|| self.not_found(path))?;
                Ok(gix::ObjectId::Sha1(id.0))
            }
            _ => Err(self.not_found(path)),
        }
    }

    fn not_found(&self, path: &str) -> Error {
        Error::NotFound {
            path: path.to_owned(),
            revision: self.revision.id.clone(),
        }
    }

    fn tree_error(&self, error: TreeError) -> Error {
        let message = match error {
            TreeError::Missing => format!(
                "a tree of commit {} is missing from the cache",
                self.revision.id
            ),
            TreeError::NotACommit(message) | TreeError::Corrupt(message) => message,
        };
        Error::Git {
            operation: "read",
            url: self.url.clone(),
            reference: Some(self.revision.id.clone()),
            kind: GitErrorKind::Corrupt,
            message,
            source: None,
        }
    }
}

impl Artifact for GitArtifact {
    fn revision(&self) -> &Revision {
        &self.revision
    }

    fn list(&self) -> Result<Listing> {
        Ok(self.listing()?.clone())
    }

    fn entry(&self, path: &str) -> Result<Option<Entry>> {
        self.lookup(path)
    }

    fn has_entries_below(&self, dir: &str) -> Result<bool> {
        if let Some(listing) = self.listing.get() {
            return Ok(listing.below(dir).next().is_some());
        }
        self.with_repo(|repo| {
            tree::has_entries_below(repo, Some(&self.packs), &self.trees, self.root, dir)
        })
        .map_err(|error| self.tree_error(error))
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        let id = self.blob_id(path)?;
        match self.packs.read(&id) {
            Ok(Some((gix::object::Kind::Blob, data))) => return Ok(data),
            Ok(Some((kind, _))) => {
                return Err(self.corrupt(path, &id, format!("it is a {kind}"), None));
            }
            Ok(None) => {}
            Err(message) => return Err(self.corrupt(path, &id, message, None)),
        }
        self.read_loose_whole(path, id)
    }

    /// Streams the blob: a blob stored whole in a pack, or loose, is inflated as it is read,
    /// in chunks, whatever its size; a deltified one (and a small one) is decoded whole first
    /// (a delta needs its whole base; see `Packs::open_object`).
    fn open(&self, path: &str) -> Result<Box<dyn Read + Send + '_>> {
        let id = self.blob_id(path)?;
        match self.packs.open_object(&id) {
            Ok(Some(Opened::Stream(gix::object::Kind::Blob, reader))) => {
                return Ok(Box::new(reader));
            }
            Ok(Some(Opened::Whole(gix::object::Kind::Blob, data))) => {
                return Ok(Box::new(std::io::Cursor::new(data)));
            }
            Ok(Some(Opened::Stream(kind, _) | Opened::Whole(kind, _))) => {
                return Err(self.corrupt(path, &id, format!("it is a {kind}"), None));
            }
            Ok(None) => {}
            Err(message) => return Err(self.corrupt(path, &id, message, None)),
        }
        // In no pack: a loose object, streamed from its file when it is there.
        match open_loose(self.repo.objects_dir(), &id) {
            Ok(Some((gix::object::Kind::Blob, reader))) => Ok(Box::new(reader)),
            Ok(Some((kind, _))) => Err(self.corrupt(path, &id, format!("it is a {kind}"), None)),
            Ok(None) => Ok(Box::new(std::io::Cursor::new(
                self.read_loose_whole(path, id)?,
            ))),
            Err(error) => Err(self.corrupt(
                path,
                &id,
                format!("reading its loose object: {error}"),
                Some(Box::new(error)),
            )),
        }
    }
}

impl GitArtifact {
    /// A blob in no pack, read whole through gix (a loose object; gix also follows alternates).
    fn read_loose_whole(&self, path: &str, id: gix::ObjectId) -> Result<Vec<u8>> {
        self.with_repo(|repo| {
            repo.find_blob(id)
                .map(|mut blob| blob.take_data())
                .map_err(|error| self.corrupt(path, &id, error.to_string(), Some(Box::new(error))))
        })
    }

    fn corrupt(
        &self,
        path: &str,
        id: &gix::oid,
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::Git {
            operation: "read",
            url: self.url.clone(),
            reference: Some(self.revision.id.clone()),
            kind: GitErrorKind::Corrupt,
            message: format!("blob {id} of {path} cannot be read from the cache: {message}"),
            source,
        }
    }
}

/// A loose object's reader (`objects/xx/yyyy…`: a zlib stream of `<kind> <size>\0` and the
/// content), positioned after its header; `Ok(None)` when there is no such file.
fn open_loose(
    objects: &std::path::Path,
    id: &gix::oid,
) -> std::io::Result<Option<(gix::object::Kind, impl Read + Send + use<>)>> {
    let hex = id.to_hex().to_string();
    let file = match std::fs::File::open(objects.join(&hex[..2]).join(&hex[2..])) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let mut reader = InflateReader::new(file, u64::MAX - 1, format!("loose object {id}"));
    // The header is at most `commit 18446744073709551615\0`; what follows it in the first read
    // is the start of the content.
    let mut head = [0u8; 64];
    let mut filled = 0;
    let nul = loop {
        if let Some(nul) = head[..filled].iter().position(|byte| *byte == 0) {
            break nul;
        }
        let read = reader.read(&mut head[filled..])?;
        if read == 0 || filled + read == head.len() && !head.contains(&0) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("loose object {id}: no header"),
            ));
        }
        filled += read;
    };
    let damaged = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("loose object {id}: damaged header"),
        )
    };
    let header = std::str::from_utf8(&head[..nul]).map_err(|_| damaged())?;
    let (kind, size) = header.split_once(' ').ok_or_else(damaged)?;
    let kind = gix::object::Kind::from_bytes(kind.as_bytes()).map_err(|_| damaged())?;
    let size: u64 = size.parse().map_err(|_| damaged())?;
    reader.set_size((nul as u64 + 1).checked_add(size).ok_or_else(damaged)?);
    if reader.produced() > nul as u64 + 1 + size {
        return Err(damaged());
    }
    let start = std::io::Cursor::new(head[nul + 1..filled].to_vec());
    Ok(Some((kind, start.chain(reader))))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A loose blob streams from its file and reads back as written.
    #[test]
    fn loose_objects_stream() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        super::super::test_repo::git(&work, &["init", "-q"], b"");
        let big: Vec<u8> = (0..300_000).map(|i| ((i * 31) % 253) as u8).collect();
        let hex = super::super::test_repo::git(&work, &["hash-object", "-w", "--stdin"], &big);
        let id =
            gix::ObjectId::from_hex(String::from_utf8(hex).unwrap().trim().as_bytes()).unwrap();
        let objects = work.join(".git/objects");
        let (kind, mut reader) = open_loose(&objects, &id).unwrap().unwrap();
        assert_eq!(kind, gix::object::Kind::Blob);
        let mut read = Vec::new();
        reader.read_to_end(&mut read).unwrap();
        assert_eq!(read, big);
        let missing = gix::ObjectId::null(gix::hash::Kind::Sha1);
        assert!(open_loose(&objects, &missing).unwrap().is_none());
    }
}
