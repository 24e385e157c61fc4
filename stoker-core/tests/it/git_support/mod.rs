//! Shared helpers for the Git source tests: repositories made with the `git` CLI.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use stoker_core::git::{GitSource, GitSourceConfig, RetryPolicy};

/// Runs git with a clean environment (no user or system config), fixed identity and dates.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = git_command(dir)
        .args(args)
        .stderr(Stdio::piped())
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Raw bytes of a git command's stdout.
pub fn git_bytes(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = git_command(dir).args(args).output().expect("git runs");
    assert!(output.status.success(), "git {args:?} failed");
    output.stdout
}

pub fn git_command(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z");
    command
}

/// A work repository and a bare repository it pushes to (the "remote").
pub struct Fixture {
    pub root: tempfile::TempDir,
    pub work: PathBuf,
    pub bare: PathBuf,
}

impl Fixture {
    /// A repository with a first commit: regular, nested, executable and symlink entries, a
    /// branch `dev`, a lightweight tag `light` and an annotated tag `v1`.
    pub fn new() -> Fixture {
        let root = tempfile::tempdir().expect("tempdir");
        let work = root.path().join("work");
        let bare = root.path().join("remote.git");
        std::fs::create_dir_all(work.join("projects/demo/views")).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("README.md"), "hello\n").unwrap();
        std::fs::write(
            work.join("projects/demo/views/view.json"),
            "{\"root\": {}}\n",
        )
        .unwrap();
        std::fs::write(work.join("projects/demo/project.json"), "{}\n").unwrap();
        std::fs::write(work.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
        std::fs::write(work.join("binary.bin"), [0u8, 1, 2, 255, 0, 7]).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(work.join("run.sh"), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        std::os::unix::fs::symlink("projects/demo/project.json", work.join("link")).unwrap();
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", "first"]);
        git(&work, &["tag", "light"]);
        git(&work, &["tag", "-a", "v1", "-m", "version 1"]);
        git(&work, &["branch", "dev"]);
        git(
            root.path(),
            &[
                "clone",
                "-q",
                "--bare",
                work.to_str().unwrap(),
                bare.to_str().unwrap(),
            ],
        );
        Fixture { root, work, bare }
    }

    /// `file://` URL of the bare repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// Commits the given changes in the work repository and pushes `main` (and tags).
    pub fn commit(&self, message: &str, change: impl FnOnce(&Path)) -> String {
        change(&self.work);
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "-m", message]);
        git(
            &self.work,
            &[
                "push",
                "-q",
                "--tags",
                "--force",
                self.bare.to_str().unwrap(),
                "main",
            ],
        );
        self.rev("main")
    }

    /// `git rev-parse` in the bare repository.
    pub fn rev(&self, spec: &str) -> String {
        git(&self.bare, &["rev-parse", spec]).trim().to_owned()
    }

    /// A cache directory for sources.
    pub fn cache(&self) -> PathBuf {
        self.root.path().join("cache")
    }

    /// A source for the fixture with fast retries.
    pub fn source(&self) -> GitSource {
        self.source_at(self.url())
    }

    /// A `git daemon` serving the fixture, and a source reading it through the daemon.
    pub fn daemon_source(&self) -> (Daemon, GitSource) {
        let daemon = Daemon::start(self.root.path());
        let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
        (daemon, self.source_at(url))
    }

    fn source_at(&self, url: String) -> GitSource {
        GitSource::new(GitSourceConfig::new(url, self.cache()).with_retry(fast_retries()))
            .expect("valid config")
    }
}

/// Retries within milliseconds, for tests.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_millis(5),
        max_attempts: 3,
        ..RetryPolicy::default()
    }
}

/// `git ls-tree -r` as (mode, type, id, path) rows.
pub fn ls_tree(repo: &Path, commit: &str) -> Vec<(String, String, String, String)> {
    let out = git_bytes(repo, &["ls-tree", "-r", "-z", commit]);
    out.split(|b| *b == 0)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let line = String::from_utf8_lossy(line);
            let (meta, path) = line.split_once('\t').unwrap();
            let mut parts = meta.split(' ');
            (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
                path.to_owned(),
            )
        })
        .collect()
}

/// A runtime for the async `Source` API.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `git daemon` serving every repository below `base`; killed when dropped.
pub struct Daemon {
    child: std::process::Child,
    pub port: u16,
}

impl Daemon {
    pub fn start(base: &Path) -> Daemon {
        let port = free_port();
        // The dashed binary itself: `git daemon` would run it as a child that outlives a
        // killed `git`.
        let exec_path = git(base, &["--exec-path"]);
        let mut child = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
            .current_dir(base)
            .args([
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", base.display()),
                base.to_str().unwrap(),
            ])
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon starts");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Daemon { child, port };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("git daemon did not start listening");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTPS front for a plain-HTTP test server: TLS with a throw-away CA (made with the
/// `openssl` CLI), each connection proxied to `backend`. Lives as long as the value.
pub struct TlsProxy {
    pub port: u16,
    /// The CA certificate (PEM) that signed the server certificate.
    pub ca_file: PathBuf,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

impl TlsProxy {
    pub fn start(backend: std::net::SocketAddr) -> TlsProxy {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let dir = tempfile::tempdir().unwrap();
        let tls = stoker_testkit::gateway_sim::TestCerts::generate(dir.path()).unwrap();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_file)
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_file(&tls.key_file).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsProxy {
            port,
            ca_file: tls.ca_file,
            _dir: dir,
            _runtime: runtime,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}
