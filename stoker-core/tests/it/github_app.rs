//! `GithubApp::installation_token` against the GitHub API double (stoker-testkit), and Git over
//! HTTPS with the tokens it issues: through `GitAuth::GithubApp` (the operator's own ls-remote)
//! and through a token file that is replaced between syncs (the agent, whose mounted Secret
//! the kubelet updates in place when the operator refreshes the token).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::git_support::{TlsProxy, fast_retries, runtime};
use stoker_core::git::{GitAuth, GitSource, GitSourceConfig, GithubApp};
use stoker_core::{Error, GitErrorKind, GithubAppErrorKind, Source};
use stoker_testkit::git::servers;
use stoker_testkit::git_http::GitHttpServer;
use stoker_testkit::github_api::{GithubApiDouble, generate_private_key_pem};

const APP_ID: &str = "12345";
const INSTALLATION: u64 = 678;

fn double() -> GithubApiDouble {
    GithubApiDouble::start(APP_ID, &[INSTALLATION]).unwrap()
}

fn app(api: &GithubApiDouble) -> GithubApp {
    GithubApp::new(APP_ID, INSTALLATION).with_api_base_url(api.url())
}

/// The error's kind and status.
fn class(error: &Error) -> (Option<GithubAppErrorKind>, Option<u16>) {
    match error {
        Error::GithubApp { kind, status, .. } => (Some(*kind), *status),
        _ => (None, None),
    }
}

#[test]
fn the_private_key_is_exchanged_for_an_installation_token() {
    let api = double();
    api.set_token_lifetime(Duration::from_secs(3600));
    let before = SystemTime::now();
    let token = app(&api)
        .installation_token(api.private_key_pem().as_bytes())
        .unwrap();
    assert!(token.token().starts_with("ghs_"));
    assert!(api.is_valid_token(token.token()));
    assert_eq!(api.calls(), 1);
    let issued = api.issued();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].installation_id, INSTALLATION);
    // `expires_at` as GitHub wrote it: whole seconds, an hour ahead.
    assert_eq!(token.expires_at(), issued[0].expires_at);
    let lifetime = token.expires_at().duration_since(before).unwrap();
    assert!(
        (Duration::from_secs(3598)..=Duration::from_secs(3601)).contains(&lifetime),
        "{lifetime:?}"
    );
    assert!(!format!("{token:?}").contains(token.token()), "{token:?}");
    // Every call is a new token.
    let second = app(&api)
        .installation_token(api.private_key_pem().as_bytes())
        .unwrap();
    assert_ne!(second.token(), token.token());
    assert_eq!(api.calls(), 2);
}

#[test]
fn a_key_github_does_not_know_is_rejected_with_githubs_message() {
    let api = double();
    let wrong_key = generate_private_key_pem().unwrap();
    let error = app(&api)
        .installation_token(wrong_key.as_bytes())
        .unwrap_err();
    assert_eq!(
        class(&error),
        (Some(GithubAppErrorKind::Rejected), Some(401)),
        "{error}"
    );
    assert!(
        error.to_string().contains("could not be verified"),
        "{error}"
    );
    assert!(!error.github_app_kind().unwrap().is_transient());

    // A wrong App id (the JWT's issuer) and an installation the App does not have, likewise.
    let key = api.private_key_pem().as_bytes();
    let other_app = GithubApp::new("999", INSTALLATION).with_api_base_url(api.url());
    let error = other_app.installation_token(key).unwrap_err();
    assert_eq!(
        class(&error),
        (Some(GithubAppErrorKind::Rejected), Some(401))
    );
    let other_installation = GithubApp::new(APP_ID, 1).with_api_base_url(api.url());
    let error = other_installation.installation_token(key).unwrap_err();
    assert_eq!(
        class(&error),
        (Some(GithubAppErrorKind::Rejected), Some(404))
    );
    assert!(
        error
            .to_string()
            .contains("/app/installations/1/access_tokens")
    );
    assert!(api.issued().is_empty());
}

#[test]
fn a_server_error_is_transient_and_the_next_call_succeeds() {
    let api = double();
    api.fail_next(1, 503);
    let key = api.private_key_pem().as_bytes();
    let error = app(&api).installation_token(key).unwrap_err();
    assert_eq!(
        class(&error),
        (Some(GithubAppErrorKind::Transient), Some(503))
    );
    assert!(error.github_app_kind().unwrap().is_transient());
    assert!(app(&api).installation_token(key).is_ok());
    assert_eq!(api.calls(), 2);

    // Nothing listening: transient too, without a status.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let error = GithubApp::new(APP_ID, INSTALLATION)
        .with_api_base_url(url)
        .installation_token(key)
        .unwrap_err();
    assert_eq!(class(&error), (Some(GithubAppErrorKind::Transient), None));
}

#[test]
fn an_unusable_key_fails_before_anything_is_sent() {
    let api = double();
    for key in [
        &b"not a key"[..],
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
    ] {
        let error = app(&api).installation_token(key).unwrap_err();
        assert_eq!(
            class(&error),
            (Some(GithubAppErrorKind::InvalidKey), None),
            "{error}"
        );
    }
    assert_eq!(api.calls(), 0);
}

/// A Git server over HTTPS that accepts the double's unexpired tokens as user
/// `x-access-token`.
fn https_for_app_tokens(api: &GithubApiDouble) -> (GitHttpServer, TlsProxy) {
    let server =
        GitHttpServer::start_with_password_check(servers().root(), api.password_check()).unwrap();
    let proxy = TlsProxy::start(server.addr());
    (server, proxy)
}

fn source(url: &str, cache: &Path, auth: GitAuth, proxy: &TlsProxy) -> GitSource {
    GitSource::new(
        GitSourceConfig::new(url, cache)
            .with_auth(auth)
            .with_ca_file(&proxy.ca_file)
            .with_retry(fast_retries()),
    )
    .unwrap()
}

#[test]
fn a_github_app_source_clones_with_an_issued_token_and_exchanges_once() {
    let api = double();
    let (server, proxy) = https_for_app_tokens(&api);
    let repo = servers().new_repo("github-app");
    let commit = repo
        .commit("main", &[("a.txt", b"hello\n")], "first")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("app.pem");
    std::fs::write(&key_file, api.private_key_pem()).unwrap();
    let url = format!("{}/{}", proxy.url(), repo.name());
    let auth = GitAuth::GithubApp {
        app_id: APP_ID.to_owned(),
        installation_id: INSTALLATION,
        private_key_file: key_file,
        api_base_url: api.url(),
    };
    let source = source(&url, &dir.path().join("cache"), auth, &proxy);
    let rt = runtime();
    let revision = rt.block_on(source.resolve("main")).unwrap();
    assert_eq!(revision.id, commit);
    let artifact = rt.block_on(source.fetch(&revision)).unwrap();
    assert_eq!(artifact.read("a.txt").unwrap(), b"hello\n");
    // The token is cached between the ls-remote and the fetch.
    assert_eq!(api.calls(), 1);
    assert!(server.stats().unauthorized >= 1, "{:?}", server.stats());
    server.shutdown();
}

/// Writes `token` the way the kubelet updates a mounted Secret: the file is a symlink through
/// `..data`, which is swapped atomically to a new directory.
fn kubelet_write(mount: &Path, token: &str, generation: u32) -> PathBuf {
    let data = mount.join(format!("..{generation}"));
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("token"), token).unwrap();
    let next = mount.join("..data_tmp");
    let _ = std::fs::remove_file(&next);
    std::os::unix::fs::symlink(data.file_name().unwrap(), &next).unwrap();
    std::fs::rename(&next, mount.join("..data")).unwrap();
    let file = mount.join("token");
    if std::fs::symlink_metadata(&file).is_err() {
        std::os::unix::fs::symlink("..data/token", &file).unwrap();
    }
    file
}

/// Regression guard for the agent: its Git source lives across syncs, so the token file must
/// be read at every connect, not once.
#[test]
fn a_token_file_replaced_between_syncs_is_read_again() {
    let api = double();
    let (server, proxy) = https_for_app_tokens(&api);
    let repo = servers().new_repo("github-app-rotated");
    let commit = repo
        .commit("main", &[("a.txt", b"one\n")], "first")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("git-token");
    let app = app(&api);
    let key = api.private_key_pem().as_bytes();

    // A token that expired (issued with no lifetime left): refused.
    api.set_token_lifetime(Duration::ZERO);
    let expired = app.installation_token(key).unwrap();
    let token_file = kubelet_write(&mount, expired.token(), 1);
    let url = format!("{}/{}", proxy.url(), repo.name());
    let source = source(
        &url,
        &dir.path().join("cache"),
        GitAuth::Token { token_file },
        &proxy,
    );
    let rt = runtime();
    let error = rt.block_on(source.resolve("main")).unwrap_err();
    assert_eq!(error.git_kind(), Some(GitErrorKind::Auth), "{error}");

    // The operator refreshes it; the same source picks the new one up.
    api.set_token_lifetime(Duration::from_secs(3600));
    let fresh = app.installation_token(key).unwrap();
    kubelet_write(&mount, fresh.token(), 2);
    assert_eq!(rt.block_on(source.resolve("main")).unwrap().id, commit);
    server.shutdown();
}
