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
    /// `etcd`, `kube-apiserver` or `kubectl` has not been built (see [`crate::kube_api`]).
    #[error(
        "the test Kubernetes binaries are not built{}: {detail}; run `hack/kube.sh install` \
         (builds etcd, kube-apiserver and kubectl once, then caches them)",
        dir.as_ref().map(|d| format!(" in {}", d.display())).unwrap_or_default()
    )]
    KubeBinaries {
        /// Where they were looked for, when known.
        dir: Option<PathBuf>,
        /// What is missing.
        detail: String,
    },
    /// A Kubernetes client operation (loading a kubeconfig, a request) failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was being done, with the resource name.
        what: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Kube`] with context.
    pub fn kube(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Kube {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// An [`Error::Io`] with context.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
