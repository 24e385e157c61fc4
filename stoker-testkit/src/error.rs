//! The one error type of the test kit.

use std::path::PathBuf;

/// Everything that can go wrong while starting servers or building repositories.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path or address.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An external command (`git`, `ssh-keygen`, …) exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, for humans.
        command: String,
        /// How it ended.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A server process did not start listening.
    #[error("{server} did not start: {detail}\n--- log {log} ---\n{log_tail}")]
    Startup {
        /// Which server.
        server: String,
        /// Why we gave up.
        detail: String,
        /// Where its output went.
        log: PathBuf,
        /// The end of that output.
        log_tail: String,
    },
    /// A required program is not installed.
    #[error("{program} is not installed: run `hack/git-servers.sh install`")]
    Missing {
        /// The program looked for.
        program: String,
    },
    /// Bad configuration (environment variables, arguments) or a bad answer from a server.
    #[error("{0}")]
    Invalid(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] with context.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
