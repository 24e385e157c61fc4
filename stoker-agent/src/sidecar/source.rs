//! The Git source as the sidecar uses it: the operator's commit pinned (no `ls-remote` from
//! every gateway for every sync), fetches timed for `stoker_agent_git_fetch_duration_seconds`.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use stoker_core::git::{GitAuth, GitSource, GitSourceConfig, RetryPolicy};
use stoker_core::{Artifact, Revision, Source};

use crate::sidecar::metrics::{AgentMetrics, FetchOperation};

/// Fetch retries inside one sync: short, since the sidecar's own backoff retries the whole
/// sync and a long wait inside would delay reacting to a new commit or a SIGTERM.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        initial_delay: std::time::Duration::from_secs(1),
        multiplier: 2,
        max_delay: std::time::Duration::from_secs(8),
        max_attempts: 3,
        deadline: Some(std::time::Duration::from_secs(60)),
    }
}

/// What identifies one Git source: rebuilt when any of it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceKey {
    /// The repository URL.
    pub url: String,
    /// Credentials.
    pub auth: GitAuth,
}

/// The Git source, rebuilt only when the URL or the credentials change (it remembers which ref
/// names resolved to what, and the cache stays on disk either way).
#[derive(Debug, Default)]
pub struct SourceCache {
    current: Option<(SourceKey, GitSource)>,
}

impl SourceCache {
    /// The source for `key`, with its cache in `cache_dir` and extra CAs from `ca_file`.
    pub fn get(
        &mut self,
        key: &SourceKey,
        cache_dir: &std::path::Path,
        ca_file: Option<&std::path::Path>,
    ) -> stoker_core::Result<GitSource> {
        if let Some((current, source)) = &self.current
            && current == key
        {
            return Ok(source.clone());
        }
        let mut config = GitSourceConfig::new(key.url.clone(), cache_dir)
            .with_auth(key.auth.clone())
            .with_retry(retry_policy());
        if let Some(ca_file) = ca_file {
            config = config.with_ca_file(ca_file);
        }
        let source = GitSource::new(config)?;
        self.current = Some((key.clone(), source.clone()));
        Ok(source)
    }
}

/// A [`Source`] over Git that answers the operator's ref with the operator's commit, and
/// times fetches.
pub struct PinnedSource {
    inner: GitSource,
    pinned: Option<(String, String)>,
    metrics: AgentMetrics,
}

impl PinnedSource {
    /// `reference` resolves to `commit` without asking the remote when `pinned` is
    /// `Some((reference, commit))`; other references are resolved by `inner`.
    pub fn new(inner: GitSource, pinned: Option<(String, String)>, metrics: AgentMetrics) -> Self {
        PinnedSource {
            inner,
            pinned,
            metrics,
        }
    }
}

#[async_trait]
impl Source for PinnedSource {
    fn kind(&self) -> &'static str {
        "git"
    }

    async fn resolve(&self, reference: &str) -> stoker_core::Result<Revision> {
        if let Some((pinned, commit)) = &self.pinned
            && pinned == reference
        {
            return Ok(Revision::new(commit.clone()).with_reference(reference));
        }
        self.inner.resolve(reference).await
    }

    async fn fetch(&self, revision: &Revision) -> stoker_core::Result<Arc<dyn Artifact>> {
        // A clone when the cache has no repository for this URL yet.
        let operation = if self.inner.cache_repository().exists() {
            FetchOperation::Fetch
        } else {
            FetchOperation::Clone
        };
        let started = Instant::now();
        let fetched = self.inner.fetch(revision).await;
        let took = started.elapsed();
        self.metrics.fetched(operation, took, fetched.is_ok());
        tracing::debug!(
            revision = %revision,
            elapsed_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            ok = fetched.is_ok(),
            "fetched"
        );
        fetched
    }

    async fn changed_paths(
        &self,
        from: &Revision,
        to: &Revision,
    ) -> stoker_core::Result<Option<Vec<String>>> {
        self.inner.changed_paths(from, to).await
    }
}
