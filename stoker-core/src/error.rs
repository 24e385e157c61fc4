//! The one error type of `stoker-core`.

use std::path::PathBuf;

/// Result with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `stoker-core`.
///
/// Every variant names the input that was wrong (a template, a path, a mapping, a file) so that
/// the one line a user sees is enough to find it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A template could not be parsed or rendered.
    #[error("template {template:?}: {message}")]
    Template {
        /// Which template: a mapping field (`mappings[0].source`) or a file path.
        template: String,
        /// What is wrong, e.g. `unknown variable .Vars.site`.
        message: String,
    },

    /// A JSON field patch could not be applied.
    #[error("patch of {file:?} at {path:?}: {message}")]
    Patch {
        /// The file being patched.
        file: String,
        /// The dot path being set (`connection.host`).
        path: String,
        /// What is wrong.
        message: String,
    },

    /// A relative path (mapping source or destination, artifact entry) is not acceptable.
    #[error("invalid path {path:?} in {context}: {reason}")]
    InvalidPath {
        /// The offending path, as rendered.
        path: String,
        /// Where it came from (`mappings[1].destination`, an artifact entry…).
        context: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// A profile is not usable (unknown name, bad glob, bad variable name…).
    #[error("profile {profile:?}: {message}")]
    Profile {
        /// The profile name.
        profile: String,
        /// What is wrong.
        message: String,
    },

    /// A path was not found in an artifact.
    #[error("{path:?} not found in revision {revision}")]
    NotFound {
        /// The artifact path.
        path: String,
        /// The revision looked in.
        revision: String,
    },

    /// An I/O error on a named file or directory.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`reading`, `listing`…).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A failure inside a `Source`, `Notifier` or `Gateway` implementation (plugins wrap their
    /// own errors here).
    #[error("{component}: {message}")]
    Plugin {
        /// Which component (`git source`, `ignition gateway`, …).
        component: String,
        /// What happened, without credentials.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Shorthand for [`Error::Template`].
    pub fn template(template: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Template {
            template: template.into(),
            message: message.into(),
        }
    }
}
