//! OpenSSH's `sshd` on a free loopback port, with throw-away keys.
//!
//! Needs Debian's `openssh-server` (`hack/git-servers.sh install`); nothing is installed at run
//! time. [`Sshd::start`] makes, in a temporary directory: a host key, a client key (authorized
//! for the current user), an `sshd_config`, a `known_hosts` with the host key for
//! `[127.0.0.1]:PORT`, and a *wrong* `known_hosts` (another key for the same host) to test that
//! a changed host key is refused.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{Reaped, STARTUP_TIMEOUT, free_port, loopback, run};
use crate::{Error, Result};

/// Where Debian's `openssh-server` puts `sshd` (it must be started by absolute path).
pub const SSHD: &str = "/usr/sbin/sshd";

/// What an SSH client needs to reach the test `sshd`: the URL base, a key and `known_hosts`
/// files. Plain data, so it can come from the environment (see [`crate::git`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshClient {
    /// `ssh://USER@127.0.0.1:PORT` (no trailing slash).
    pub base_url: String,
    /// The private key (ed25519, no passphrase) authorized on the server.
    pub key: PathBuf,
    /// A `known_hosts` with the server's real host key.
    pub known_hosts: PathBuf,
    /// A `known_hosts` with a different key for the same `[127.0.0.1]:PORT`.
    pub wrong_known_hosts: PathBuf,
}

impl SshClient {
    /// `ssh://USER@127.0.0.1:PORT/ABS/PATH` for the repository at `repo` (an absolute path).
    pub fn url(&self, repo: &Path) -> String {
        format!("{}{}", self.base_url, repo.display())
    }

    /// A `GIT_SSH_COMMAND` that trusts only the real host key and uses only the test key.
    pub fn git_ssh_command(&self) -> String {
        self.git_ssh_command_with(&self.known_hosts)
    }

    /// A `GIT_SSH_COMMAND` with `known_hosts` as the only known hosts file, strict host key
    /// checking, only the test key, and no prompts (`BatchMode`). Ignores `~/.ssh/config`.
    pub fn git_ssh_command_with(&self, known_hosts: &Path) -> String {
        format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} \
             -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes \
             -o ConnectTimeout=10 -o LogLevel=ERROR",
            shell_quote(&self.key),
            shell_quote(known_hosts)
        )
    }
}

/// Single-quotes a path for `sh` (`GIT_SSH_COMMAND` is run by a shell).
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// A running `sshd -D -e` on `127.0.0.1:PORT` that lets the current user in with the test key.
///
/// It stops when dropped, and when this process exits (see [`crate::process`]); its temporary
/// directory goes with it when dropped.
#[derive(Debug)]
pub struct Sshd {
    process: Reaped,
    port: u16,
    user: String,
    client: SshClient,
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Sshd {
    /// Starts `sshd` with its keys and config in a new temporary directory.
    pub fn start() -> Result<Self> {
        let temp = tempfile::Builder::new()
            .prefix("stoker-sshd-")
            .tempdir()
            .map_err(|e| Error::io("create temp dir", e))?;
        let mut sshd = Self::start_in(temp.path())?;
        sshd._temp = Some(temp);
        Ok(sshd)
    }

    /// Starts `sshd` with its keys, config and log in `dir` (created; kept when stopped).
    pub fn start_in(dir: &Path) -> Result<Self> {
        if !Path::new(SSHD).exists() {
            return Err(Error::Missing {
                program: SSHD.to_owned(),
            });
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| Error::io(format!("canonicalize {}", dir.display()), e))?;
        // Privilege separation directory; normally made by the service we never start. Only
        // root can make it, and only root needs it.
        let _ = std::fs::create_dir_all("/run/sshd");

        let host_key = dir.join("ssh_host_ed25519_key");
        let client_key = dir.join("id_ed25519");
        let wrong_key = dir.join("wrong_host_ed25519_key");
        for (key, comment) in [
            (&host_key, "stoker-test-host"),
            (&client_key, "stoker-test-client"),
            (&wrong_key, "stoker-test-wrong-host"),
        ] {
            if !key.exists() {
                run(Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                    .arg(key))?;
            }
        }
        let authorized = dir.join("authorized_keys");
        copy(&pub_path(&client_key), &authorized)?;
        let user = run(Command::new("id").arg("-un"))?;

        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            let config = dir.join("sshd_config");
            let text = sshd_config(&dir, port, &user, &host_key, &authorized);
            std::fs::write(&config, text)
                .map_err(|e| Error::io(format!("write {}", config.display()), e))?;
            let known_hosts = dir.join("known_hosts");
            let wrong_known_hosts = dir.join("known_hosts.wrong");
            write_known_hosts(&known_hosts, port, &pub_path(&host_key))?;
            write_known_hosts(&wrong_known_hosts, port, &pub_path(&wrong_key))?;

            let mut cmd = Command::new(SSHD);
            cmd.arg("-D").arg("-e").arg("-f").arg(&config);
            let mut process = Reaped::spawn_command("sshd", &cmd, &dir.join("sshd.log"))?;
            match process.wait_listening(loopback(port), STARTUP_TIMEOUT) {
                Ok(()) => {
                    let client = SshClient {
                        base_url: format!("ssh://{user}@127.0.0.1:{port}"),
                        key: client_key,
                        known_hosts,
                        wrong_known_hosts,
                    };
                    return Ok(Self {
                        process,
                        port,
                        user,
                        client,
                        dir,
                        _temp: None,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Invalid("sshd did not start".into())))
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    /// The user that logs in (the current user).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// URL base, key and `known_hosts` files for clients.
    pub fn client(&self) -> &SshClient {
        &self.client
    }

    /// `ssh://USER@127.0.0.1:PORT/ABS/PATH` for the repository at `repo`.
    pub fn url(&self, repo: &Path) -> String {
        self.client.url(repo)
    }

    /// The directory with keys, config and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// sshd's log (`-e`: everything it logs).
    pub fn log(&self) -> &Path {
        self.process.log()
    }

    /// Stops sshd.
    pub fn stop(mut self) {
        self.process.stop();
    }
}

fn pub_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| Error::io(format!("copy {} to {}", from.display(), to.display()), e))
}

/// `[127.0.0.1]:PORT TYPE KEY` from a `.pub` file.
fn write_known_hosts(path: &Path, port: u16, public_key: &Path) -> Result<()> {
    let text = std::fs::read_to_string(public_key)
        .map_err(|e| Error::io(format!("read {}", public_key.display()), e))?;
    let mut fields = text.split_whitespace();
    let (Some(kind), Some(key)) = (fields.next(), fields.next()) else {
        return Err(Error::Invalid(format!(
            "bad public key in {}",
            public_key.display()
        )));
    };
    std::fs::write(path, format!("[127.0.0.1]:{port} {kind} {key}\n"))
        .map_err(|e| Error::io(format!("write {}", path.display()), e))
}

fn sshd_config(dir: &Path, port: u16, user: &str, host_key: &Path, authorized: &Path) -> String {
    let mut c = String::new();
    let mut line = |s: String| {
        let _ = writeln!(c, "{s}");
    };
    line(format!("Port {port}"));
    line("ListenAddress 127.0.0.1".into());
    line(format!("HostKey {}", host_key.display()));
    line(format!("AuthorizedKeysFile {}", authorized.display()));
    line(format!("PidFile {}", dir.join("sshd.pid").display()));
    line(format!("AllowUsers {user}"));
    line("PubkeyAuthentication yes".into());
    line("PasswordAuthentication no".into());
    line("KbdInteractiveAuthentication no".into());
    line("UsePAM no".into());
    line("StrictModes no".into());
    line("PermitRootLogin prohibit-password".into());
    // Protocol v2 over SSH: git sends GIT_PROTOCOL with SendEnv.
    line("AcceptEnv GIT_PROTOCOL".into());
    line("UseDNS no".into());
    line("PrintMotd no".into());
    line("PrintLastLog no".into());
    line("X11Forwarding no".into());
    line("AllowTcpForwarding no".into());
    line("AllowAgentForwarding no".into());
    line("PermitTunnel no".into());
    // Many tests connect at once.
    line("MaxStartups 100".into());
    line("MaxSessions 100".into());
    line("LoginGraceTime 30".into());
    line("LogLevel INFO".into());
    c
}
