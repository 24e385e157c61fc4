//! Git repositories as a [`Source`] (feature `git`, built on gix).
//!
//! - [`GitSource::resolve`] asks the remote which commit a reference names, like `git
//!   ls-remote`: no objects are transferred. Branches, tags (annotated tags peel to their
//!   commit), `HEAD`, exact `refs/…` names, full SHAs (taken as they are; checked at fetch) and
//!   abbreviated SHAs that a branch or tag tip starts with.
//! - [`GitSource::fetch`] makes the commit available in a bare cache repository
//!   (`<cache_dir>/<hash of url>.git`): shallow (depth 1 by default), incremental (a commit
//!   already there needs no network), one process at a time (a file lock), safe to kill at any
//!   point (see the `cache` module's notes), and self-repairing: a cache that cannot be opened,
//!   a damaged pack, or a commit whose tree cannot be read is removed and fetched again.
//! - The [`GitArtifact`] it returns lists the commit's tree with blob ids as content ids and
//!   reads blobs straight from the object database, from many threads at once: no checkout.
//! - [`GitSource::changed_paths`] diffs the trees of two cached commits.
//!
//! Authentication ([`GitAuth`]): HTTPS token, SSH key with `known_hosts` (strict), GitHub App.
//! [`GithubApp`] on its own exchanges an App's private key for an installation token, for a
//! caller that hands the token to others (the operator, for its agents).
//! Transient failures (network, timeouts, HTTP 5xx) are retried per [`RetryPolicy`];
//! authentication, host key and missing-ref failures fail at once. Every error is an
//! [`Error::Git`] with the URL redacted ([`redact_url`]); credentials never
//! reach gix inside a URL, so none of its messages can contain them.
//!
//! ```no_run
//! # async fn demo() -> stoker_core::Result<()> {
//! use stoker_core::Source;
//! use stoker_core::git::{GitAuth, GitSource, GitSourceConfig};
//! let source = GitSource::new(
//!     GitSourceConfig::new("https://github.com/acme/gateways.git", "/var/cache/stoker")
//!         .with_auth(GitAuth::Token { token_file: "/var/run/secrets/git/token".into() }),
//! )?;
//! let revision = source.resolve("main").await?;
//! let artifact = source.fetch(&revision).await?;
//! let listing = artifact.list()?;
//! # Ok(()) }
//! ```

mod artifact;
mod cache;
mod config;
mod first_fetch;
mod github_app;
mod http;
mod index_pack;
mod pack;
mod progress;
mod redact;
mod refs;
mod remote;
mod ssh;
#[cfg(test)]
mod test_repo;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
mod tree;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use async_trait::async_trait;

pub use artifact::GitArtifact;
pub use config::{GitAuth, GitSourceConfig, RetryPolicy};
pub use github_app::{GithubApp, InstallationToken};
pub use redact::redact_url;

use crate::error::{Error, GitErrorKind, Result};
use crate::{Artifact, Revision, Source};
use cache::Opened;
use refs::RefQuery;
use remote::{Failure, Remote, with_retry};
use tree::TreeError;

/// Whether this process fetches and reads on gix's own path instead of the hand-written pack
/// layer: a measurement switch (`testing::use_gix_path`), compiled in with the `testing`
/// feature only; always `false` in the binaries.
fn gix_path() -> bool {
    #[cfg(feature = "testing")]
    return testing::gix_path();
    #[cfg(not(feature = "testing"))]
    false
}

/// The cache's packs as the pack layer reads them; on gix's own path ([`gix_path`]) none, so
/// that every tree and blob is read through gix's object database.
fn open_packs(git_dir: &Path) -> std::result::Result<pack::Packs, String> {
    if gix_path() {
        return Ok(pack::Packs::none());
    }
    pack::Packs::open(git_dir)
}

/// A Git repository as a [`Source`]. Cheap to clone; clones share the token cache.
#[derive(Clone)]
pub struct GitSource {
    inner: Arc<Inner>,
}

struct Inner {
    config: GitSourceConfig,
    remote: Remote,
    /// The full ref name each reference resolved to, so `fetch` asks for exactly that ref.
    resolved: Mutex<HashMap<String, String>>,
    /// The packs of the last artifact, while it lives: a diff during the sync that fetched it
    /// reads through them instead of opening every pack index again.
    packs: Mutex<Weak<pack::Packs>>,
}

impl std::fmt::Debug for GitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitSource")
            .field("url", &self.inner.remote.redacted)
            .field("cache", &self.inner.remote.paths.repo)
            .field("depth", &self.inner.config.depth)
            .finish_non_exhaustive()
    }
}

impl GitSource {
    /// A source for `config.url`. Checks the URL and that the authentication fits its scheme;
    /// touches neither the network nor the cache.
    pub fn new(config: GitSourceConfig) -> Result<Self> {
        let remote = Remote::new(&config)
            .map_err(|failure| failure.into_error("configure", &redact_url(&config.url), None))?;
        Ok(GitSource {
            inner: Arc::new(Inner {
                config,
                remote,
                resolved: Mutex::new(HashMap::new()),
                packs: Mutex::new(Weak::new()),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GitSourceConfig {
        &self.inner.config
    }

    /// The URL without credentials, for display.
    pub fn redacted_url(&self) -> &str {
        &self.inner.remote.redacted
    }

    /// The bare cache repository of this URL.
    pub fn cache_repository(&self) -> &Path {
        &self.inner.remote.paths.repo
    }

    /// [`Source::resolve`], blocking: call it from a worker thread.
    pub fn resolve_blocking(&self, reference: &str) -> Result<Revision> {
        self.inner.resolve(reference, &AtomicBool::new(false))
    }

    /// [`Source::fetch`], blocking: call it from a worker thread.
    pub fn fetch_blocking(&self, revision: &Revision) -> Result<GitArtifact> {
        self.inner.fetch(revision, &AtomicBool::new(false))
    }

    /// [`Source::changed_paths`], blocking: call it from a worker thread.
    pub fn changed_paths_blocking(
        &self,
        from: &Revision,
        to: &Revision,
    ) -> Result<Option<Vec<String>>> {
        self.inner.changed_paths(from, to)
    }

    /// Runs `work` on tokio's blocking pool. Dropping the returned future (a cancelled sync)
    /// raises the cancellation flag the work polls: a fetch stops at its next check and a
    /// retry wait ends.
    async fn blocking<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&Inner, &AtomicBool) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        struct CancelOnDrop(Arc<AtomicBool>, bool);
        impl Drop for CancelOnDrop {
            fn drop(&mut self) {
                if self.1 {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let mut guard = CancelOnDrop(cancel.clone(), true);
        let inner = self.inner.clone();
        let joined = tokio::task::spawn_blocking(move || work(&inner, &cancel)).await;
        guard.1 = false;
        joined.map_err(|error| Error::Git {
            operation,
            url: self.inner.remote.redacted.clone(),
            reference: None,
            kind: GitErrorKind::Other,
            message: format!("the worker thread failed: {error}"),
            source: None,
        })?
    }
}

#[async_trait]
impl Source for GitSource {
    fn kind(&self) -> &'static str {
        "git"
    }

    async fn resolve(&self, reference: &str) -> Result<Revision> {
        let reference = reference.to_owned();
        self.blocking("resolve", move |inner, cancel| {
            inner.resolve(&reference, cancel)
        })
        .await
    }

    async fn fetch(&self, revision: &Revision) -> Result<Arc<dyn Artifact>> {
        let revision = revision.clone();
        let artifact = self
            .blocking("fetch", move |inner, cancel| inner.fetch(&revision, cancel))
            .await?;
        Ok(Arc::new(artifact))
    }

    async fn changed_paths(&self, from: &Revision, to: &Revision) -> Result<Option<Vec<String>>> {
        let (from, to) = (from.clone(), to.clone());
        self.blocking("diff", move |inner, _| inner.changed_paths(&from, &to))
            .await
    }
}

impl Inner {
    fn shown_url(&self) -> &str {
        &self.remote.redacted
    }

    #[tracing::instrument(level = "debug", skip_all, fields(repo = %self.remote.redacted, reference = %reference))]
    fn resolve(&self, reference: &str, cancel: &AtomicBool) -> Result<Revision> {
        let error =
            |failure: Failure| failure.into_error("resolve", self.shown_url(), Some(reference));
        let query = RefQuery::parse(reference)
            .map_err(|message| error(Failure::new(GitErrorKind::RefNotFound, message)))?;
        if let RefQuery::FullSha(id) = &query {
            return Ok(Revision::new(id.clone()).with_reference(reference));
        }
        let refspecs = query.refspecs();
        let setup = self.remote.setup().map_err(error)?;
        let advertised = with_retry(
            &self.config.retry,
            self.shown_url(),
            "resolve",
            cancel,
            || self.remote.list_refs(&setup, &refspecs),
        )
        .map_err(error)?;
        let (id, name) = refs::lookup(reference, &query, &advertised)
            .map_err(|message| error(Failure::new(GitErrorKind::RefNotFound, message)))?;
        tracing::debug!(commit = %id, r#ref = %name, "resolved");
        self.resolved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(reference.to_owned(), name);
        Ok(Revision::new(id).with_reference(reference))
    }

    /// The refspecs that bring `revision` into the cache: its ref when it came from one (so
    /// servers that only serve advertised tips work), else the commit itself.
    fn refspecs_for(&self, revision: &Revision, id: &gix::ObjectId) -> Vec<String> {
        let by_id = vec![format!("+{id}:refs/stoker/pinned")];
        let Some(reference) = revision.reference.as_deref() else {
            return by_id;
        };
        let remembered = self
            .resolved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(reference)
            .cloned();
        let names = match (remembered, RefQuery::parse(reference)) {
            (Some(name), _) => vec![name],
            (
                None,
                Ok(RefQuery::Names {
                    candidates,
                    abbreviated: None,
                }),
            ) => candidates,
            _ => return by_id,
        };
        names
            .into_iter()
            .map(|name| {
                let destination = if name == "HEAD" {
                    "refs/stoker/HEAD".to_owned()
                } else {
                    name.clone()
                };
                format!("+{name}:{destination}")
            })
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(repo = %self.remote.redacted, revision = %revision))]
    #[allow(clippy::too_many_lines)] // one fetch from cache check to artifact, step by step in order
    fn fetch(&self, revision: &Revision, cancel: &AtomicBool) -> Result<GitArtifact> {
        let reference = revision.reference.as_deref().unwrap_or(&revision.id);
        let error =
            |failure: Failure| failure.into_error("fetch", self.shown_url(), Some(reference));
        let id = gix::ObjectId::from_hex(revision.id.as_bytes()).map_err(|_| {
            error(Failure::new(
                GitErrorKind::CommitNotFound,
                format!("{:?} is not a full 40-digit commit id", revision.id),
            ))
        })?;
        let paths = &self.remote.paths;
        let _lock = cache::lock(paths).map_err(|io| {
            error(Failure::new(
                GitErrorKind::Other,
                format!("locking the cache {}: {io}", paths.lock.display()),
            ))
        })?;
        let setup = self.remote.setup().map_err(error)?;
        let corrupt = |message: String| error(Failure::new(GitErrorKind::Corrupt, message));
        let mut repaired = false;
        loop {
            let (repo, opened) = cache::open_or_init(paths, &setup.open).map_err(corrupt)?;
            let local = repo.to_thread_local();
            // Already fetched (and listed then): the listing is taken when the engine needs it,
            // which an incremental sync of a few changed paths does not.
            match tree::checked_root(&local, id) {
                Ok(root) => {
                    let packs = open_packs(local.git_dir()).map_err(corrupt)?;
                    return Ok(self.artifact(revision, repo, root, packs, None));
                }
                Err(TreeError::Missing) => {}
                Err(TreeError::NotACommit(message)) => {
                    return Err(error(Failure::new(GitErrorKind::CommitNotFound, message)));
                }
                Err(TreeError::Corrupt(problem)) if !repaired => {
                    tracing::warn!(cache = %paths.repo.display(), %problem, "the Git cache is damaged; removing it and fetching again");
                    cache::wipe(paths).map_err(corrupt)?;
                    repaired = true;
                    continue;
                }
                Err(TreeError::Corrupt(problem)) => return Err(corrupt(problem)),
            }

            if opened == Opened::Existing && cache::pack_count(&paths.repo) > cache::MAX_PACKS {
                tracing::info!(cache = %paths.repo.display(), "the cache holds many packs; rebuilding it with this fetch");
                drop(local);
                cache::wipe(paths).map_err(corrupt)?;
                continue;
            }
            let refspecs = self.refspecs_for(revision, &id);
            let by_ref = refspecs
                .first()
                .is_some_and(|spec| !spec.starts_with(&format!("+{id}")));
            let fetched = with_retry(
                &self.config.retry,
                self.shown_url(),
                "fetch",
                cancel,
                || {
                    self.remote.fetch(&setup, &local, &refspecs, cancel)?;
                    if by_ref && !local.has_object(id) {
                        // The ref moved since it was resolved: ask for the commit itself.
                        tracing::info!(commit = %id, "the ref no longer points at the resolved commit; fetching the commit by id");
                        self.remote.fetch(
                            &setup,
                            &local,
                            &[format!("+{id}:refs/stoker/pinned")],
                            cancel,
                        )?;
                    }
                    Ok(())
                },
            );
            match fetched {
                Ok(()) => {}
                // A local problem (the negotiation tripping over objects a crash left
                // inconsistent): start again from an empty cache, once.
                Err(failure)
                    if failure.kind == GitErrorKind::Other
                        && opened == Opened::Existing
                        && !repaired =>
                {
                    tracing::warn!(cache = %paths.repo.display(), error = %failure.message, "fetching into the existing cache failed; removing it and fetching again");
                    drop(local);
                    cache::wipe(paths).map_err(corrupt)?;
                    repaired = true;
                    continue;
                }
                Err(failure) => {
                    let failure = if failure.kind == GitErrorKind::Other && !local.has_object(id) {
                        Failure {
                            kind: GitErrorKind::CommitNotFound,
                            message: format!(
                                "commit {id} could not be fetched (the remote may not have it, or may not serve unadvertised commits): {}",
                                failure.message
                            ),
                            ..failure
                        }
                    } else {
                        failure
                    };
                    return Err(error(failure));
                }
            }
            let listed = open_packs(local.git_dir())
                .map_err(TreeError::Corrupt)
                .and_then(|packs| {
                    let root = tree::checked_root(&local, id)?;
                    let listing = tree::list_tree(&local, Some(&packs), root)?;
                    Ok((root, packs, listing))
                });
            match listed {
                Ok((root, packs, listing)) => {
                    return Ok(self.artifact(revision, repo, root, packs, Some(listing)));
                }
                Err(TreeError::Missing) => {
                    return Err(error(Failure::new(
                        GitErrorKind::CommitNotFound,
                        format!("the remote did not send commit {id}"),
                    )));
                }
                Err(TreeError::NotACommit(message)) => {
                    return Err(error(Failure::new(GitErrorKind::CommitNotFound, message)));
                }
                Err(TreeError::Corrupt(problem)) if !repaired => {
                    tracing::warn!(cache = %paths.repo.display(), %problem, "the fetched commit cannot be read; removing the cache and fetching again");
                    drop(local);
                    cache::wipe(paths).map_err(corrupt)?;
                    repaired = true;
                }
                Err(TreeError::Corrupt(problem)) => return Err(corrupt(problem)),
            }
        }
    }

    fn artifact(
        &self,
        revision: &Revision,
        repo: gix::ThreadSafeRepository,
        root: gix::ObjectId,
        packs: pack::Packs,
        listing: Option<crate::Listing>,
    ) -> GitArtifact {
        for warning in listing.iter().flat_map(|listing| &listing.warnings) {
            tracing::warn!(repo = %self.remote.redacted, revision = %revision, "{warning}");
        }
        let packs = Arc::new(packs);
        *self.packs.lock().unwrap_or_else(PoisonError::into_inner) = Arc::downgrade(&packs);
        GitArtifact::new(
            revision.clone(),
            self.remote.redacted.clone(),
            repo,
            root,
            packs,
            listing,
        )
    }

    fn changed_paths(&self, from: &Revision, to: &Revision) -> Result<Option<Vec<String>>> {
        let error = |failure: Failure| failure.into_error("diff", self.shown_url(), Some(&to.id));
        let (Ok(from_id), Ok(to_id)) = (
            gix::ObjectId::from_hex(from.id.as_bytes()),
            gix::ObjectId::from_hex(to.id.as_bytes()),
        ) else {
            return Ok(None);
        };
        if !self.remote.paths.repo.exists() {
            return Ok(None);
        }
        // Read-only: no lock needed (fetches only add objects).
        let Ok(repo) = gix::open_opts(&self.remote.paths.repo, gix::open::Options::isolated())
        else {
            return Ok(None);
        };
        let shared = self
            .packs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .upgrade();
        // No artifact alive (a diff on its own): open the packs; gix reads what they cannot.
        let packs = shared.or_else(|| open_packs(repo.git_dir()).ok().map(Arc::new));
        match tree::changed_paths(repo, packs.as_deref(), from_id, to_id) {
            Ok(paths) => Ok(paths),
            // Beyond the shallow boundary, or not fetched: the engine compares everything.
            Err(TreeError::Missing) => Ok(None),
            Err(TreeError::NotACommit(message)) => {
                Err(error(Failure::new(GitErrorKind::CommitNotFound, message)))
            }
            Err(TreeError::Corrupt(problem)) => {
                Err(error(Failure::new(GitErrorKind::Corrupt, problem)))
            }
        }
    }
}
