//! Clones over every transport with the `git` CLI, against the real servers, on loopback.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use stoker_testkit::git::{Faults, servers};
use stoker_testkit::git_daemon::GitDaemon;
use stoker_testkit::git_http::{GitHttpServer, HttpAdmin};
use stoker_testkit::process::{is_listening, wait_closed};
use stoker_testkit::repo::{Change, Repo, git, make_repo};

/// `git clone URL DEST` with extra env; returns the output whatever the status.
fn clone(url: &str, dest: &Path, envs: &[(&str, &str)]) -> Output {
    let mut cmd = git();
    cmd.arg("clone").arg(url).arg(dest).stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run git clone")
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn head_of(checkout: &Path) -> String {
    let out = git()
        .arg("-C")
        .arg(checkout)
        .args(["rev-parse", "HEAD"])
        .output()
        .expect("git rev-parse");
    assert_ok(&out, "rev-parse");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository under the shared root with one commit; returns it and the commit id.
fn shared_repo(prefix: &str) -> (Repo, String) {
    let repo = servers().new_repo(prefix);
    let id = repo
        .commit(
            "main",
            &[("hello.txt", b"hello\n"), ("dir/a.json", b"{}\n")],
            "first",
        )
        .expect("commit");
    (repo, id)
}

/// Clones `url`, checks the files and the commit.
fn clone_and_check(url: &str, commit: &str, envs: &[(&str, &str)]) {
    let dest = tempfile::tempdir().expect("temp dir");
    let out = clone(url, &dest.path().join("c"), envs);
    assert_ok(&out, &format!("clone {url}"));
    let c = dest.path().join("c");
    assert_eq!(
        std::fs::read(c.join("hello.txt")).expect("hello.txt"),
        b"hello\n"
    );
    assert_eq!(
        std::fs::read(c.join("dir/a.json")).expect("a.json"),
        b"{}\n"
    );
    assert_eq!(head_of(&c), commit);
}

/// One raw HTTP/1.1 request; returns (status, head, body).
fn raw_http(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request.as_bytes()).expect("write request");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("HTTP answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, head.to_owned(), body.to_owned())
}

fn addr_of(url: &str) -> SocketAddr {
    let rest = url.split("://").nth(1).expect("scheme");
    let host = rest.split('/').next().expect("host");
    let host = host.rsplit('@').next().expect("host");
    host.parse().expect("IP:PORT")
}

#[test]
fn clone_over_http_without_auth() {
    let (repo, id) = shared_repo("http-open");
    clone_and_check(&servers().http_url(&repo), &id, &[]);
    assert!(
        servers()
            .http_admin()
            .stats()
            .expect("stats")
            .for_repo(&repo.name())
            >= 2
    );
}

#[test]
fn http_speaks_protocol_v2() {
    let (repo, _) = shared_repo("http-v2");
    let out = git()
        .args(["-c", "protocol.version=2", "ls-remote"])
        .arg(servers().http_url(&repo))
        .env("GIT_TRACE_PACKET", "1")
        .output()
        .expect("ls-remote");
    assert_ok(&out, "ls-remote");
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(
        trace.contains("< version 2"),
        "server did not answer v2:\n{trace}"
    );
}

#[test]
fn clone_over_http_with_token() {
    let s = servers();
    let (repo, id) = shared_repo("http-token");
    // Basic auth: any user name, the token as password.
    clone_and_check(&s.http_token_url_with_password(&repo, s.token()), &id, &[]);
    // Bearer token.
    let header = format!("Authorization: Bearer {}", s.token());
    let dest = tempfile::tempdir().expect("temp dir");
    let out = git()
        .args(["-c", &format!("http.extraHeader={header}"), "clone"])
        .arg(s.http_token_url(&repo))
        .arg(dest.path().join("c"))
        .output()
        .expect("git clone");
    assert_ok(&out, "clone with a bearer token");
    assert_eq!(head_of(&dest.path().join("c")), id);
}

#[test]
fn wrong_token_is_401_and_not_retried() {
    let root = tempfile::tempdir().expect("temp dir");
    let id = make_repo(
        &root.path().join("r.git"),
        &[("hello.txt", b"hello\n"), ("dir/a.json", b"{}\n")],
    )
    .expect("make_repo");
    let server = GitHttpServer::start(root.path(), Some("right-token")).expect("start server");
    let url = |password: &str| format!("http://git:{password}@{}/r.git", server.addr());

    let dest = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let out = clone(
        &url("wrong-token"),
        &dest.path().join("c"),
        &[("GIT_TRACE_CURL", "1")],
    );
    assert!(!out.status.success(), "clone with a wrong token succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401 Unauthorized"), "no 401 in:\n{stderr}");
    assert!(
        stderr.contains("Authentication failed"),
        "not an auth error:\n{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let stats = server.stats();
    // curl may first probe without credentials, then send them once: no retry storm.
    assert!(stats.total <= 3, "{stats:?}");
    assert_eq!(stats.unauthorized, stats.total, "{stats:?}");

    // Without any credentials: 401 with the Basic challenge.
    let (status, head, _) = raw_http(
        server.addr(),
        "GET /r.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic realm=\"stoker-test\""),
        "{head}"
    );

    // And the right token works on the same server.
    clone_and_check(&url("right-token"), &id, &[]);
}

#[test]
fn clone_over_git_daemon() {
    let (repo, id) = shared_repo("daemon");
    clone_and_check(&servers().daemon_url(&repo), &id, &[]);
}

#[test]
fn clone_over_file_url() {
    let (repo, id) = shared_repo("file");
    clone_and_check(&repo.file_url(), &id, &[]);
}

#[test]
fn clone_over_ssh_with_the_right_host_key() {
    let s = servers();
    let (repo, id) = shared_repo("ssh");
    let cmd = s.ssh().git_ssh_command();
    clone_and_check(&s.ssh_url(&repo), &id, &[("GIT_SSH_COMMAND", &cmd)]);
}

#[test]
fn ssh_with_a_wrong_host_key_is_refused() {
    let s = servers();
    let (repo, _) = shared_repo("ssh-wrong-key");
    let cmd = s.ssh().git_ssh_command_with(&s.ssh().wrong_known_hosts);
    let dest = tempfile::tempdir().expect("temp dir");
    let out = clone(
        &s.ssh_url(&repo),
        &dest.path().join("c"),
        &[("GIT_SSH_COMMAND", &cmd)],
    );
    assert!(
        !out.status.success(),
        "clone with a wrong host key succeeded"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Host key verification failed"),
        "not a host key error:\n{stderr}"
    );
    assert!(!dest.path().join("c/hello.txt").exists());
}

#[test]
fn injected_503_then_success() {
    let root = tempfile::tempdir().expect("temp dir");
    let id = make_repo(
        &root.path().join("r.git"),
        &[("hello.txt", b"hello\n"), ("dir/a.json", b"{}\n")],
    )
    .expect("make_repo");
    let server = GitHttpServer::start(root.path(), None).expect("start server");
    let url = format!("{}/r.git", server.url());
    server.set_faults(Faults::fail(1, 503));

    let dest = tempfile::tempdir().expect("temp dir");
    let out = clone(&url, &dest.path().join("c"), &[]);
    assert!(!out.status.success(), "clone during a 503 succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("503"), "no 503 in:\n{stderr}");
    assert_eq!(server.stats().faulted, 1);

    // The fault is used up: the retry succeeds.
    clone_and_check(&url, &id, &[]);
    assert_eq!(server.stats().faulted, 1);
}

#[test]
fn faults_through_the_admin_endpoint_scoped_to_a_repo() {
    let s = servers();
    let (repo, id) = shared_repo("http-faults");
    let admin = s.http_admin();
    admin
        .set_faults(&Faults::fail(1, 502).for_repo(repo.name()))
        .expect("POST /_admin/faults");
    let dest = tempfile::tempdir().expect("temp dir");
    let out = clone(&s.http_url(&repo), &dest.path().join("c"), &[]);
    assert!(!out.status.success(), "clone during a 502 succeeded");
    assert!(String::from_utf8_lossy(&out.stderr).contains("502"));
    clone_and_check(&s.http_url(&repo), &id, &[]);

    // A slow response: served normally, late.
    let delay = Duration::from_millis(400);
    admin
        .set_faults(&Faults::slow(1, delay).for_repo(repo.name()))
        .expect("POST /_admin/faults");
    let started = Instant::now();
    clone_and_check(&s.http_url(&repo), &id, &[]);
    assert!(started.elapsed() >= delay);
}

#[test]
fn gzip_request_bodies_reach_http_backend() {
    // A clone that wants many tips sends a fetch request over 1 KiB, which git gzips.
    let s = servers();
    let (repo, _) = shared_repo("http-gzip");
    let mut tips = Vec::new();
    for i in 0..40 {
        let content = format!("branch {i}\n");
        tips.push(
            repo.commit(&format!("b{i:02}"), &[("f.txt", content.as_bytes())], "tip")
                .expect("commit"),
        );
    }
    let work = tempfile::tempdir().expect("temp dir");
    let c = work.path().join("c");
    let out = clone(
        &s.http_url(&repo),
        &c,
        &[("GIT_TRACE_CURL", "1"), ("GIT_TRACE_CURL_NO_DATA", "1")],
    );
    assert_ok(&out, "clone");
    let trace = String::from_utf8_lossy(&out.stderr);
    assert!(
        trace.contains("Content-Encoding: gzip"),
        "no gzip request body sent:\n{trace}"
    );
    let branches = git()
        .arg("-C")
        .arg(&c)
        .args([
            "for-each-ref",
            "--format=%(objectname)",
            "refs/remotes/origin/b*",
        ])
        .output()
        .expect("for-each-ref");
    let got: Vec<String> = String::from_utf8_lossy(&branches.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(got, tips);
}

#[test]
fn repo_helpers_make_branches_and_tags() {
    let (repo, first) = shared_repo("refs");
    let second = repo
        .commit_changes(
            "main",
            &[
                Change::Delete("hello.txt"),
                Change::Executable("bin/run.sh", b"#!/bin/sh\n"),
                Change::Symlink("link", "dir/a.json"),
            ],
            "second",
        )
        .expect("second commit");
    repo.branch("release", &first).expect("branch");
    repo.tag("v1", &first).expect("lightweight tag");
    let tag = repo
        .annotated_tag("v2", &second, "release 2")
        .expect("annotated tag");
    assert_ne!(tag, second);
    assert_eq!(repo.rev_parse("v2^{commit}").expect("peel"), second);
    assert_eq!(repo.rev_parse("refs/tags/v1").expect("v1"), first);

    let out = git()
        .arg("ls-remote")
        .arg(servers().daemon_url(&repo))
        .output()
        .expect("ls-remote");
    assert_ok(&out, "ls-remote");
    let refs = String::from_utf8_lossy(&out.stdout);
    for line in [
        format!("{second}\tHEAD"),
        format!("{second}\trefs/heads/main"),
        format!("{first}\trefs/heads/release"),
        format!("{first}\trefs/tags/v1"),
        format!("{tag}\trefs/tags/v2"),
        format!("{second}\trefs/tags/v2^{{}}"),
    ] {
        assert!(
            refs.lines().any(|l| l == line),
            "missing {line:?} in\n{refs}"
        );
    }
    let tree = repo.git(&["ls-tree", "-r", "main"]).expect("ls-tree");
    assert!(
        tree.contains("100755 blob") && tree.contains("bin/run.sh"),
        "{tree}"
    );
    assert!(
        tree.contains("120000 blob") && tree.contains("\tlink"),
        "{tree}"
    );
    assert!(!tree.contains("hello.txt"), "{tree}");
}

#[test]
fn commits_are_deterministic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let files: &[(&str, &[u8])] = &[("a/b.txt", b"x"), ("c", b"y")];
    let one = make_repo(&dir.path().join("one.git"), files).expect("one");
    let two = make_repo(&dir.path().join("two.git"), files).expect("two");
    assert_eq!(one, two);
}

#[test]
fn dropping_a_daemon_closes_its_port() {
    let root = tempfile::tempdir().expect("temp dir");
    let daemon = GitDaemon::start(root.path()).expect("git daemon");
    let addr = daemon.addr();
    assert!(is_listening(addr));
    drop(daemon);
    assert!(
        wait_closed(addr, Duration::from_secs(10)),
        "{addr} still open after drop"
    );
}

/// Starts `stoker-git-servers` (which holds its servers like a test binary's statics do), reads
/// its URLs, and returns the child plus the addresses and root.
fn spawn_servers_process() -> (std::process::Child, Vec<SocketAddr>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stoker-git-servers"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn stoker-git-servers");
    let stdout = child.stdout.take().expect("stdout");
    let mut addrs = Vec::new();
    let mut root = String::new();
    for line in BufReader::new(stdout).lines().take(9) {
        let line = line.expect("read stdout");
        let (name, value) = line
            .trim_start_matches("export ")
            .split_once('=')
            .expect("NAME=VALUE");
        let value = value.trim_matches('\'');
        if name.ends_with("_URL") {
            addrs.push(addr_of(value));
        }
        if name == "STOKER_TEST_GIT_ROOT" {
            root = value.to_owned();
        }
    }
    assert_eq!(addrs.len(), 4, "expected 4 server URLs");
    (child, addrs, root)
}

#[test]
fn servers_die_with_the_process_that_started_them() {
    let (mut child, addrs, root) = spawn_servers_process();
    for addr in &addrs {
        assert!(is_listening(*addr), "{addr} not listening");
    }
    // SIGKILL: the process gets no chance to clean up; the reap-on-eof wrappers do it.
    child.kill().expect("kill");
    child.wait().expect("wait");
    for addr in &addrs {
        assert!(
            wait_closed(*addr, Duration::from_secs(15)),
            "{addr} still open after its parent died"
        );
    }
    // The temporary root goes too.
    let deadline = Instant::now() + Duration::from_secs(15);
    while Path::new(&root).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(!Path::new(&root).exists(), "{root} left behind");
}

#[test]
fn stoker_git_http_binary_serves_and_takes_faults() {
    let root = tempfile::tempdir().expect("temp dir");
    let id = make_repo(
        &root.path().join("r.git"),
        &[("hello.txt", b"hello\n"), ("dir/a.json", b"{}\n")],
    )
    .expect("make_repo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_stoker-git-http"))
        .arg("--root")
        .arg(root.path())
        .args(["--token", "t0k"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn stoker-git-http");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read JSON line");
    let info: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
    let url = info["url"].as_str().expect("url").to_owned();
    let admin = HttpAdmin::new(&url).expect("admin");

    admin.set_faults(&Faults::fail(1, 503)).expect("faults");
    let (status, _, _) = raw_http(
        addr_of(&url),
        "GET /r.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 503);
    let rest = url.trim_start_matches("http://");
    clone_and_check(&format!("http://me:t0k@{rest}/r.git"), &id, &[]);
    let stats = admin.stats().expect("stats");
    assert_eq!(stats.faulted, 1, "{stats:?}");
    assert!(stats.total >= 3, "{stats:?}");
    admin.reset_stats().expect("reset");
    assert_eq!(admin.request_count().expect("count"), 0);

    child.kill().expect("kill");
    child.wait().expect("wait");
}
