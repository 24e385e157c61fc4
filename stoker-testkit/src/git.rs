//! Every Git transport over one root of bare repositories, once per test binary.
//!
//! [`servers()`] starts, the first time it is called: smart HTTP without auth, smart HTTP with a
//! token, `git daemon` and `sshd`, all on loopback and all serving the same temporary root.
//! Tests then make their own repositories under it with [`GitServers::new_repo`] (unique
//! names, so tests can run in parallel) and clone them over any transport:
//!
//! ```no_run
//! use stoker_testkit::git::servers;
//! let s = servers();
//! let repo = s.new_repo("my-test");
//! let commit = repo.commit("main", &[("a.txt", b"hello")], "first").expect("commit");
//! let http = s.http_url(&repo);        // http://127.0.0.1:P/my-test-….git
//! let token = s.http_token_url(&repo); // needs s.token() (Basic password or Bearer)
//! let git = s.daemon_url(&repo);       // git://127.0.0.1:P/my-test-….git
//! let ssh = s.ssh_url(&repo);          // ssh://USER@127.0.0.1:P/ABS/ROOT/my-test-….git
//! let file = repo.file_url();          // file:///ABS/ROOT/my-test-….git
//! // ssh needs GIT_SSH_COMMAND = s.ssh().git_ssh_command()
//! ```
//!
//! # Reusing servers started by a script
//!
//! When `STOKER_TEST_GIT_ROOT` is set, nothing is started: every variable below must be set
//! and name servers that serve that root (`hack/git-servers.sh start` writes them to
//! `target/git-servers/env`):
//!
//! | variable | value |
//! |---|---|
//! | `STOKER_TEST_GIT_ROOT` | the directory of bare repositories all servers serve |
//! | `STOKER_TEST_GIT_HTTP_URL` | `http://127.0.0.1:PORT`, smart HTTP, no auth |
//! | `STOKER_TEST_GIT_HTTP_TOKEN_URL` | `http://127.0.0.1:PORT`, smart HTTP, token required |
//! | `STOKER_TEST_GIT_HTTP_TOKEN` | that token |
//! | `STOKER_TEST_GIT_DAEMON_URL` | `git://127.0.0.1:PORT` |
//! | `STOKER_TEST_GIT_SSH_URL` | `ssh://USER@127.0.0.1:PORT` |
//! | `STOKER_TEST_GIT_SSH_KEY` | the client's private key |
//! | `STOKER_TEST_GIT_SSH_KNOWN_HOSTS` | `known_hosts` with the real host key |
//! | `STOKER_TEST_GIT_SSH_WRONG_KNOWN_HOSTS` | `known_hosts` with a wrong key for the same host |
//!
//! Faults and counters of shared HTTP servers are shared too: scope faults to your repository
//! ([`Faults::for_repo`]) and read counters per repository ([`RequestStats::for_repo`]), or
//! start a private [`GitHttpServer`].

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::git_daemon::GitDaemon;
use crate::git_http::{GitHttpServer, HttpAdmin};
use crate::process::ExitTempDir;
use crate::repo::Repo;
use crate::sshd::{SshClient, Sshd};
use crate::{Error, Result};

pub use crate::git_http::{Faults, RequestStats};

/// Env var: the root of bare repositories (its presence means "reuse, start nothing").
pub const ENV_ROOT: &str = "STOKER_TEST_GIT_ROOT";
/// Env var: URL of the smart HTTP server without auth.
pub const ENV_HTTP_URL: &str = "STOKER_TEST_GIT_HTTP_URL";
/// Env var: URL of the smart HTTP server that requires the token.
pub const ENV_HTTP_TOKEN_URL: &str = "STOKER_TEST_GIT_HTTP_TOKEN_URL";
/// Env var: the token.
pub const ENV_HTTP_TOKEN: &str = "STOKER_TEST_GIT_HTTP_TOKEN";
/// Env var: URL of `git daemon`.
pub const ENV_DAEMON_URL: &str = "STOKER_TEST_GIT_DAEMON_URL";
/// Env var: `ssh://USER@127.0.0.1:PORT`.
pub const ENV_SSH_URL: &str = "STOKER_TEST_GIT_SSH_URL";
/// Env var: the SSH client key.
pub const ENV_SSH_KEY: &str = "STOKER_TEST_GIT_SSH_KEY";
/// Env var: `known_hosts` with the real host key.
pub const ENV_SSH_KNOWN_HOSTS: &str = "STOKER_TEST_GIT_SSH_KNOWN_HOSTS";
/// Env var: `known_hosts` with a wrong host key.
pub const ENV_SSH_WRONG_KNOWN_HOSTS: &str = "STOKER_TEST_GIT_SSH_WRONG_KNOWN_HOSTS";

/// The token of the token-protected server when this crate starts it.
pub const DEFAULT_TOKEN: &str = "stoker-test-token";

/// The servers of this test binary, started on first use (or taken from `STOKER_TEST_GIT_*`).
///
/// Panics with the reason (e.g. "sshd is not installed: run `hack/git-servers.sh install`")
/// when they cannot be started: a test that needs them cannot do anything else.
pub fn servers() -> &'static GitServers {
    static SERVERS: OnceLock<GitServers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let servers = match GitServers::from_env() {
            Ok(Some(servers)) => Ok(servers),
            Ok(None) => GitServers::start(None, None),
            Err(e) => Err(e),
        };
        servers.unwrap_or_else(|e| panic!("cannot start the Git test servers: {e}"))
    })
}

/// Smart HTTP (open and token), `git daemon` and `sshd` over one root of bare repositories.
#[derive(Debug)]
pub struct GitServers {
    root: PathBuf,
    http_url: String,
    http_token_url: String,
    token: String,
    daemon_url: String,
    ssh: SshClient,
    owned: Option<Owned>,
}

/// What this process started; dropping it stops everything (statics never drop, then the
/// processes die with the test binary).
#[derive(Debug)]
struct Owned {
    http: GitHttpServer,
    http_token: GitHttpServer,
    daemon: GitDaemon,
    sshd: Sshd,
    _temp: Option<ExitTempDir>,
}

impl GitServers {
    /// Starts all servers. `root` defaults to a temporary directory removed when this process
    /// exits; `state` (keys, configs, logs) defaults to a directory inside that one.
    pub fn start(root: Option<&Path>, state: Option<&Path>) -> Result<Self> {
        let temp = match root {
            Some(_) => None,
            None => Some(ExitTempDir::new("stoker-git-servers")?),
        };
        let (root, state) = match (root, &temp) {
            (Some(root), _) => (
                root.to_owned(),
                state.map_or_else(|| root.join(".state"), Path::to_owned),
            ),
            (None, Some(t)) => (
                t.path().join("repos"),
                state.map_or_else(|| t.path().join("state"), Path::to_owned),
            ),
            (None, None) => return Err(Error::Invalid("no root".into())),
        };
        for dir in [&root, &state] {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        }
        let root = root
            .canonicalize()
            .map_err(|e| Error::io(format!("canonicalize {}", root.display()), e))?;
        let token = DEFAULT_TOKEN.to_owned();
        let http = GitHttpServer::start(&root, None)?;
        let http_token = GitHttpServer::start(&root, Some(&token))?;
        let daemon = GitDaemon::start_logging_to(&root, &state.join("git-daemon.log"))?;
        let sshd = Sshd::start_in(&state.join("sshd"))?;
        Ok(Self {
            http_url: http.url(),
            http_token_url: http_token.url(),
            token,
            daemon_url: daemon.url(),
            ssh: sshd.client().clone(),
            root,
            owned: Some(Owned {
                http,
                http_token,
                daemon,
                sshd,
                _temp: temp,
            }),
        })
    }

    /// Servers named by `STOKER_TEST_GIT_*` (see the module docs); `None` when
    /// `STOKER_TEST_GIT_ROOT` is not set, an error when it is but another variable is missing.
    pub fn from_env() -> Result<Option<Self>> {
        let Some(root) = std::env::var_os(ENV_ROOT) else {
            return Ok(None);
        };
        let var = |name: &str| {
            std::env::var(name).map_err(|_| {
                Error::Invalid(format!("{ENV_ROOT} is set, so {name} must be set too"))
            })
        };
        let (http_url, http_token_url) = (var(ENV_HTTP_URL)?, var(ENV_HTTP_TOKEN_URL)?);
        // Checked here so that http_admin() cannot fail later.
        HttpAdmin::new(&http_url)?;
        HttpAdmin::new(&http_token_url)?;
        Ok(Some(Self {
            root: PathBuf::from(root),
            http_url,
            http_token_url,
            token: var(ENV_HTTP_TOKEN)?,
            daemon_url: var(ENV_DAEMON_URL)?,
            ssh: SshClient {
                base_url: var(ENV_SSH_URL)?,
                key: var(ENV_SSH_KEY)?.into(),
                known_hosts: var(ENV_SSH_KNOWN_HOSTS)?.into(),
                wrong_known_hosts: var(ENV_SSH_WRONG_KNOWN_HOSTS)?.into(),
            },
            owned: None,
        }))
    }

    /// The `STOKER_TEST_GIT_*` variables describing these servers, for [`GitServers::from_env`]
    /// in other processes.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (ENV_ROOT, self.root.display().to_string()),
            (ENV_HTTP_URL, self.http_url.clone()),
            (ENV_HTTP_TOKEN_URL, self.http_token_url.clone()),
            (ENV_HTTP_TOKEN, self.token.clone()),
            (ENV_DAEMON_URL, self.daemon_url.clone()),
            (ENV_SSH_URL, self.ssh.base_url.clone()),
            (ENV_SSH_KEY, self.ssh.key.display().to_string()),
            (
                ENV_SSH_KNOWN_HOSTS,
                self.ssh.known_hosts.display().to_string(),
            ),
            (
                ENV_SSH_WRONG_KNOWN_HOSTS,
                self.ssh.wrong_known_hosts.display().to_string(),
            ),
        ]
    }

    /// The directory of bare repositories every server serves.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A new, empty bare repository `ROOT/PREFIX-PID-N.git` (unique in this process and among
    /// processes sharing the root). Panics if `git init` fails.
    pub fn new_repo(&self, prefix: &str) -> Repo {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "{prefix}-{}-{}.git",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Repo::init(&self.root.join(name)).expect("git init --bare under the test root")
    }

    /// `http://127.0.0.1:PORT` of the server without auth.
    pub fn http_base(&self) -> &str {
        &self.http_url
    }

    /// `http://127.0.0.1:PORT` of the server that requires [`GitServers::token`].
    pub fn http_token_base(&self) -> &str {
        &self.http_token_url
    }

    /// The smart HTTP URL of `repo`, no auth.
    pub fn http_url(&self, repo: &Repo) -> String {
        format!("{}/{}", self.http_url, repo.name())
    }

    /// The smart HTTP URL of `repo` on the server that requires the token.
    pub fn http_token_url(&self, repo: &Repo) -> String {
        format!("{}/{}", self.http_token_url, repo.name())
    }

    /// [`GitServers::http_token_url`] with `user:password@` in it (any user name works).
    pub fn http_token_url_with_password(&self, repo: &Repo, password: &str) -> String {
        let rest = self
            .http_token_url
            .strip_prefix("http://")
            .unwrap_or(&self.http_token_url);
        format!("http://git:{password}@{rest}/{}", repo.name())
    }

    /// The token the token-protected server wants.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Faults and counters of the server without auth.
    pub fn http_admin(&self) -> HttpAdmin {
        HttpAdmin::new(&self.http_url).expect("STOKER_TEST_GIT_HTTP_URL is http://IP:PORT")
    }

    /// Faults and counters of the server that requires the token.
    pub fn http_token_admin(&self) -> HttpAdmin {
        HttpAdmin::new(&self.http_token_url)
            .expect("STOKER_TEST_GIT_HTTP_TOKEN_URL is http://IP:PORT")
    }

    /// `git://127.0.0.1:PORT`.
    pub fn daemon_base(&self) -> &str {
        &self.daemon_url
    }

    /// The `git://` URL of `repo`.
    pub fn daemon_url(&self, repo: &Repo) -> String {
        format!("{}/{}", self.daemon_url, repo.name())
    }

    /// The `ssh://` URL of `repo`.
    pub fn ssh_url(&self, repo: &Repo) -> String {
        self.ssh.url(repo.path())
    }

    /// Key, `known_hosts` files and `GIT_SSH_COMMAND` for SSH.
    pub fn ssh(&self) -> &SshClient {
        &self.ssh
    }

    /// Whether this process started the servers (rather than reusing them from the env).
    pub fn is_owned(&self) -> bool {
        self.owned.is_some()
    }

    /// Stops the servers this process started (a no-op for reused ones).
    pub fn stop(mut self) {
        if let Some(owned) = self.owned.take() {
            let Owned {
                http,
                http_token,
                daemon,
                sshd,
                _temp,
            } = owned;
            http.shutdown();
            http_token.shutdown();
            daemon.stop();
            sshd.stop();
        }
    }
}
