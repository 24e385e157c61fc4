//! How a [`GitSource`](super::GitSource) is configured: URL, credentials, cache, retries.

use std::path::PathBuf;
use std::time::Duration;

/// Everything a [`GitSource`](super::GitSource) needs.
///
/// ```
/// use stoker_core::git::{GitAuth, GitSourceConfig};
/// let config = GitSourceConfig::new("https://github.com/acme/gateways.git", "/var/cache/stoker")
///     .with_auth(GitAuth::Token { token_file: "/etc/stoker/git-token".into() });
/// assert_eq!(config.depth, 1);
/// ```
#[derive(Debug, Clone)]
pub struct GitSourceConfig {
    /// The repository: `https://…`, `http://…`, `ssh://…`, `user@host:path`, `git://…` or
    /// `file://…`. Credentials embedded in the URL are accepted (the password is then used as
    /// the HTTP password) but never logged or shown.
    pub url: String,
    /// How to authenticate.
    pub auth: GitAuth,
    /// Where the bare cache repositories live (`<cache_dir>/<hash of url>.git`).
    pub cache_dir: PathBuf,
    /// History depth fetched: 1 (the default) fetches only the commit itself; 0 fetches the full
    /// history.
    pub depth: u32,
    /// How transient failures are retried.
    pub retry: RetryPolicy,
    /// Log fetch progress (objects and bytes received) every few seconds at `info` level.
    pub progress: bool,
    /// Extra certificate authorities (PEM) trusted for `https://`, on top of the system's: for
    /// servers with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Over HTTP(S), how long a response may go without sending anything (before its headers or
    /// within its body) before the request fails as transient and is retried; 30 s by default.
    pub stall_timeout: Duration,
}

impl GitSourceConfig {
    /// A configuration without credentials, depth 1, default retries, no progress.
    pub fn new(url: impl Into<String>, cache_dir: impl Into<PathBuf>) -> Self {
        GitSourceConfig {
            url: url.into(),
            auth: GitAuth::None,
            cache_dir: cache_dir.into(),
            depth: 1,
            retry: RetryPolicy::default(),
            progress: false,
            ca_file: None,
            stall_timeout: Duration::from_secs(30),
        }
    }

    /// Uses these credentials.
    pub fn with_auth(mut self, auth: GitAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Fetches this many commits of history (0: all).
    pub fn with_depth(mut self, depth: u32) -> Self {
        self.depth = depth;
        self
    }

    /// Retries transient failures this way.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Logs progress while fetching.
    pub fn with_progress(mut self, progress: bool) -> Self {
        self.progress = progress;
        self
    }

    /// Fails an HTTP(S) response that sends nothing for this long (as transient).
    pub fn with_stall_timeout(mut self, stall_timeout: Duration) -> Self {
        self.stall_timeout = stall_timeout;
        self
    }

    /// Also trusts the certificate authorities in this PEM file for `https://`.
    pub fn with_ca_file(mut self, ca_file: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(ca_file.into());
        self
    }
}

/// How to authenticate to the remote. Secrets are read from files (as a mounted Kubernetes
/// Secret provides them) on every connect, so a rotated secret is picked up without a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum GitAuth {
    /// Anonymous (or credentials embedded in the URL).
    #[default]
    None,
    /// HTTPS: a token sent as the Basic-auth password, user name `x-access-token` (GitHub,
    /// GitLab and Gitea accept this form). A trailing newline in the file is ignored. Never
    /// sent over plain `http://`.
    Token {
        /// The file holding the token.
        token_file: PathBuf,
    },
    /// SSH: a private key, and the `known_hosts` file that the server's host key must be in.
    SshKey {
        /// The private key file (no passphrase).
        key_file: PathBuf,
        /// The `known_hosts` file. Host keys are checked strictly against it.
        known_hosts_file: Option<PathBuf>,
        /// Connect without checking the host key when `known_hosts_file` is `None`. Must be set
        /// explicitly; every connect then logs a warning.
        accept_unknown_host_keys: bool,
    },
    /// A GitHub App installation: the App's private key signs a JWT that is exchanged for an
    /// installation token (cached, refreshed 5 minutes before it expires).
    GithubApp {
        /// The App's id (or client id).
        app_id: String,
        /// The installation id (the organisation or account the App is installed on).
        installation_id: u64,
        /// The App's private key (PEM, PKCS#1 as GitHub issues it, or PKCS#8).
        private_key_file: PathBuf,
        /// The REST API base: `https://api.github.com`, or `https://HOST/api/v3` for GitHub
        /// Enterprise Server.
        api_base_url: String,
    },
}

/// Exponential backoff for transient failures (network errors, timeouts, HTTP 5xx).
///
/// The delay before retry `n` (0-based) is `initial_delay * multiplier^n`, capped at `max_delay`.
/// Retrying stops after `max_attempts` attempts in all, or when the next attempt would start
/// after `deadline` (measured from the first attempt). Permanent failures (authentication, host
/// key, missing ref) are never retried.
///
/// ```
/// use std::time::Duration;
/// use stoker_core::git::RetryPolicy;
/// let policy = RetryPolicy::default();
/// let delays: Vec<_> = (0..5).map(|n| policy.delay(n).as_secs()).collect();
/// assert_eq!(delays, [30, 60, 120, 240, 300]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first delay (default 30 s).
    pub initial_delay: Duration,
    /// The factor between consecutive delays (default 2).
    pub multiplier: u32,
    /// The longest delay (default 5 min).
    pub max_delay: Duration,
    /// Attempts in all, the first one included (default 5; 1 disables retries).
    pub max_attempts: u32,
    /// Give up once this much time has passed since the first attempt (default: no deadline).
    pub deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_delay: Duration::from_secs(30),
            multiplier: 2,
            max_delay: Duration::from_secs(300),
            max_attempts: 5,
            deadline: None,
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay before retry number `retry` (0 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = u64::from(self.multiplier.max(1)).saturating_pow(retry);
        let nanos = self
            .initial_delay
            .as_nanos()
            .saturating_mul(u128::from(factor));
        let capped = nanos.min(self.max_delay.as_nanos());
        Duration::from_nanos(u64::try_from(capped).unwrap_or(u64::MAX))
    }

    /// Whether another attempt may start after `attempts` attempts that took `elapsed` so far,
    /// and if so after which delay.
    pub fn next_delay(&self, attempts: u32, elapsed: Duration) -> Option<Duration> {
        if attempts >= self.max_attempts {
            return None;
        }
        let delay = self.delay(attempts.saturating_sub(1));
        match self.deadline {
            Some(deadline) if elapsed + delay > deadline => None,
            _ => Some(delay),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(0), Duration::from_secs(30));
        assert_eq!(policy.delay(1), Duration::from_secs(60));
        assert_eq!(policy.delay(2), Duration::from_secs(120));
        assert_eq!(policy.delay(3), Duration::from_secs(240));
        assert_eq!(policy.delay(4), Duration::from_secs(300));
        assert_eq!(policy.delay(60), Duration::from_secs(300));
    }

    #[test]
    fn attempts_and_deadline_stop_retrying() {
        let policy = RetryPolicy {
            initial_delay: Duration::from_millis(10),
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert_eq!(
            policy.next_delay(1, Duration::ZERO),
            Some(Duration::from_millis(10))
        );
        assert_eq!(
            policy.next_delay(2, Duration::ZERO),
            Some(Duration::from_millis(20))
        );
        assert_eq!(policy.next_delay(3, Duration::ZERO), None);
        let policy = RetryPolicy {
            deadline: Some(Duration::from_secs(60)),
            ..RetryPolicy::default()
        };
        assert!(policy.next_delay(1, Duration::from_secs(10)).is_some());
        assert_eq!(policy.next_delay(1, Duration::from_secs(40)), None);
        assert_eq!(RetryPolicy::none().next_delay(1, Duration::ZERO), None);
    }
}
