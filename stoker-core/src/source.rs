//! Where files come from: the `Source` trait.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{Artifact, Revision, error::Result};

/// A place that holds revisions of a file tree: a Git repository, an OCI registry, an S3
/// bucket, a local directory.
///
/// `resolve` must not download the tree (it answers "which commit is `main` now?");
/// `fetch` makes the revision readable as an [`Artifact`]. Network sources do their blocking
/// work on `spawn_blocking`.
///
/// Implementing a source plugin takes three methods:
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use stoker_core::{Artifact, Listing, Revision, Result, Source};
///
/// struct Empty(Revision);
/// impl Artifact for Empty {
///     fn revision(&self) -> &Revision { &self.0 }
///     fn list(&self) -> Result<Listing> { Ok(Listing::default()) }
///     fn read(&self, path: &str) -> Result<Vec<u8>> {
///         Err(stoker_core::Error::NotFound { path: path.into(), revision: self.0.id.clone() })
///     }
/// }
///
/// struct EmptySource;
/// #[async_trait]
/// impl Source for EmptySource {
///     fn kind(&self) -> &'static str { "empty" }
///     async fn resolve(&self, reference: &str) -> Result<Revision> {
///         Ok(Revision::new("0").with_reference(reference))
///     }
///     async fn fetch(&self, revision: &Revision) -> Result<Arc<dyn Artifact>> {
///         Ok(Arc::new(Empty(revision.clone())))
///     }
/// }
/// ```
#[async_trait]
pub trait Source: Send + Sync {
    /// A short name for logs and errors (`git`, `local`, `oci`).
    fn kind(&self) -> &'static str;

    /// Resolves a reference (branch, tag, SHA…) to a revision, without downloading the tree.
    async fn resolve(&self, reference: &str) -> Result<Revision>;

    /// Makes a revision readable.
    async fn fetch(&self, revision: &Revision) -> Result<Arc<dyn Artifact>>;

    /// The source paths that differ between two revisions, when the source can tell cheaply
    /// (a Git tree diff). `None` means unknown: the engine compares everything.
    async fn changed_paths(&self, from: &Revision, to: &Revision) -> Result<Option<Vec<String>>> {
        let _ = (from, to);
        Ok(None)
    }
}
