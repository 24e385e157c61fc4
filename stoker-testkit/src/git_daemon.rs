//! `git daemon` on a free loopback port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::process::{Reaped, STARTUP_TIMEOUT, free_port, loopback};
use crate::{Error, Result};

/// A running `git daemon --export-all --base-path=ROOT` on `127.0.0.1:PORT`.
///
/// It stops when dropped, and when this process exits (see [`crate::process`]).
#[derive(Debug)]
pub struct GitDaemon {
    process: Reaped,
    port: u16,
    root: PathBuf,
    _logs: Option<tempfile::TempDir>,
}

impl GitDaemon {
    /// Serves the bare repositories below `root` (`git://127.0.0.1:PORT/NAME` is `ROOT/NAME`);
    /// the log goes to a temporary directory.
    pub fn start(root: &Path) -> Result<Self> {
        let logs = tempfile::Builder::new()
            .prefix("stoker-git-daemon-")
            .tempdir()
            .map_err(|e| Error::io("create temp dir", e))?;
        let mut daemon = Self::start_logging_to(root, &logs.path().join("git-daemon.log"))?;
        daemon._logs = Some(logs);
        Ok(daemon)
    }

    /// Like [`GitDaemon::start`], logging to `log`.
    pub fn start_logging_to(root: &Path, log: &Path) -> Result<Self> {
        let root = root
            .canonicalize()
            .map_err(|e| Error::io(format!("canonicalize {}", root.display()), e))?;
        let mut last = None;
        // The free port can be taken between picking and binding it: retry a few times.
        for _ in 0..5 {
            let port = free_port()?;
            let args: Vec<std::ffi::OsString> = vec![
                "daemon".into(),
                "--reuseaddr".into(),
                "--export-all".into(),
                "--informative-errors".into(),
                format!("--base-path={}", root.display()).into(),
                "--listen=127.0.0.1".into(),
                format!("--port={port}").into(),
                root.clone().into(),
            ];
            let mut cmd = std::process::Command::new("git");
            cmd.args(&args)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null");
            let mut process = Reaped::spawn_command("git daemon", &cmd, log)?;
            match process.wait_listening(loopback(port), STARTUP_TIMEOUT) {
                Ok(()) => {
                    return Ok(Self {
                        process,
                        port,
                        root,
                        _logs: None,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Invalid("git daemon did not start".into())))
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    /// The directory served.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `git://127.0.0.1:PORT` (no trailing slash); a repository is at `{url}/{name}`.
    pub fn url(&self) -> String {
        format!("git://127.0.0.1:{}", self.port)
    }

    /// The daemon's log file.
    pub fn log(&self) -> &Path {
        self.process.log()
    }

    /// Stops the daemon.
    pub fn stop(mut self) {
        self.process.stop();
    }
}
