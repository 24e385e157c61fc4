//! The Git source against real servers on loopback (stoker-testkit): smart HTTP with and
//! without a token, with injected failures; sshd with keys and known_hosts.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::git_support::{TlsProxy, fast_retries, runtime};
use stoker_core::git::{GitAuth, GitSource, GitSourceConfig, RetryPolicy};
use stoker_core::{GitErrorKind, Source};
use stoker_testkit::git::{Faults, servers};
use stoker_testkit::git_http::GitHttpServer;
use stoker_testkit::repo::{Change, Repo};

/// A repository with one commit on `main` and an annotated tag `v1`.
fn repo(prefix: &str) -> (Repo, String) {
    let repo = servers().new_repo(prefix);
    let commit = repo
        .commit_changes(
            "main",
            &[
                Change::Write("README.md", b"hello\n"),
                Change::Executable("run.sh", b"#!/bin/sh\n"),
                Change::Symlink("link", "README.md"),
                Change::Write("projects/demo/project.json", b"{}\n"),
            ],
            "first",
        )
        .unwrap();
    repo.annotated_tag("v1", &commit, "release").unwrap();
    (repo, commit)
}

fn source(url: &str, cache: &Path, auth: GitAuth) -> GitSource {
    GitSource::new(
        GitSourceConfig::new(url, cache)
            .with_auth(auth)
            .with_retry(fast_retries()),
    )
    .unwrap()
}

fn token_file(dir: &Path, token: &str) -> std::path::PathBuf {
    let path = dir.join("token");
    // As a mounted Secret often has it: with a trailing newline.
    std::fs::write(&path, format!("{token}\n")).unwrap();
    path
}

/// Every rendering of an error, its source chain included.
fn all_text(error: &stoker_core::Error) -> String {
    let mut text = format!("{error}\n{error:?}\n");
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(error) = cause {
        text.push_str(&format!("{error}\n{error:?}\n"));
        cause = error.source();
    }
    text
}

#[test]
fn smart_http_resolves_fetches_and_fetches_incrementally() {
    let (repo, commit) = repo("http-open");
    let cache = tempfile::tempdir().unwrap();
    let source = source(&servers().http_url(&repo), cache.path(), GitAuth::None);
    let rt = runtime();
    let v1 = rt.block_on(source.resolve("v1")).unwrap();
    assert_eq!(v1.id, commit);
    let artifact = rt.block_on(source.fetch(&v1)).unwrap();
    assert_eq!(artifact.read("README.md").unwrap(), b"hello\n");
    let listing = artifact.list().unwrap();
    assert_eq!(
        listing.get("run.sh").unwrap().kind,
        stoker_core::EntryKind::Executable
    );
    assert_eq!(
        listing.get("link").unwrap().kind,
        stoker_core::EntryKind::Symlink
    );

    let second = repo
        .commit("main", &[("README.md", b"second\n")], "second")
        .unwrap();
    let main = rt.block_on(source.resolve("main")).unwrap();
    assert_eq!(main.id, second);
    let artifact = rt.block_on(source.fetch(&main)).unwrap();
    assert_eq!(artifact.read("README.md").unwrap(), b"second\n");
    assert_eq!(
        rt.block_on(source.changed_paths(&v1, &main)).unwrap(),
        Some(vec!["README.md".to_owned()])
    );
}

#[test]
fn a_moved_repository_is_followed_like_git_does() {
    // A hosting service answers a renamed repository's first request with a redirect; git
    // follows it and sends the rest of the conversation to the new address.
    let (repo, commit) = repo("http-moved");
    let server = GitHttpServer::start(servers().root(), None).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let url = format!(
        "{}{}/{}",
        server.url(),
        stoker_testkit::git_http::MOVED_PREFIX,
        repo.name()
    );
    let source = source(&url, cache.path(), GitAuth::None);
    let rt = runtime();
    let revision = rt.block_on(source.resolve("main")).unwrap();
    assert_eq!(revision.id, commit);
    let artifact = rt.block_on(source.fetch(&revision)).unwrap();
    assert_eq!(artifact.read("README.md").unwrap(), b"hello\n");

    let stats = server.stats();
    // One redirect per connection (the resolve's and the fetch's first GET); every later
    // request of a connection went straight to the new address.
    assert_eq!(stats.for_repo("_moved"), 2, "{stats:?}");
    assert!(stats.for_repo(&repo.name()) > 2, "{stats:?}");
}

const TOKEN: &str = "the-right-token";

/// A private token-checking server behind HTTPS, so request counts are exact and credentials
/// travel as in production (gix never sends them over plain http://).
fn https_token_server() -> (GitHttpServer, TlsProxy) {
    let server = GitHttpServer::start(servers().root(), Some(TOKEN)).unwrap();
    let proxy = TlsProxy::start(server.addr());
    (server, proxy)
}

#[test]
fn the_right_token_is_accepted_over_https() {
    let (repo, commit) = repo("https-token");
    let (server, proxy) = https_token_server();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/{}", proxy.url(), repo.name());
    let source = GitSource::new(
        GitSourceConfig::new(&url, dir.path().join("cache"))
            .with_auth(GitAuth::Token {
                token_file: token_file(dir.path(), TOKEN),
            })
            .with_ca_file(&proxy.ca_file)
            .with_retry(fast_retries()),
    )
    .unwrap();
    let rt = runtime();
    let revision = rt.block_on(source.resolve("main")).unwrap();
    assert_eq!(revision.id, commit);
    let artifact = rt.block_on(source.fetch(&revision)).unwrap();
    assert_eq!(artifact.read("README.md").unwrap(), b"hello\n");
    assert!(
        server.stats().unauthorized >= 1,
        "the token was sent before the server asked"
    );
    server.shutdown();
}

#[test]
fn a_token_in_the_url_works_and_never_shows() {
    let (repo, commit) = repo("https-url-token");
    let (server, proxy) = https_token_server();
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let with_password = |password: &str| {
        let url = format!(
            "https://git:{password}@127.0.0.1:{}/{}",
            proxy.port,
            repo.name()
        );
        GitSource::new(
            GitSourceConfig::new(url, dir.path())
                .with_ca_file(&proxy.ca_file)
                .with_retry(fast_retries()),
        )
        .unwrap()
    };
    let good = with_password(TOKEN);
    assert!(!good.redacted_url().contains(TOKEN));
    assert_eq!(rt.block_on(good.resolve("main")).unwrap().id, commit);
    let bad = with_password("wrong-url-secret");
    let error = rt.block_on(bad.resolve("main")).unwrap_err();
    assert_eq!(error.git_kind(), Some(GitErrorKind::Auth), "{error}");
    let text = all_text(&error);
    assert!(!text.contains("wrong-url-secret"), "{text}");
    server.shutdown();
}

#[test]
fn a_wrong_token_fails_fast_without_a_retry_loop() {
    let (repo, _) = repo("https-wrong-token");
    let (server, proxy) = https_token_server();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/{}", proxy.url(), repo.name());
    let rt = runtime();
    for auth in [
        GitAuth::Token {
            token_file: token_file(dir.path(), "a-wrong-token"),
        },
        GitAuth::None,
    ] {
        let before = server.request_count();
        let source = GitSource::new(
            GitSourceConfig::new(&url, dir.path().join("cache"))
                .with_auth(auth.clone())
                .with_ca_file(&proxy.ca_file)
                .with_retry(RetryPolicy {
                    initial_delay: Duration::from_secs(5),
                    max_attempts: 5,
                    ..RetryPolicy::default()
                }),
        )
        .unwrap();
        let started = Instant::now();
        let error = rt.block_on(source.resolve("main")).unwrap_err();
        assert_eq!(
            error.git_kind(),
            Some(GitErrorKind::Auth),
            "{auth:?}: {error}"
        );
        // No backoff wait happened, and only one attempt reached the server: the 401 and, with a
        // token, its authenticated repetition.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let requests = server.request_count() - before;
        assert!(
            (1..=2).contains(&requests),
            "{requests} requests for {auth:?}"
        );
        let text = all_text(&error);
        assert!(!text.contains("a-wrong-token"), "{text}");
        assert!(text.contains(&repo.name()), "{text}");
    }
    server.shutdown();
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let (repo, _) = repo("https-untrusted");
    let (server, proxy) = https_token_server();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/{}", proxy.url(), repo.name());
    let source = GitSource::new(
        GitSourceConfig::new(&url, dir.path())
            .with_auth(GitAuth::Token {
                token_file: token_file(dir.path(), TOKEN),
            })
            .with_retry(RetryPolicy {
                initial_delay: Duration::from_secs(5),
                ..RetryPolicy::default()
            }),
    )
    .unwrap();
    let rt = runtime();
    let started = Instant::now();
    let error = rt.block_on(source.resolve("main")).unwrap_err();
    assert_eq!(error.git_kind(), Some(GitErrorKind::Certificate), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "it was retried: {error}"
    );
    assert_eq!(server.request_count(), 0);
    server.shutdown();
}

#[test]
fn a_redirect_from_https_to_plain_http_is_refused() {
    let (repo, _) = repo("https-downgrade");
    let plain = GitHttpServer::start(servers().root(), None).unwrap();
    let front = GitHttpServer::start(servers().root(), None).unwrap();
    let proxy = TlsProxy::start(front.addr());
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "{}{}/{}/{}",
        proxy.url(),
        stoker_testkit::git_http::MOVED_PREFIX,
        plain.url(),
        repo.name()
    );
    let source = GitSource::new(
        GitSourceConfig::new(&url, dir.path())
            .with_ca_file(&proxy.ca_file)
            .with_retry(fast_retries()),
    )
    .unwrap();
    let error = runtime().block_on(source.resolve("main")).unwrap_err();
    assert!(
        error.to_string().contains("never from https to http"),
        "{error}"
    );
    assert_ne!(error.git_kind(), Some(GitErrorKind::Transient), "{error}");
    assert_eq!(
        front.stats().for_repo("_moved"),
        1,
        "asked once, not retried"
    );
    assert_eq!(plain.request_count(), 0, "nothing went over plain http");
    front.shutdown();
    plain.shutdown();
}

#[test]
fn server_errors_are_retried_with_backoff() {
    let (repo, commit) = repo("http-503");
    let server = GitHttpServer::start(servers().root(), None).unwrap();
    let url = format!("{}/{}", server.url(), repo.name());
    let dir = tempfile::tempdir().unwrap();
    let open = source(&url, dir.path(), GitAuth::None);
    let rt = runtime();
    // Two failures, then success: resolve retries through them.
    server.set_faults(Faults::fail(2, 503));
    assert_eq!(rt.block_on(open.resolve("main")).unwrap().id, commit);
    assert_eq!(server.stats().faulted, 2);
    // A failure in the middle of the fetch (the pack request) is retried too.
    let revision = rt.block_on(open.resolve("main")).unwrap();
    server.set_faults(Faults::fail(1, 502));
    let artifact = rt.block_on(open.fetch(&revision)).unwrap();
    assert_eq!(artifact.read("README.md").unwrap(), b"hello\n");
    // More failures than attempts: a transient error, after 3 attempts.
    server.set_faults(Faults::fail(100, 500));
    let error = rt.block_on(open.resolve("main")).unwrap_err();
    assert_gave_up(&error);
    server.set_faults(Faults::fail(0, 503));
    // 404 (no such repository) is permanent.
    let missing = source(
        &format!("{}/no-such.git", server.url()),
        dir.path(),
        GitAuth::None,
    );
    let before = server.request_count();
    let error = rt.block_on(missing.resolve("main")).unwrap_err();
    assert_ne!(error.git_kind(), Some(GitErrorKind::Transient), "{error}");
    assert_eq!(server.request_count() - before, 1);
    server.shutdown();
}

/// A source for `repo` on `server` that abandons a response silent for 300 ms, with quick
/// retries.
fn impatient_source(server: &GitHttpServer, repo: &Repo, cache: &Path) -> GitSource {
    let url = format!("{}/{}", server.url(), repo.name());
    GitSource::new(
        GitSourceConfig::new(&url, cache)
            .with_retry(fast_retries())
            .with_stall_timeout(Duration::from_millis(300)),
    )
    .unwrap()
}

/// A transient failure that outlasted the 3 attempts of [`fast_retries`].
fn assert_gave_up(error: &stoker_core::Error) {
    assert_eq!(error.git_kind(), Some(GitErrorKind::Transient), "{error}");
    assert!(
        error.to_string().contains("gave up after 3 attempts"),
        "{error}"
    );
}

#[test]
fn a_stalled_response_is_a_transient_failure_and_retried() {
    let (repo, commit) = repo("http-stall");
    let server = GitHttpServer::start(servers().root(), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = impatient_source(&server, &repo, dir.path());
    let rt = runtime();
    assert_eq!(rt.block_on(source.resolve("main")).unwrap().id, commit);
    let per_resolve = server.stats().total;
    // The next answer comes after 2 s: the request is abandoned at 300 ms and tried again.
    server.set_faults(Faults::slow(1, Duration::from_secs(2)));
    let started = Instant::now();
    assert_eq!(rt.block_on(source.resolve("main")).unwrap().id, commit);
    assert!(started.elapsed() < Duration::from_secs(2), "not abandoned");
    assert_eq!(
        server.stats().total,
        2 * per_resolve + 1,
        "one stalled request, then a whole resolve again"
    );
    // Every answer stalls: a transient error once the attempts are spent.
    server.set_faults(Faults::slow(100, Duration::from_secs(2)));
    let error = rt.block_on(source.resolve("main")).unwrap_err();
    assert_gave_up(&error);
    server.shutdown();
}

#[test]
fn a_pack_that_stalls_mid_transfer_is_retried_and_never_corrupts_the_cache() {
    let repo = servers().new_repo("http-stall-body");
    // Incompressible, so the pack is as large as the file and far past the stall point.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let big: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    let commit = repo.commit("main", &[("big.bin", &big)], "big").unwrap();
    let server = GitHttpServer::start(servers().root(), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = impatient_source(&server, &repo, dir.path());
    let rt = runtime();
    let revision = rt.block_on(source.resolve("main")).unwrap();
    assert_eq!(revision.id, commit);
    // Every answer over 64 KiB (only the pack) stops for 5 s after its first 64 KiB.
    server.set_faults(Faults::stall_body(1000, 64 * 1024, Duration::from_secs(5)));
    let started = Instant::now();
    let Err(error) = rt.block_on(source.fetch(&revision)) else {
        panic!("a fetch whose pack stalls every time succeeded");
    };
    assert_gave_up(&error);
    assert!(started.elapsed() < Duration::from_secs(5), "not abandoned");
    // The abandoned transfers left nothing half-written: the next fetch completes.
    server.set_faults(Faults::fail(0, 503));
    let artifact = rt.block_on(source.fetch(&revision)).unwrap();
    assert_eq!(artifact.read("big.bin").unwrap(), big);
    server.shutdown();
}

// --- SSH ----------------------------------------------------------------------------------------

fn ssh_auth(known_hosts: Option<&Path>, accept: bool) -> GitAuth {
    GitAuth::SshKey {
        key_file: servers().ssh().key.clone(),
        known_hosts_file: known_hosts.map(Path::to_path_buf),
        accept_unknown_host_keys: accept,
    }
}

#[test]
fn ssh_with_the_right_known_hosts_works() {
    let (repo, commit) = repo("ssh-ok");
    let cache = tempfile::tempdir().unwrap();
    let auth = ssh_auth(Some(&servers().ssh().known_hosts), false);
    let source = source(&servers().ssh_url(&repo), cache.path(), auth);
    let rt = runtime();
    let revision = rt.block_on(source.resolve("v1")).unwrap();
    assert_eq!(revision.id, commit);
    let artifact = rt.block_on(source.fetch(&revision)).unwrap();
    assert_eq!(artifact.read("README.md").unwrap(), b"hello\n");
}

#[test]
fn ssh_refuses_a_wrong_host_key_at_once() {
    let (repo, _) = repo("ssh-wrong-host");
    let cache = tempfile::tempdir().unwrap();
    let auth = ssh_auth(Some(&servers().ssh().wrong_known_hosts), false);
    let source = GitSource::new(
        GitSourceConfig::new(servers().ssh_url(&repo), cache.path())
            .with_auth(auth)
            .with_retry(RetryPolicy {
                initial_delay: Duration::from_secs(60),
                ..RetryPolicy::default()
            }),
    )
    .unwrap();
    let rt = runtime();
    let started = Instant::now();
    let error = rt.block_on(source.resolve("main")).unwrap_err();
    assert_eq!(error.git_kind(), Some(GitErrorKind::HostKey), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "it was retried"
    );
}

#[test]
fn ssh_without_known_hosts_needs_an_explicit_opt_in() {
    let (repo, commit) = repo("ssh-no-known-hosts");
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime();
    let strict = source(
        &servers().ssh_url(&repo),
        cache.path(),
        ssh_auth(None, false),
    );
    let error = rt.block_on(strict.resolve("main")).unwrap_err();
    assert_eq!(error.git_kind(), Some(GitErrorKind::HostKey), "{error}");
    assert!(error.to_string().contains("known_hosts"), "{error}");
    let accepting = source(
        &servers().ssh_url(&repo),
        cache.path(),
        ssh_auth(None, true),
    );
    assert_eq!(rt.block_on(accepting.resolve("main")).unwrap().id, commit);
}

#[test]
fn ssh_rejects_an_unknown_key_as_an_auth_error() {
    let (repo, _) = repo("ssh-wrong-key");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("other_key");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
    let auth = GitAuth::SshKey {
        key_file: key,
        known_hosts_file: Some(servers().ssh().known_hosts.clone()),
        accept_unknown_host_keys: false,
    };
    let source = source(&servers().ssh_url(&repo), &dir.path().join("cache"), auth);
    let rt = runtime();
    let error = rt.block_on(source.resolve("main")).unwrap_err();
    assert_eq!(error.git_kind(), Some(GitErrorKind::Auth), "{error}");
}

#[test]
fn ssh_keys_readable_by_others_are_still_used() {
    use std::os::unix::fs::PermissionsExt;
    let (repo, commit) = repo("ssh-open-key");
    let dir = tempfile::tempdir().unwrap();
    // As a Secret volume without defaultMode mounts it.
    let key = dir.path().join("key");
    std::fs::copy(&servers().ssh().key, &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let auth = GitAuth::SshKey {
        key_file: key,
        known_hosts_file: Some(servers().ssh().known_hosts.clone()),
        accept_unknown_host_keys: false,
    };
    let source = source(&servers().ssh_url(&repo), &dir.path().join("cache"), auth);
    let rt = runtime();
    assert_eq!(rt.block_on(source.resolve("main")).unwrap().id, commit);
}
