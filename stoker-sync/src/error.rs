//! The one error type of `stoker-sync`.

use std::path::PathBuf;

/// Result with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop a sync. Each variant names the input at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from `stoker-core` (template, path, profile, artifact read…).
    #[error(transparent)]
    Core(Box<stoker_core::Error>),

    /// A mapping cannot be used as written.
    #[error("mappings[{index}] ({source_path} -> {destination}): {message}")]
    Mapping {
        /// Position in the profile's `mappings`.
        index: usize,
        /// The mapping's source, as rendered.
        source_path: String,
        /// The mapping's destination, as rendered.
        destination: String,
        /// What is wrong.
        message: String,
    },

    /// Two desired files cannot both exist (one would have to be a directory).
    #[error(
        "destination conflict: {path:?} (from mappings[{mapping}]) is a file, but mappings[{other_mapping}] puts {other:?} below it"
    )]
    Conflict {
        /// The file path.
        path: String,
        /// The mapping producing it.
        mapping: usize,
        /// The path below it.
        other: String,
        /// The mapping producing that one.
        other_mapping: usize,
    },

    /// The live directory holds something the engine refuses to write through or replace.
    #[error("live directory: {path}: {reason}")]
    UnsafeLive {
        /// The offending path in the live directory.
        path: PathBuf,
        /// Why the engine stopped.
        reason: String,
    },

    /// Another sync holds the lock on this live directory.
    #[error("another sync is running on {live} (lock {lock} is held)")]
    Locked {
        /// The live directory.
        live: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },

    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file's content could not be produced (template, patch, binary file).
    #[error("{path}: {message}")]
    Content {
        /// The destination path.
        path: String,
        /// What is wrong.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<stoker_core::Error>>,
    },

    /// The manifest could not be encoded.
    #[error("{path}: {source}")]
    Manifest {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: postcard::Error,
    },

    /// The journal or diff report could not be serialised.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },

    /// Ignition Designer sessions are open and the profile's policy says not to sync.
    #[error("{count} Designer session(s) open ({sessions}); designerSessionPolicy is {policy}, sync not started", count = .sessions.len(), sessions = .sessions.join(", "))]
    DesignerSessionsOpen {
        /// The open sessions.
        sessions: Vec<String>,
        /// `fail`, or `wait` after its deadline.
        policy: &'static str,
    },

    /// The blocking sync task could not finish (panicked or was cancelled).
    #[error("sync task did not finish: {0}")]
    Task(String),

    /// A failure injected by a test (feature `fault-injection`), standing for a crash.
    #[error("injected failure after {0} file-system steps")]
    Injected(u64),
}

// Boxed: `stoker_core::Error` carries Git context and would make every `Result` here large.
impl From<stoker_core::Error> for Error {
    fn from(error: stoker_core::Error) -> Self {
        Error::Core(Box::new(error))
    }
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn unsafe_live(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::UnsafeLive {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
