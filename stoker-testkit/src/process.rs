//! Child processes that die with the test binary, and small process helpers.
//!
//! Rust statics are never dropped, so a server kept in a `OnceLock` would outlive the test
//! binary if it were a plain child. Instead every server runs under
//! `hack/lib/reap-on-eof.sh` (embedded here at compile time): the wrapper starts the server and
//! blocks reading its stdin, a pipe whose write end only this process holds. When this process
//! exits — normally, by panic, or by `SIGKILL` — the kernel closes the pipe, the wrapper reads
//! EOF and kills the server. No signal handlers, no `unsafe`.

use std::convert::Infallible;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// The text of `hack/lib/reap-on-eof.sh`, embedded so the wrapper works even where the
/// checkout is gone; run as `bash -c SCRIPT reap-on-eof CMD ARGS...` then.
pub const REAP_ON_EOF: &str = include_str!("../../hack/lib/reap-on-eof.sh");

/// `hack/lib/reap-on-eof.sh` in the checkout this crate was built from.
fn reap_on_eof_path() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .parent()
        .unwrap_or(crate_dir)
        .join("hack/lib/reap-on-eof.sh")
}

/// `bash` running the reap-on-eof wrapper: the checkout's script file when it is there and
/// unchanged (readable `ps` output), else the embedded text.
fn reap_on_eof_command() -> Command {
    let mut bash = Command::new("bash");
    let path = reap_on_eof_path();
    match std::fs::read_to_string(&path) {
        Ok(text) if text == REAP_ON_EOF => {
            bash.arg(path);
        }
        _ => {
            bash.arg("-c").arg(REAP_ON_EOF).arg("reap-on-eof");
        }
    }
    bash
}

/// How long servers get to start listening.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A server process running under the reap-on-eof wrapper.
///
/// Dropping it (or calling [`Reaped::stop`]) closes the wrapper's stdin, which stops the
/// server, and waits for the wrapper to exit. If this process dies instead, the same happens
/// without any help from it.
#[derive(Debug)]
pub struct Reaped {
    name: String,
    wrapper: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl Reaped {
    /// Starts `program args...` under the wrapper; its stdout and stderr go to `log`.
    pub fn spawn<I, S>(name: &str, program: &OsStr, args: I, log: &Path) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(program);
        cmd.args(args);
        Self::spawn_command(name, &cmd, log)
    }

    /// Starts a prepared command (program, arguments, environment, working directory) under the
    /// wrapper; its stdout and stderr go to `log`. The command's own stdio settings are ignored.
    pub fn spawn_command(name: &str, command: &Command, log: &Path) -> Result<Self> {
        let out =
            File::create(log).map_err(|e| Error::io(format!("create {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| Error::io(format!("dup {}", log.display()), e))?;
        let mut wrapper = reap_on_eof_command();
        wrapper
            .arg(command.get_program())
            .args(command.get_args())
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err);
        if let Some(dir) = command.get_current_dir() {
            wrapper.current_dir(dir);
        }
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapper.env(key, value),
                None => wrapper.env_remove(key),
            };
        }
        let mut child = wrapper
            .spawn()
            .map_err(|e| Error::io(format!("spawn {name} under bash"), e))?;
        let stdin = child.stdin.take();
        Ok(Self {
            name: name.to_owned(),
            wrapper: child,
            stdin,
            log: log.to_owned(),
        })
    }

    /// The wrapper's process id (the server is its child).
    pub fn pid(&self) -> u32 {
        self.wrapper.id()
    }

    /// Where the server's output goes.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The last lines of the server's output, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// `Some(status)` once the server (and so the wrapper) has exited.
    pub fn try_exited(&mut self) -> Option<ExitStatus> {
        self.wrapper.try_wait().ok().flatten()
    }

    /// Waits until `addr` accepts TCP connections, failing early if the server exits.
    pub fn wait_listening(&mut self, addr: SocketAddr, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exited() {
                return Err(
                    self.startup_error(format!("exited before listening on {addr}: {status}"))
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(
                    self.startup_error(format!("nothing listening on {addr} after {timeout:?}"))
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// An [`Error::Startup`] for this server.
    pub fn startup_error(&self, detail: String) -> Error {
        Error::Startup {
            server: self.name.clone(),
            detail,
            log: self.log.clone(),
            log_tail: self.log_tail(),
        }
    }

    /// Stops the server: closes the wrapper's stdin and waits for the wrapper (which gives the
    /// server 5 s after `SIGTERM`, then `SIGKILL`s it).
    pub fn stop(&mut self) {
        drop(self.stdin.take());
        // The wrapper bounds its own wait; waiting here cannot hang for long.
        let _ = self.wrapper.wait();
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last 40 lines of a log file (or why it could not be read).
pub fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    match File::open(path).and_then(|mut f| f.read_to_string(&mut text)) {
        Ok(_) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(40)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it).
///
/// Another process may take it before the server binds it; callers retry on startup failure.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::io("bind 127.0.0.1:0", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io("local_addr of 127.0.0.1:0", e))?
        .port();
    Ok(port)
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// Whether something accepts TCP connections on `addr` right now.
pub fn is_listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Waits (bounded) until nothing accepts connections on `addr`; `true` if it closed in time.
pub fn wait_closed(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !is_listening(addr) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// `export NAME='value'` lines for a POSIX shell, one a pair, as the `stoker-git-servers` and
/// `stoker-kube` binaries print them; with `env_file`, also written there through a temporary
/// file renamed into place, so that a script waiting for the file never reads half of it.
pub fn export_env(env: &[(&str, String)], env_file: Option<&Path>) -> Result<String> {
    let mut text = String::new();
    for (name, value) in env {
        text.push_str(&format!(
            "export {name}='{}'\n",
            value.replace('\'', r"'\''")
        ));
    }
    if let Some(path) = env_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &text)
            .map_err(|e| Error::io(format!("write {}", tmp.display()), e))?;
        std::fs::rename(&tmp, path)
            .map_err(|e| Error::io(format!("rename to {}", path.display()), e))?;
    }
    Ok(text)
}

/// Prints `text` on stdout (flushed, so a script reading it sees it now), then parks this
/// thread for ever: the servers a test-server binary started keep running until it is killed.
pub fn print_and_park(text: &str) -> Result<Infallible> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .map_err(|e| Error::io("write stdout", e))?;
    stdout.flush().map_err(|e| Error::io("flush stdout", e))?;
    drop(stdout);
    loop {
        std::thread::park();
    }
}

/// Runs a command to completion, returning its stdout (trailing newline trimmed) or an
/// [`Error::Command`] with its stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let line = describe(cmd);
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Missing {
                program: cmd.get_program().to_string_lossy().into_owned(),
            },
            _ => Error::io(format!("run {line}"), e),
        })?;
    if !output.status.success() {
        return Err(Error::Command {
            command: line,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    let mut out = String::from_utf8_lossy(&output.stdout).into_owned();
    while out.ends_with('\n') || out.ends_with('\r') {
        out.pop();
    }
    Ok(out)
}

/// A command line for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// A directory under the system temp dir that is removed when this process exits, however it
/// exits (a reap-on-eof wrapper around `sleep` removes it on EOF). For statics, which are never
/// dropped; owned values should use `tempfile::TempDir` instead.
#[derive(Debug)]
pub struct ExitTempDir {
    path: PathBuf,
    _janitor: Reaped,
}

impl ExitTempDir {
    /// Creates `$TMPDIR/PREFIX-XXXX`.
    pub fn new(prefix: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{prefix}-"))
            .tempdir()
            .map_err(|e| Error::io("create temp dir", e))?;
        let path = dir.keep();
        // The janitor's log lives inside the directory it removes.
        let log = path.join(".janitor.log");
        let mut cmd = Command::new("sleep");
        cmd.arg("infinity").env("REAP_ON_EOF_CLEANUP", &path);
        let janitor = Reaped::spawn_command("temp dir janitor", &cmd, &log)?;
        Ok(Self {
            path,
            _janitor: janitor,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
