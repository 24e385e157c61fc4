//! [`GitArtifact`]: a commit's tree, read straight from the cache's object database.

use std::sync::{Mutex, PoisonError};

use crate::error::{Error, GitErrorKind, Result};
use crate::{Artifact, Listing, Revision};

/// Thread-local repository handles kept for reuse: opening one (`to_thread_local`) clones the
/// configuration and sets up caches, which costs more than reading a small blob.
const MAX_POOLED: usize = 64;

/// The tree of one commit in a [`GitSource`](super::GitSource)'s cache.
///
/// The listing is taken when the commit is fetched (which also proves the trees readable);
/// content ids are the blob ids, so the engine never reads an unchanged file. Blobs are read
/// from the object database on demand, from any number of threads at once: each read borrows a
/// repository handle from a small pool.
pub struct GitArtifact {
    revision: Revision,
    url: String,
    repo: gix::ThreadSafeRepository,
    listing: Listing,
    pool: Mutex<Vec<gix::Repository>>,
}

impl std::fmt::Debug for GitArtifact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitArtifact")
            .field("revision", &self.revision)
            .field("url", &self.url)
            .field("entries", &self.listing.entries.len())
            .finish_non_exhaustive()
    }
}

impl GitArtifact {
    pub(crate) fn new(
        revision: Revision,
        url: String,
        repo: gix::ThreadSafeRepository,
        listing: Listing,
    ) -> Self {
        GitArtifact {
            revision,
            url,
            repo,
            listing,
            pool: Mutex::new(Vec::new()),
        }
    }

    /// The listing, without copying it.
    pub fn listing(&self) -> &Listing {
        &self.listing
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

    fn blob_id(&self, path: &str) -> Result<gix::ObjectId> {
        let entry = match self.listing.get(path) {
            Some(entry) => Some(entry),
            None => {
                let normalized = crate::relpath::normalize(path, "git artifact path")?;
                self.listing.get(&normalized)
            }
        };
        match entry {
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
}

impl Artifact for GitArtifact {
    fn revision(&self) -> &Revision {
        &self.revision
    }

    fn list(&self) -> Result<Listing> {
        Ok(self.listing.clone())
    }

    fn read(&self, path: &str) -> Result<Vec<u8>> {
        let id = self.blob_id(path)?;
        self.with_repo(|repo| {
            repo.find_blob(id)
                .map(|mut blob| blob.take_data())
                .map_err(|error| Error::Git {
                    operation: "read",
                    url: self.url.clone(),
                    reference: Some(self.revision.id.clone()),
                    kind: GitErrorKind::Corrupt,
                    message: format!("blob {id} of {path} cannot be read from the cache: {error}"),
                    source: Some(Box::new(error)),
                })
        })
    }
}
