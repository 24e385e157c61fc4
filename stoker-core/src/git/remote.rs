//! Talking to the remote with gix: credentials, SSH options, listing refs, fetching; and
//! turning gix's errors into classified failures.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use gix::protocol::transport::client::blocking_io::{Transport, http as blocking_http};
use gix::remote::Direction;
use gix::remote::fetch::{Shallow, Tags};

use super::cache::CachePaths;
use super::github_app::{GithubApp, InstallationToken};
use super::http::DirectHttp;
use super::redact::{redact_text, split_credentials};
use super::refs::AdvertisedRef;
use super::ssh::{self, SshFailure, SshOptions};
use super::{GitAuth, GitSourceConfig};
use crate::error::{Error, GitErrorKind, GithubAppErrorKind};

/// What the connects of one operation share.
pub(crate) struct Setup {
    /// The SSH options, for SSH URLs.
    pub ssh: Option<SshOptions>,
    /// Options to open repositories with.
    pub open: gix::open::Options,
}

/// A classified failure, before it becomes an [`Error::Git`] with its operation and reference.
#[derive(Debug)]
pub(crate) struct Failure {
    pub kind: GitErrorKind,
    pub message: String,
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Failure {
    pub fn new(kind: GitErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            source: None,
        }
    }

    pub fn into_error(self, operation: &'static str, url: &str, reference: Option<&str>) -> Error {
        Error::Git {
            operation,
            url: url.to_owned(),
            reference: reference.map(str::to_owned),
            kind: self.kind,
            message: self.message,
            source: self.source,
        }
    }
}

/// What the remote side of a [`GitSource`](super::GitSource) knows: the URL without
/// credentials, how to authenticate, and the cached GitHub App token.
pub(crate) struct Remote {
    /// The URL handed to gix: no password in it.
    pub url: String,
    /// The URL for logs and errors.
    pub redacted: String,
    url_user: Option<String>,
    url_password: Option<String>,
    auth: GitAuth,
    is_ssh: bool,
    is_http: bool,
    pub paths: CachePaths,
    pub depth: u32,
    pub progress: bool,
    github_token: Mutex<Option<InstallationToken>>,
    ssh_log_counter: AtomicU64,
    /// Extra trusted CAs for HTTPS.
    certificates: Option<Vec<reqwest::Certificate>>,
    /// How long an HTTP(S) response may send nothing.
    stall_timeout: Duration,
}

impl Remote {
    pub fn new(config: &GitSourceConfig) -> Result<Remote, Failure> {
        let split = split_credentials(config.url.trim());
        let redacted = super::redact_url(config.url.trim());
        let parsed =
            gix::url::parse(gix::bstr::BStr::new(split.url.as_str())).map_err(|error| {
                Failure::new(
                    GitErrorKind::Config,
                    format!("not a Git URL: {}", redact_text(&error.to_string(), &[])),
                )
            })?;
        refuse_transport(&parsed.scheme)?;
        let is_ssh = parsed.scheme == gix::url::Scheme::Ssh;
        let is_http = matches!(
            parsed.scheme,
            gix::url::Scheme::Http | gix::url::Scheme::Https
        );
        match &config.auth {
            GitAuth::Token { .. } | GitAuth::GithubApp { .. } if !is_http => {
                return Err(Failure::new(
                    GitErrorKind::Config,
                    "token and GitHub App authentication need an http(s):// URL",
                ));
            }
            GitAuth::SshKey { .. } if !is_ssh => {
                return Err(Failure::new(
                    GitErrorKind::Config,
                    "SSH key authentication needs an ssh:// or user@host:path URL",
                ));
            }
            _ => {}
        }
        let has_credentials = split.password.is_some()
            || matches!(
                config.auth,
                GitAuth::Token { .. } | GitAuth::GithubApp { .. }
            );
        if parsed.scheme == gix::url::Scheme::Http && has_credentials {
            return Err(Failure::new(
                GitErrorKind::Config,
                "refusing to send credentials over plain http://: use https://",
            ));
        }
        let certificates = match &config.ca_file {
            Some(path) if is_http => {
                let pem = std::fs::read(path).map_err(|error| {
                    Failure::new(
                        GitErrorKind::Config,
                        format!("reading the CA file {}: {error}", path.display()),
                    )
                })?;
                let certificates =
                    reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
                        Failure::new(
                            GitErrorKind::Config,
                            format!(
                                "the CA file {} holds no usable PEM certificates: {error}",
                                path.display()
                            ),
                        )
                    })?;
                Some(certificates)
            }
            _ => None,
        };
        let paths = CachePaths::new(&config.cache_dir, &split.url);
        Ok(Remote {
            url: split.url,
            redacted,
            url_user: split.user,
            url_password: split.password,
            auth: config.auth.clone(),
            is_ssh,
            is_http,
            paths,
            depth: config.depth,
            progress: config.progress,
            github_token: Mutex::new(None),
            ssh_log_counter: AtomicU64::new(0),
            certificates,
            stall_timeout: config.stall_timeout,
        })
    }

    /// The HTTP account to offer when the server asks, read fresh from the secret files.
    fn http_account(&self) -> Result<Option<gix::sec::identity::Account>, Failure> {
        if !self.is_http {
            return Ok(None);
        }
        let account = |username: &str, password: String| gix::sec::identity::Account {
            username: username.to_owned(),
            password,
            oauth_refresh_token: None,
        };
        match &self.auth {
            GitAuth::Token { token_file } => {
                let token = std::fs::read_to_string(token_file).map_err(|error| {
                    Failure::new(
                        GitErrorKind::Config,
                        format!("reading the token file {}: {error}", token_file.display()),
                    )
                })?;
                let token = token.trim_end_matches(['\n', '\r']).to_owned();
                if token.is_empty() {
                    return Err(Failure::new(
                        GitErrorKind::Config,
                        format!("the token file {} is empty", token_file.display()),
                    ));
                }
                Ok(Some(account("x-access-token", token)))
            }
            GitAuth::GithubApp { .. } => {
                Ok(Some(account("x-access-token", self.github_app_token()?)))
            }
            GitAuth::None | GitAuth::SshKey { .. } => {
                Ok(self.url_password.clone().map(|password| {
                    account(
                        self.url_user.as_deref().unwrap_or("x-access-token"),
                        password,
                    )
                }))
            }
        }
    }

    /// The cached installation token, or a new one when it expires within 5 minutes.
    fn github_app_token(&self) -> Result<String, Failure> {
        let GitAuth::GithubApp {
            app_id,
            installation_id,
            private_key_file,
            api_base_url,
        } = &self.auth
        else {
            return Err(Failure::new(
                GitErrorKind::Config,
                "not a GitHub App source",
            ));
        };
        let mut cached = self
            .github_token
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = SystemTime::now();
        if let Some(token) = cached.as_ref()
            && !token.needs_refresh(now)
        {
            return Ok(token.token.clone());
        }
        let pem = std::fs::read(private_key_file).map_err(|error| {
            Failure::new(
                GitErrorKind::Config,
                format!(
                    "reading the GitHub App private key {}: {error}",
                    private_key_file.display()
                ),
            )
        })?;
        let app = GithubApp::new(app_id.clone(), *installation_id)
            .with_api_base_url(api_base_url.clone());
        let token = app.installation_token(&pem).map_err(|error| {
            let kind = match error.github_app_kind() {
                Some(GithubAppErrorKind::Rejected) => GitErrorKind::Auth,
                Some(GithubAppErrorKind::Transient) => GitErrorKind::Transient,
                Some(GithubAppErrorKind::InvalidKey) => GitErrorKind::Config,
                _ => GitErrorKind::Other,
            };
            Failure::new(
                kind,
                format!(
                    "GitHub App (private key {}): {error}",
                    private_key_file.display()
                ),
            )
        })?;
        tracing::debug!(repo = %self.redacted, "obtained a GitHub App installation token");
        let value = token.token.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// Forgets a cached token that the server rejected.
    pub fn forget_token(&self) {
        *self
            .github_token
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The SSH options of one connect, with its own log file.
    fn ssh_options(&self) -> Result<Option<SshOptions>, Failure> {
        if !self.is_ssh {
            return Ok(None);
        }
        let private = self.paths.private_dir();
        std::fs::create_dir_all(&private).map_err(|error| {
            Failure::new(
                GitErrorKind::Config,
                format!("creating {}: {error}", private.display()),
            )
        })?;
        let log_file = private.join(format!(
            "ssh-{}-{}.log",
            std::process::id(),
            self.ssh_log_counter.fetch_add(1, Ordering::Relaxed)
        ));
        let (key_file, known_hosts_file, accept) = match &self.auth {
            GitAuth::SshKey {
                key_file,
                known_hosts_file,
                accept_unknown_host_keys,
            } => {
                let key = ssh::usable_key_file(key_file, &private).map_err(|error| {
                    Failure::new(
                        GitErrorKind::Config,
                        format!("reading the SSH key {}: {error}", key_file.display()),
                    )
                })?;
                if let Some(known_hosts) = known_hosts_file
                    && let Err(error) = std::fs::metadata(known_hosts)
                {
                    return Err(Failure::new(
                        GitErrorKind::Config,
                        format!(
                            "reading the known_hosts file {}: {error}",
                            known_hosts.display()
                        ),
                    ));
                }
                (
                    Some(key),
                    known_hosts_file.clone(),
                    *accept_unknown_host_keys,
                )
            }
            _ => (None, None, false),
        };
        if known_hosts_file.is_none() {
            if accept {
                tracing::warn!(repo = %self.redacted, "connecting without verifying the SSH host key (accept_unknown_host_keys is set and there is no known_hosts file)");
            } else if matches!(self.auth, GitAuth::SshKey { .. }) {
                return Err(Failure::new(
                    GitErrorKind::HostKey,
                    "no known_hosts file is configured, so the server's host key cannot be verified; \
                     provide one, or explicitly accept unknown host keys",
                ));
            }
        }
        Ok(Some(SshOptions {
            key_file,
            known_hosts_file,
            accept_unknown_host_keys: accept,
            log_file,
        }))
    }

    /// The SSH options and repository-open options of one operation (its connects share an
    /// SSH log file, read and removed after each connect).
    pub fn setup(&self) -> Result<Setup, Failure> {
        let ssh = self.ssh_options()?;
        let mut overrides = vec!["protocol.version=2".to_owned()];
        if let Some(ssh) = &ssh {
            overrides.push(format!("core.sshCommand={}", ssh::ssh_command(ssh)));
        }
        // Nothing from the user's or the system's Git configuration or environment.
        let open = gix::open::Options::isolated().config_overrides(overrides);
        Ok(Setup { ssh, open })
    }

    /// Lists the refs the remote advertises under the prefixes of `refspecs` (`git ls-remote`),
    /// peeled.
    pub fn list_refs(
        &self,
        setup: &Setup,
        refspecs: &[String],
    ) -> Result<Vec<AdvertisedRef>, Failure> {
        let scratch = super::cache::open_scratch(&self.paths, &setup.open)
            .map_err(|message| Failure::new(GitErrorKind::Other, message))?
            .to_thread_local();
        let account = self.http_account()?;
        let result = (|| -> gix::Result<Vec<AdvertisedRef>> {
            let remote = self.remote(&scratch, refspecs)?;
            let connection = self
                .connect(&remote)?
                .with_credentials(credentials_callback(account));
            let (ref_map, _handshake) = connection.ref_map(
                gix::progress::Discard,
                gix::remote::ref_map::Options::default(),
            )?;
            Ok(ref_map.remote_refs.iter().filter_map(advertised).collect())
        })();
        self.finish(result, setup.ssh.as_ref())
    }

    /// Fetches `refspecs` into the cache repository (opened with `setup.open`), shallow to the
    /// configured depth.
    pub fn fetch(
        &self,
        setup: &Setup,
        repo: &gix::Repository,
        refspecs: &[String],
        cancel: &AtomicBool,
    ) -> Result<(), Failure> {
        let account = self.http_account()?;
        let depth = self.depth;
        let (progress, reporter) = if self.progress {
            let (root, reporter) =
                super::progress::Reporter::start(self.redacted.clone(), Duration::from_secs(2));
            (Some(root), Some(reporter))
        } else {
            (None, None)
        };
        let started = Instant::now();
        // The first fetch into an empty cache, the big one, goes through Stoker's own pack
        // indexer (see `first_fetch`); later ones, small and possibly thin, through gix's. (A
        // pack without its index was removed when the cache was opened.) The measurement switch
        // of the `testing` feature (`super::gix_path`) sends the first fetch to gix's too.
        let first = super::cache::pack_count(repo.git_dir()) == 0 && !super::gix_path();
        let result = (|| -> gix::Result<Option<u32>> {
            let remote = self.remote(repo, refspecs)?;
            let shallow = match std::num::NonZeroU32::new(depth) {
                Some(depth) => Shallow::DepthAtRemote(depth),
                None if repo.is_shallow()? => Shallow::undo(),
                None => Shallow::NoChange,
            };
            let progress = gix::progress::DoOrDiscard::from(progress);
            if first {
                let mut connection = self.connect(&remote)?;
                let fetched = super::first_fetch::fetch(
                    repo,
                    connection.transport_mut(),
                    credentials_callback(account),
                    refspecs,
                    &shallow,
                    progress,
                    cancel,
                )?;
                return Ok(fetched.objects);
            }
            let outcome = self
                .connect(&remote)?
                .with_credentials(credentials_callback(account))
                .prepare_fetch(
                    gix::progress::Discard,
                    gix::remote::ref_map::Options::default(),
                )?
                .with_shallow(shallow)
                .with_write_packed_refs_only(true)
                .receive(progress, cancel)?;
            Ok(match outcome.status {
                gix::remote::fetch::Status::Change {
                    write_pack_bundle, ..
                } => Some(write_pack_bundle.index.num_objects),
                gix::remote::fetch::Status::NoPackReceived { .. } => None,
            })
        })();
        drop(reporter);
        match self.finish(result, setup.ssh.as_ref())? {
            Some(objects) => tracing::info!(
                repo = %self.redacted,
                objects,
                first,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "fetched"
            ),
            None => tracing::debug!(repo = %self.redacted, "fetch: nothing new"),
        }
        Ok(())
    }

    /// An anonymous remote for the URL in `repo`, fetching exactly `refspecs` and no tags.
    fn remote<'repo>(
        &self,
        repo: &'repo gix::Repository,
        refspecs: &[String],
    ) -> gix::Result<gix::Remote<'repo>> {
        repo.remote_at(self.url.as_str())?
            .with_fetch_tags(Tags::None)
            .with_refspecs(refspecs.iter().map(String::as_str), Direction::Fetch)
    }

    /// Connects for fetching: HTTP(S) through [`DirectHttp`] (see its module for why not
    /// gix's backend), the other schemes through gix.
    fn connect<'remote, 'repo>(
        &self,
        remote: &'remote gix::Remote<'repo>,
    ) -> gix::Result<gix::remote::Connection<'remote, 'static, 'repo, Box<dyn Transport + Send>>>
    {
        if !self.is_http {
            return remote.connect(Direction::Fetch);
        }
        let (url, version) = remote.sanitized_url_and_version(Direction::Fetch)?;
        let transport = blocking_http::connect_http(
            DirectHttp::new(self.certificates.clone(), self.stall_timeout),
            url,
            version,
            false,
        );
        Ok(remote.to_connection_with_transport(Box::new(transport) as Box<dyn Transport + Send>))
    }

    /// Classifies a gix result, consulting (and removing) the connect's SSH log.
    fn finish<T>(&self, result: gix::Result<T>, ssh: Option<&SshOptions>) -> Result<T, Failure> {
        let log = ssh.and_then(|ssh| {
            let log = std::fs::read_to_string(&ssh.log_file).ok();
            let _ = std::fs::remove_file(&ssh.log_file);
            log
        });
        let error = match result {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let failure = classify(error, log.as_deref());
        if failure.kind == GitErrorKind::Auth {
            self.forget_token();
        }
        Err(failure)
    }
}

/// Refuses the transports Stoker does not speak, by the parsed URL's scheme: `ext::` runs a
/// local command (git itself disables it by default) and `<helper>::`/`<helper>://` would run a
/// `git-remote-<helper>` program. Only `https://`, `http://`, `ssh://` (or `user@host:path`),
/// `git://` and `file://` (or a local path) are allowed.
fn refuse_transport(scheme: &gix::url::Scheme) -> Result<(), Failure> {
    use gix::url::Scheme;
    const ALLOWED: &str = "Stoker fetches over https://, http://, ssh:// (or user@host:path), git:// and file:// only";
    match scheme {
        Scheme::File | Scheme::Git | Scheme::Ssh | Scheme::Http | Scheme::Https => Ok(()),
        Scheme::Ext => Err(Failure::new(
            GitErrorKind::Config,
            format!(
                "the ext:: protocol is not allowed: it runs a command on this machine; {ALLOWED}"
            ),
        )),
        Scheme::Helper(helper) | Scheme::HelperUrl(helper) => Err(Failure::new(
            GitErrorKind::Config,
            format!(
                "the {helper:?} protocol is not allowed: it needs the remote helper git-remote-{helper}; {ALLOWED}"
            ),
        )),
    }
}

fn credentials_callback(
    account: Option<gix::sec::identity::Account>,
) -> impl FnMut(
    gix::credentials::helper::Action,
) -> gix::Result<Option<gix::credentials::protocol::Outcome>> {
    move |action| match action {
        gix::credentials::helper::Action::Get(context) => {
            Ok(account
                .clone()
                .map(|identity| gix::credentials::protocol::Outcome {
                    identity,
                    next: context.into(),
                }))
        }
        // Nothing is stored: the secrets live in their files.
        gix::credentials::helper::Action::Store(_) | gix::credentials::helper::Action::Erase(_) => {
            Ok(None)
        }
    }
}

fn advertised(reference: &gix::protocol::handshake::Ref) -> Option<AdvertisedRef> {
    use gix::protocol::handshake::Ref;
    let (name, object) = match reference {
        Ref::Peeled {
            full_ref_name,
            object,
            ..
        }
        | Ref::Direct {
            full_ref_name,
            object,
        }
        | Ref::Symbolic {
            full_ref_name,
            object,
            ..
        } => (full_ref_name, object),
        Ref::Unborn { .. } => return None,
    };
    Some(AdvertisedRef {
        name: String::from_utf8_lossy(name).into_owned(),
        target: object.to_string(),
    })
}

/// Sorts a gix error (and what ssh logged) into: authentication, host key, transient, other.
pub(crate) fn classify(error: gix::Error, ssh_log: Option<&str>) -> Failure {
    let cause = redact_text(&error.probable_cause().to_string(), &[]);
    let (kind, message) = match ssh_log.and_then(ssh::classify_log) {
        Some(SshFailure::HostKey(line)) => (
            GitErrorKind::HostKey,
            format!("the server's SSH host key could not be verified: {line}"),
        ),
        Some(SshFailure::PermissionDenied(line)) => (
            GitErrorKind::Auth,
            format!("the SSH server refused the key: {line}"),
        ),
        Some(SshFailure::Network(line)) => (GitErrorKind::Transient, format!("ssh: {line}")),
        None if error.is_cancelled() => (GitErrorKind::Cancelled, "cancelled".to_owned()),
        // reqwest reports TLS failures as connect errors, which gix marks retryable: a server
        // certificate that does not verify will not verify on the next attempt either.
        None if is_certificate_error(&error) => (
            GitErrorKind::Certificate,
            format!("the server's TLS certificate is not trusted (see `ca_file`): {cause}"),
        ),
        None if error.is_unauthenticated() || error.is_permission_denied() => (
            GitErrorKind::Auth,
            format!("the server rejected the credentials: {cause}"),
        ),
        None if error.can_retry_lenient() || error.is_retryable() => {
            (GitErrorKind::Transient, cause)
        }
        None => (GitErrorKind::Other, cause),
    };
    Failure {
        kind,
        message,
        source: Some(Box::new(error)),
    }
}

/// Whether a TLS certificate verification failure is anywhere in the error's causes.
fn is_certificate_error(error: &gix::Error) -> bool {
    let text = format!("{error:#} {error:?}");
    [
        "invalid peer certificate",
        "InvalidCertificate",
        "certificate verify failed",
        "UnknownIssuer",
        "NotValidForName",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Runs `attempt` until it succeeds, fails permanently, or the policy gives up on transient
/// failures. Waits are cut short by `cancel`.
pub(crate) fn with_retry<T>(
    policy: &super::RetryPolicy,
    redacted: &str,
    what: &str,
    cancel: &AtomicBool,
    mut attempt: impl FnMut() -> Result<T, Failure>,
) -> Result<T, Failure> {
    let started = Instant::now();
    let mut attempts = 0u32;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(Failure::new(GitErrorKind::Cancelled, "cancelled"));
        }
        attempts += 1;
        let failure = match attempt() {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        if failure.kind != GitErrorKind::Transient {
            return Err(failure);
        }
        let Some(delay) = policy.next_delay(attempts, started.elapsed()) else {
            return Err(Failure {
                message: format!("{} (gave up after {attempts} attempts)", failure.message),
                ..failure
            });
        };
        tracing::warn!(
            repo = %redacted,
            attempt = attempts,
            retry_in_ms = delay.as_millis() as u64,
            error = %failure.message,
            "{what} failed; retrying"
        );
        let until = Instant::now() + delay;
        while Instant::now() < until {
            if cancel.load(Ordering::Relaxed) {
                return Err(Failure::new(GitErrorKind::Cancelled, "cancelled"));
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(100)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::RetryPolicy;

    #[test]
    fn retries_only_transient_failures() {
        let policy = RetryPolicy {
            initial_delay: Duration::from_millis(1),
            max_attempts: 4,
            ..RetryPolicy::default()
        };
        let cancel = AtomicBool::new(false);
        let mut calls = 0;
        let result: Result<(), Failure> = with_retry(&policy, "u", "fetch", &cancel, || {
            calls += 1;
            Err(Failure::new(GitErrorKind::Transient, "503"))
        });
        assert_eq!(calls, 4);
        assert!(
            result
                .unwrap_err()
                .message
                .contains("gave up after 4 attempts")
        );
        let mut calls = 0;
        let result: Result<(), Failure> = with_retry(&policy, "u", "fetch", &cancel, || {
            calls += 1;
            Err(Failure::new(GitErrorKind::Auth, "401"))
        });
        assert_eq!(calls, 1);
        assert_eq!(result.unwrap_err().kind, GitErrorKind::Auth);
        let mut calls = 0;
        let result = with_retry(&policy, "u", "fetch", &cancel, || {
            calls += 1;
            if calls < 3 {
                Err(Failure::new(GitErrorKind::Transient, "reset"))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(result.unwrap(), 3);
    }

    #[test]
    fn cancellation_stops_the_waiting() {
        let policy = RetryPolicy {
            initial_delay: Duration::from_secs(3600),
            ..RetryPolicy::default()
        };
        let cancel = AtomicBool::new(false);
        let started = Instant::now();
        let result: Result<(), Failure> = with_retry(&policy, "u", "fetch", &cancel, || {
            cancel.store(true, Ordering::Relaxed);
            Err(Failure::new(GitErrorKind::Transient, "timeout"))
        });
        assert_eq!(result.unwrap_err().kind, GitErrorKind::Cancelled);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn auth_must_match_the_url_scheme() {
        let config = GitSourceConfig::new("ssh://git@host/r", "/tmp/c").with_auth(GitAuth::Token {
            token_file: "/t".into(),
        });
        assert_eq!(
            Remote::new(&config).err().unwrap().kind,
            GitErrorKind::Config
        );
        let config = GitSourceConfig::new("https://host/r", "/tmp/c").with_auth(GitAuth::SshKey {
            key_file: "/k".into(),
            known_hosts_file: None,
            accept_unknown_host_keys: false,
        });
        assert_eq!(
            Remote::new(&config).err().unwrap().kind,
            GitErrorKind::Config
        );
        let remote =
            Remote::new(&GitSourceConfig::new("https://u:secret@host/r", "/tmp/c")).unwrap();
        assert_eq!(remote.url, "https://host/r");
        assert_eq!(remote.redacted, "https://***@host/r");
        assert!(!remote.paths.repo.to_string_lossy().contains("secret"));
    }

    #[test]
    fn ext_and_remote_helper_urls_are_refused_by_scheme() {
        for url in [
            "ext::sh -c touch% /tmp/pwned",
            "ext://host/repo",
            "fd::17",
            "codecommit::eu-central-1://repo",
        ] {
            let failure = Remote::new(&GitSourceConfig::new(url, "/tmp/c"))
                .err()
                .unwrap_or_else(|| panic!("{url} accepted"));
            assert_eq!(failure.kind, GitErrorKind::Config, "{url}");
            assert!(
                failure.message.contains("protocol is not allowed"),
                "{url}: {}",
                failure.message
            );
            assert!(!failure.message.contains("credentials"), "{url}");
        }
        let ext = Remote::new(&GitSourceConfig::new("ext::sh -c x", "/tmp/c"))
            .err()
            .unwrap();
        assert!(ext.message.contains("ext::"), "{}", ext.message);
        for url in [
            "https://h/r",
            "http://h/r",
            "ssh://git@h/r",
            "git@h:r",
            "git://h/r",
            "file:///srv/r",
            "/srv/r",
        ] {
            assert!(
                Remote::new(&GitSourceConfig::new(url, "/tmp/c")).is_ok(),
                "{url}"
            );
        }
    }
}
