//! How an artifact becomes the live directory: the `SyncStrategy` trait.

use std::path::PathBuf;
use std::sync::Arc;

use crate::{Artifact, Profile, Revision, SyncReport, TemplateContext};

/// Everything a strategy needs to plan one sync.
#[derive(Clone)]
pub struct SyncRequest {
    /// The tree to sync from.
    pub artifact: Arc<dyn Artifact>,
    /// The resolved profile (mappings, excludes, vars).
    pub profile: Profile,
    /// Template variables (the profile's vars are already in `context.vars`).
    pub context: TemplateContext,
    /// The live directory (the gateway's data directory).
    pub live: PathBuf,
    /// Compute the report, write nothing.
    pub dry_run: bool,
    /// Source paths changed since `previous`, when the source could tell; `None` compares
    /// everything.
    pub changed_paths: Option<Vec<String>>,
    /// The revision the live directory was last synced to, when known.
    pub previous: Option<Revision>,
}

impl std::fmt::Debug for SyncRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncRequest")
            .field("revision", self.artifact.revision())
            .field("profile", &self.profile.name)
            .field("live", &self.live)
            .field("dry_run", &self.dry_run)
            .finish_non_exhaustive()
    }
}

/// Plans and applies a sync. Both steps block (file I/O): call them from a worker thread
/// (`tokio::task::spawn_blocking`), never on an async executor.
pub trait SyncStrategy: Send + Sync {
    /// What `plan` decided; `apply` carries it out.
    type Plan: Send;
    /// The strategy's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides what to write and delete. Reads the artifact and the live directory, writes
    /// nothing.
    fn plan(&self, request: &SyncRequest) -> Result<Self::Plan, Self::Error>;

    /// Carries out a plan (or, for a dry run, only reports it).
    fn apply(&self, plan: Self::Plan) -> Result<SyncReport, Self::Error>;
}
