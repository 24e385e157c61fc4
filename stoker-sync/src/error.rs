//! The one error type of `stoker-sync`.

use std::path::PathBuf;
use std::time::Duration;

use stoker_core::DesignerSessionPolicy;

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

    /// Ignition Designer sessions are open and the profile's policy says not to sync: nothing
    /// was written.
    #[error("{count} Designer session(s) open ({sessions}); designerSessionPolicy is {how}, sync not started", count = .sessions.len(), sessions = .sessions.join(", "), how = held_back(*.policy, *.gave_up))]
    DesignerSessionsOpen {
        /// The open sessions.
        sessions: Vec<String>,
        /// The profile's policy: `fail`, or `wait`.
        policy: DesignerSessionPolicy,
        /// Under `wait`, how long it waited before giving up; `None` when `fail` refused at
        /// once.
        gave_up: Option<Duration>,
    },

    /// The live directory's file system has less free space than the plan's writes need:
    /// nothing was written. Checked before an apply writes anything (not in a dry run).
    #[error(
        "not enough free space for this sync in {live}: it needs {needed} bytes ({needed_mib} MiB: the new files, which all exist before the files they replace are removed, and a margin for the engine's own files), the file system has {available} bytes ({available_mib} MiB) available; nothing was written",
        needed_mib = mib(*.needed),
        available_mib = mib(*.available)
    )]
    InsufficientSpace {
        /// The live directory.
        live: PathBuf,
        /// Bytes the apply may need, rounded up to the file system's blocks.
        needed: u64,
        /// Bytes the file system says are available to the agent (`f_bavail × f_frsize`).
        available: u64,
    },

    /// The file system filled up (`ENOSPC`, or a quota: `EDQUOT`) part way through an apply.
    /// Each file is still old or new, never partial: `applied` lists (the first
    /// [`APPLIED_LISTED`] of) those already at the new revision; every other planned file is as
    /// it was. The manifest was not updated, so the next sync plans every file and converges
    /// once there is room.
    #[error(
        "the file system of {live} is full: {source}; {applied_count} of {planned} file(s) to write are already at revision {revision}{listed}, the others are as before; free some space and sync again (the next sync converges)",
        listed = list_paths(.applied, *.applied_count)
    )]
    DiskFull {
        /// The live directory.
        live: PathBuf,
        /// The revision being applied.
        revision: String,
        /// How many files the plan writes.
        planned: usize,
        /// How many of them are in place at the new revision.
        applied_count: usize,
        /// The first [`APPLIED_LISTED`] of them, sorted.
        applied: Vec<String>,
        /// The write (or state file) that failed.
        #[source]
        source: Box<Error>,
    },

    /// A file to render as a template or patch is larger than the engine keeps in memory.
    /// Transformed files are configuration text; files copied as they are stream, whatever
    /// their size.
    #[error(
        "{path}: its source {source_path} is {size} bytes; files rendered as templates or patched are held in memory and may be at most {limit} bytes (mappings[{mapping}]; map it without `template` or `patches` to copy it as it is)"
    )]
    TooLargeToTransform {
        /// The destination path.
        path: String,
        /// The source path in the artifact.
        source_path: String,
        /// The mapping that transforms it.
        mapping: usize,
        /// The source's size (or, when it grew while being read, more than `limit`).
        size: u64,
        /// [`crate::content::MAX_TRANSFORMED_BYTES`].
        limit: u64,
    },

    /// The blocking sync task could not finish (panicked or was cancelled).
    #[error("sync task did not finish: {0}")]
    Task(String),

    /// A failure injected by a test (feature `fault-injection`), standing for a crash.
    #[error("injected failure after {0} file-system steps")]
    Injected(u64),
}

/// What part of a sync an [`Error`] is about: one of the categories stoker-core's errors have
/// too, or Designer sessions holding the sync back. [`Error::category`] matches every variant
/// by name, so a variant added later must be given its category; deliberately not
/// `#[non_exhaustive]`, so that those matching on it (the agent's metric label) have to place
/// a new category too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// Git, the gateway, the configuration, the file system, or other
    /// ([`stoker_core::error::ErrorCategory`]).
    General(stoker_core::error::ErrorCategory),
    /// Open Designer sessions and the profile's policy held the sync back
    /// ([`Error::DesignerSessionsOpen`]).
    DesignerSessions,
}

/// How many paths [`Error::DiskFull`] lists.
pub const APPLIED_LISTED: usize = 20;

/// How the policy held the sync back, for [`Error::DesignerSessionsOpen`]'s message.
fn held_back(policy: DesignerSessionPolicy, gave_up: Option<Duration>) -> &'static str {
    match (policy, gave_up) {
        (DesignerSessionPolicy::Wait, Some(_)) => "wait (gave up after the deadline)",
        (DesignerSessionPolicy::Wait, None) => "wait",
        (DesignerSessionPolicy::Fail, _) => "fail",
        (DesignerSessionPolicy::Proceed, _) => "proceed",
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / f64::from(1 << 20))
}

fn list_paths(paths: &[String], count: usize) -> String {
    if paths.is_empty() {
        return String::new();
    }
    let more = count.saturating_sub(paths.len());
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(" ({}{tail})", paths.join(", "))
}

// Boxed: `stoker_core::Error` carries Git context and would make every `Result` here large.
impl From<stoker_core::Error> for Error {
    fn from(error: stoker_core::Error) -> Self {
        Error::Core(Box::new(error))
    }
}

impl Error {
    /// A short, stable `snake_case` label of what went wrong, for metric labels and log fields
    /// (one per variant; a core error is labelled by its own kind). Never changes for a
    /// variant once released, whatever its message says.
    ///
    /// ```
    /// let error = stoker_sync::Error::Task("cancelled".into());
    /// assert_eq!(error.reason(), "task");
    /// ```
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Core(core) => core_reason(core),
            Error::Mapping { .. } => "mapping",
            Error::Conflict { .. } => "conflict",
            Error::UnsafeLive { .. } => "unsafe_live",
            Error::Locked { .. } => "locked",
            Error::Io { .. } => "io",
            Error::Content { .. } => "content",
            Error::Manifest { .. } => "manifest",
            Error::Json { .. } => "json",
            Error::DesignerSessionsOpen { .. } => "designer_sessions_open",
            Error::InsufficientSpace { .. } => "insufficient_space",
            Error::DiskFull { .. } => "disk_full",
            Error::TooLargeToTransform { .. } => "too_large_to_transform",
            Error::Task(_) => "task",
            Error::Injected(_) => "injected",
        }
    }

    /// What part of a sync this error is about ([`ErrorCategory`]); a core error has its own
    /// category.
    pub fn category(&self) -> ErrorCategory {
        use stoker_core::error::ErrorCategory as General;
        let general = match self {
            Error::Core(core) => core.category(),
            Error::DesignerSessionsOpen { .. } => return ErrorCategory::DesignerSessions,
            Error::Mapping { .. }
            | Error::Conflict { .. }
            | Error::Content { .. }
            | Error::Json { .. } => General::Config,
            Error::UnsafeLive { .. } | Error::Locked { .. } | Error::Io { .. } => {
                General::Filesystem
            }
            Error::Manifest { .. }
            | Error::InsufficientSpace { .. }
            | Error::DiskFull { .. }
            | Error::TooLargeToTransform { .. }
            | Error::Task(_)
            | Error::Injected(_) => General::Other,
        };
        ErrorCategory::General(general)
    }

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

    /// True when this is the file system running out of space (`ENOSPC`) or quota (`EDQUOT`).
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Io { source, .. } => is_disk_full_io(source),
            Error::DiskFull { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn unsafe_live(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::UnsafeLive {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// `ENOSPC` or `EDQUOT`.
/// [`Error::reason`] of a core error: its kind.
fn core_reason(error: &stoker_core::Error) -> &'static str {
    use stoker_core::Error as Core;
    match error {
        Core::Template { .. } => "template",
        Core::TemplateLimit { .. } => "template_limit",
        Core::Patch { .. } => "patch",
        Core::InvalidPath { .. } => "invalid_path",
        Core::Profile { .. } => "profile",
        Core::NotFound { .. } => "not_found",
        Core::Io { .. } => "core_io",
        Core::Plugin { .. } => "plugin",
        Core::Git { .. } => "git",
        Core::Gateway { .. } => "gateway",
        Core::GithubApp { .. } => "github_app",
        // `stoker_core::Error` is non-exhaustive: a kind added later is labelled here first.
        _ => "core",
    }
}

pub(crate) fn is_disk_full_io(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn representative_errors_get_their_category() {
        let io = || std::io::Error::other("x");
        let errors = [
            Error::from(stoker_core::Error::template("a", "unknown variable")),
            Error::from(stoker_core::Error::io("reading", "a", io())),
            Error::DesignerSessionsOpen {
                sessions: vec!["s".into()],
                policy: DesignerSessionPolicy::Wait,
                gave_up: Some(Duration::from_secs(1)),
            },
            Error::Conflict {
                path: "a".into(),
                mapping: 0,
                other: "a/b".into(),
                other_mapping: 1,
            },
            Error::Locked {
                live: "a".into(),
                lock: "b".into(),
            },
            Error::Task("t".into()),
        ];
        use stoker_core::error::ErrorCategory::{Config, Filesystem, Other};
        let categories: Vec<ErrorCategory> = errors.iter().map(Error::category).collect();
        assert_eq!(
            categories,
            [
                ErrorCategory::General(Config),
                ErrorCategory::General(Filesystem),
                ErrorCategory::DesignerSessions,
                ErrorCategory::General(Config),
                ErrorCategory::General(Filesystem),
                ErrorCategory::General(Other)
            ]
        );
    }

    /// Each variant has its own label, `snake_case`, whatever its message.
    #[test]
    fn reasons_are_distinct_snake_case_labels() {
        let io = || std::io::Error::other("x");
        let errors = [
            Error::from(stoker_core::Error::io("reading", "a", io())),
            Error::Mapping {
                index: 0,
                source_path: "a".into(),
                destination: "b".into(),
                message: "m".into(),
            },
            Error::unsafe_live("a", "r"),
            Error::Locked {
                live: "a".into(),
                lock: "b".into(),
            },
            Error::io("reading", "a", io()),
            Error::DesignerSessionsOpen {
                sessions: vec!["s".into()],
                policy: DesignerSessionPolicy::Fail,
                gave_up: None,
            },
            Error::InsufficientSpace {
                live: "a".into(),
                needed: 2,
                available: 1,
            },
            Error::Task("t".into()),
            Error::Injected(1),
        ];
        let reasons: Vec<&str> = errors.iter().map(Error::reason).collect();
        assert_eq!(
            reasons,
            [
                "core_io",
                "mapping",
                "unsafe_live",
                "locked",
                "io",
                "designer_sessions_open",
                "insufficient_space",
                "task",
                "injected"
            ]
        );
        for reason in reasons {
            assert!(
                reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{reason}"
            );
        }
    }
}
