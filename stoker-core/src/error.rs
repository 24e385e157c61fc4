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

    /// A template went past a render limit (nesting, steps, output size): it could not be
    /// rendered in bounded time and memory.
    #[error("template {template:?}: {limit}")]
    TemplateLimit {
        /// Which template: a mapping field (`mappings[0].source`) or a file path.
        template: String,
        /// Which limit.
        limit: TemplateLimit,
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

    /// A Git source operation failed. The URL is always redacted (no credentials); `kind` tells
    /// whether waiting, fixing credentials or fixing the reference is the remedy.
    #[error("git {operation} of {url}{}: {message}", .reference.as_ref().map(|r| format!(" at {r:?}")).unwrap_or_default())]
    Git {
        /// What was being done: `resolve`, `fetch`, `read`, `diff`.
        operation: &'static str,
        /// The repository URL, with credentials redacted.
        url: String,
        /// The reference or commit involved, if any.
        reference: Option<String>,
        /// The class of failure.
        kind: GitErrorKind,
        /// What happened, without credentials.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// A request to the application gateway (the Ignition REST API) failed. Never carries the
    /// API key; the URL has any user name and password removed.
    #[error("gateway {method} {url}: {}{message}", .status.map(|s| format!("HTTP {s}: ")).unwrap_or_default())]
    Gateway {
        /// The HTTP method (`GET`, `POST`).
        method: &'static str,
        /// The endpoint's full URL (`http://gw:8088/data/api/v1/scan/projects`), without
        /// credentials.
        url: String,
        /// The last HTTP status received, if the gateway answered at all.
        status: Option<u16>,
        /// The class of failure.
        kind: GatewayErrorKind,
        /// What happened (attempts made, the start of the answer's body…), without the key.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// Exchanging a GitHub App's private key for an installation access token failed
    /// (`git::GithubApp::installation_token`). Never carries the key, the JWT or a token.
    #[error("GitHub App token exchange at {url}: {}{message}", .status.map(|s| format!("HTTP {s}: ")).unwrap_or_default())]
    GithubApp {
        /// The token endpoint (`…/app/installations/{id}/access_tokens`), without credentials.
        url: String,
        /// The HTTP status GitHub answered with, if it answered at all.
        status: Option<u16>,
        /// The class of failure.
        kind: GithubAppErrorKind,
        /// What happened (GitHub's `message` when it gave one).
        message: String,
    },

    /// Delivering a notification failed ([`crate::notify`]). Never carries the webhook's URL
    /// (Slack's and Teams' URLs are credentials) nor its secret: the webhook is named by the
    /// label it was built with (`webhooks[0] (slack)`).
    #[error("notification to {webhook}: {}{message}", .status.map(|s| format!("HTTP {s}: ")).unwrap_or_default())]
    Notify {
        /// Which webhook: its label (`webhooks[0] (slack)`), never its URL.
        webhook: String,
        /// The HTTP status the receiver answered with, if it answered at all.
        status: Option<u16>,
        /// The class of failure.
        kind: NotifyErrorKind,
        /// How long the receiver asked to wait before the next attempt (`Retry-After`).
        retry_after: Option<std::time::Duration>,
        /// What happened, without the URL.
        message: String,
    },
}

/// What part of a sync an [`Error`] is about, for labels that group errors (the agent's
/// `reason` metric label). [`Error::category`] matches every variant by name, so a variant added
/// later must be given its category. Deliberately not `#[non_exhaustive]`: a crate matching on
/// it (the agent's metric label, through stoker-sync's category) then has to place a new
/// category too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// Reading from the Git repository.
    Git,
    /// A request to the application gateway.
    Gateway,
    /// The profile, a mapping, a template or a path in them cannot be used as written.
    Config,
    /// Reading or writing a local file or directory.
    Filesystem,
    /// Anything else (a limit, a plugin, a token exchange, a notification).
    Other,
}

/// The class of a [`Error::Notify`] failure: whether another attempt may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotifyErrorKind {
    /// No answer (connection refused or reset, timeout), HTTP 429 or 5xx: worth retrying.
    Transient,
    /// The receiver refused the request (another 4xx, a redirect): retrying the same request
    /// will not help.
    Rejected,
    /// The webhook is not usable as configured (a URL that does not parse, no routing key).
    Config,
}

impl NotifyErrorKind {
    /// True for failures worth retrying (network, timeout, 429, 5xx).
    pub fn is_transient(self) -> bool {
        matches!(self, NotifyErrorKind::Transient)
    }
}

impl std::fmt::Display for NotifyErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotifyErrorKind::Transient => "transient failure",
            NotifyErrorKind::Rejected => "rejected",
            NotifyErrorKind::Config => "invalid configuration",
        })
    }
}

/// The class of a [`Error::GithubApp`] failure: what the caller can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GithubAppErrorKind {
    /// GitHub refused the App's credentials or does not know the installation (HTTP 401, 403,
    /// 404, 422): a wrong key, App id or installation id. Waiting does not help.
    Rejected,
    /// The API could not be reached, timed out, or answered 429 or 5xx: worth retrying.
    Transient,
    /// The private key is not a usable RSA key in PEM form (or signing with it failed).
    InvalidKey,
    /// The API answered something that is not a token: an unreadable 2xx body, or a status
    /// that is neither success nor one of the above.
    BadResponse,
}

impl GithubAppErrorKind {
    /// True for failures worth retrying later without changing anything (network, 429, 5xx).
    pub fn is_transient(self) -> bool {
        matches!(self, GithubAppErrorKind::Transient)
    }
}

impl std::fmt::Display for GithubAppErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GithubAppErrorKind::Rejected => "credentials rejected",
            GithubAppErrorKind::Transient => "transient failure",
            GithubAppErrorKind::InvalidKey => "invalid private key",
            GithubAppErrorKind::BadResponse => "unexpected answer",
        })
    }
}

/// The class of a [`Error::Gateway`] failure: what the caller can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GatewayErrorKind {
    /// The API key was missing or rejected (HTTP 401 or 403). Not retried.
    Auth,
    /// The gateway's TLS certificate is not trusted. Not retried.
    Certificate,
    /// Nothing answered: connection refused, reset, unreachable, or a timeout, through every
    /// retry.
    Unreachable,
    /// The gateway answered with an unexpected status (5xx through every retry, 404, a
    /// redirect…).
    Status,
    /// A 2xx answer whose body could not be understood.
    InvalidResponse,
    /// The configuration is unusable (bad URL, unreadable API key or CA file).
    Config,
}

impl GatewayErrorKind {
    /// True for failures worth retrying later without changing anything (network, 5xx).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            GatewayErrorKind::Unreachable | GatewayErrorKind::Status
        )
    }
}

impl std::fmt::Display for GatewayErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GatewayErrorKind::Auth => "API key missing or rejected",
            GatewayErrorKind::Certificate => "TLS certificate not trusted",
            GatewayErrorKind::Unreachable => "gateway unreachable",
            GatewayErrorKind::Status => "unexpected answer",
            GatewayErrorKind::InvalidResponse => "invalid answer",
            GatewayErrorKind::Config => "invalid configuration",
        })
    }
}

/// The class of a [`Error::Git`] failure: what the caller can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GitErrorKind {
    /// Credentials were missing or rejected (HTTP 401/403, SSH permission denied). Not retried.
    Auth,
    /// The SSH host key could not be verified (unknown, changed, or no `known_hosts`). Not
    /// retried.
    HostKey,
    /// The server's TLS certificate is not trusted (unknown issuer, wrong name, expired). Not
    /// retried.
    Certificate,
    /// The reference does not exist on the remote (or an abbreviated SHA matches no ref tip).
    /// Not retried.
    RefNotFound,
    /// The commit is not available from the remote or not in the cache.
    CommitNotFound,
    /// A network failure, timeout or server error (HTTP 5xx) that persisted through every retry.
    Transient,
    /// The local cache could not be repaired.
    Corrupt,
    /// The configuration is unusable (bad URL, unreadable key or token file, wrong auth for the
    /// URL's scheme).
    Config,
    /// The operation was cancelled.
    Cancelled,
    /// Anything else the remote or the local repository reported.
    Other,
}

impl GitErrorKind {
    /// True for failures worth retrying later without changing anything (network, 5xx).
    pub fn is_transient(self) -> bool {
        matches!(self, GitErrorKind::Transient)
    }
}

impl std::fmt::Display for GitErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GitErrorKind::Auth => "authentication failed",
            GitErrorKind::HostKey => "host key verification failed",
            GitErrorKind::Certificate => "certificate verification failed",
            GitErrorKind::RefNotFound => "reference not found",
            GitErrorKind::CommitNotFound => "commit not found",
            GitErrorKind::Transient => "transient failure",
            GitErrorKind::Corrupt => "corrupt cache",
            GitErrorKind::Config => "invalid configuration",
            GitErrorKind::Cancelled => "cancelled",
            GitErrorKind::Other => "failed",
        })
    }
}

impl Error {
    /// What part of a sync this error is about ([`ErrorCategory`]).
    ///
    /// ```
    /// use stoker_core::error::{Error, ErrorCategory};
    /// assert_eq!(Error::template("x", "y").category(), ErrorCategory::Config);
    /// ```
    pub fn category(&self) -> ErrorCategory {
        match self {
            Error::Git { .. } => ErrorCategory::Git,
            Error::Gateway { .. } => ErrorCategory::Gateway,
            Error::Template { .. }
            | Error::Patch { .. }
            | Error::InvalidPath { .. }
            | Error::Profile { .. }
            | Error::NotFound { .. } => ErrorCategory::Config,
            Error::Io { .. } => ErrorCategory::Filesystem,
            Error::TemplateLimit { .. }
            | Error::Plugin { .. }
            | Error::GithubApp { .. }
            | Error::Notify { .. } => ErrorCategory::Other,
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// The class of a Git failure, for [`Error::Git`].
    pub fn git_kind(&self) -> Option<GitErrorKind> {
        match self {
            Error::Git { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The class of a gateway failure, for [`Error::Gateway`].
    pub fn gateway_kind(&self) -> Option<GatewayErrorKind> {
        match self {
            Error::Gateway { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The class of a GitHub App token failure, for [`Error::GithubApp`].
    pub fn github_app_kind(&self) -> Option<GithubAppErrorKind> {
        match self {
            Error::GithubApp { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The class of a notification failure, for [`Error::Notify`].
    pub fn notify_kind(&self) -> Option<NotifyErrorKind> {
        match self {
            Error::Notify { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// How long a webhook asked to wait before the next attempt, for [`Error::Notify`].
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Notify { retry_after, .. } => *retry_after,
            _ => None,
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

/// The render limit a template went past ([`Error::TemplateLimit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateLimit {
    /// `if` / `with` / `range` and parentheses nested deeper than `max`.
    Nesting {
        /// The limit.
        max: usize,
    },
    /// More than `max` execution steps (actions, commands, `range` iterations).
    Steps {
        /// The limit.
        max: usize,
    },
    /// Output longer than `max_bytes`.
    Output {
        /// The limit.
        max_bytes: usize,
    },
    /// Functions produced more than `max_bytes` in total, printed or not.
    Work {
        /// The limit.
        max_bytes: usize,
    },
}

impl std::fmt::Display for TemplateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateLimit::Nesting { max } => {
                write!(
                    f,
                    "control structures and parentheses nest deeper than {max}"
                )
            }
            TemplateLimit::Steps { max } => write!(f, "rendering takes more than {max} steps"),
            TemplateLimit::Output { max_bytes } => {
                write!(f, "output is longer than {max_bytes} bytes")
            }
            TemplateLimit::Work { max_bytes } => {
                write!(f, "functions produce more than {max_bytes} bytes")
            }
        }
    }
}

/// The messages of an error and of its causes (its [`source`](std::error::Error::source)
/// chain), outermost first, each printed once: a cause whose text is already contained in the
/// messages kept so far is skipped (many errors, ours included, repeat their source's text in
/// their own message), but its own causes are still looked at.
///
/// ```
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// let error = stoker_core::Error::io("reading", "/etc/stoker.yaml", io);
/// // The message already holds the I/O error's text: it is not repeated.
/// assert_eq!(stoker_core::error::causes(&error), ["reading /etc/stoker.yaml: no such file"]);
/// ```
pub fn causes(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(cause) = current {
        let text = cause.to_string();
        if !kept.iter().any(|k| k.contains(&text)) {
            kept.push(text);
        }
        current = cause.source();
    }
    kept
}

/// An error and its causes on one line, outermost first, `outer: cause: root cause`, each
/// cause once (see [`causes`]). This is how every Stoker binary prints an error and how logs
/// show one (`error = %chain(&error)`); `anyhow::Error` fits through `error.as_ref()`.
///
/// ```
/// let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
/// let error = stoker_core::Error::Plugin {
///     component: "git source".into(),
///     message: "opening the cache".into(),
///     source: Some(Box::new(stoker_core::Error::io("reading", "/cache/HEAD", io))),
/// };
/// assert_eq!(
///     stoker_core::error::chain(&error),
///     "git source: opening the cache: reading /cache/HEAD: no such file"
/// );
/// ```
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    causes(error).join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a message and an optional source, as `anyhow`'s context or a thiserror
    /// variant with `#[source]` builds them.
    #[derive(Debug)]
    struct Layer {
        message: String,
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    }

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.message)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.source.as_deref().map(|s| s as _)
        }
    }

    fn layer(message: &str, source: impl std::error::Error + Send + Sync + 'static) -> Layer {
        Layer {
            message: message.to_owned(),
            source: Some(Box::new(source)),
        }
    }

    #[test]
    fn representative_errors_get_their_category() {
        let git = Error::Git {
            operation: "resolve",
            url: "https://git.example/scada.git".into(),
            reference: Some("main".into()),
            kind: GitErrorKind::RefNotFound,
            message: "no such ref".into(),
            source: None,
        };
        let gateway = Error::Gateway {
            method: "POST",
            url: "http://gw:8088/data/api/v1/scan/projects".into(),
            status: Some(503),
            kind: GatewayErrorKind::Status,
            message: "unavailable".into(),
            source: None,
        };
        let not_found = Error::NotFound {
            path: "projects".into(),
            revision: "abc".into(),
        };
        let io = Error::io("reading", "/data", std::io::Error::other("x"));
        let limit = Error::TemplateLimit {
            template: "a".into(),
            limit: TemplateLimit::Steps { max: 1 },
        };
        let categories: Vec<ErrorCategory> = [git, gateway, not_found, io, limit]
            .iter()
            .map(Error::category)
            .collect();
        assert_eq!(
            categories,
            [
                ErrorCategory::Git,
                ErrorCategory::Gateway,
                ErrorCategory::Config,
                ErrorCategory::Filesystem,
                ErrorCategory::Other
            ]
        );
    }

    #[test]
    fn each_cause_is_printed_once() {
        let root = std::io::Error::from(std::io::ErrorKind::NotFound);
        let root_text = root.to_string();
        // `Io` shows its source in its own message *and* returns it as its source; the outer
        // layer repeats the whole inner message once more, as kube's and gix's errors do.
        let io = Error::io("creating live directory", "/data", root);
        let inner_text = io.to_string();
        let outer = layer(&format!("sync failed: {inner_text}"), io);
        let top = layer("stoker-agent sync", outer);
        let line = chain(&top);
        assert_eq!(
            line,
            format!("stoker-agent sync: sync failed: creating live directory /data: {root_text}")
        );
        assert_eq!(line.matches(&root_text).count(), 1, "{line}");
        assert_eq!(causes(&top).len(), 2);
    }

    #[test]
    fn a_skipped_cause_still_shows_its_own_causes() {
        let root = std::io::Error::other("disk full");
        let middle = layer("writing x", root);
        // The outer message repeats the middle one but not the root's text.
        let outer = layer("writing x (attempt 2)", middle);
        assert_eq!(chain(&outer), "writing x (attempt 2): disk full");
    }

    #[test]
    fn distinct_causes_are_all_kept() {
        let error = layer("a", layer("b", std::io::Error::other("c")));
        assert_eq!(causes(&error), ["a", "b", "c"]);
    }
}
