//! `stoker-git-servers`: every Git test server over one root, until killed.
//!
//! Used by `hack/git-servers.sh start`. Prints `export STOKER_TEST_GIT_*=…` lines (and writes
//! them to `--env-file` once all servers accept connections), then waits. When this process
//! dies — `SIGTERM`, `SIGKILL`, anything — its servers stop (see `stoker_testkit::process`).
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use stoker_testkit::git::GitServers;

/// Start smart HTTP (open and token), git daemon and sshd over one root of bare repositories.
#[derive(Debug, Parser)]
#[command(name = "stoker-git-servers", version)]
struct Args {
    /// Directory of bare repositories (created); default: a temp dir removed on exit.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Directory for keys, configs and logs (default: inside the root's parent temp dir, or
    /// ROOT/.state).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Also write the `export …` lines to this file (atomically, once everything is up).
    #[arg(long)]
    env_file: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let servers = GitServers::start(args.root.as_deref(), args.state.as_deref())
        .context("start the Git test servers")?;
    let mut text = String::new();
    for (name, value) in servers.env() {
        text.push_str(&format!(
            "export {name}='{}'\n",
            value.replace('\'', r"'\''")
        ));
    }
    if let Some(path) = &args.env_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &text).with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).context("write stdout")?;
    stdout.flush().context("flush stdout")?;
    drop(stdout);
    loop {
        std::thread::park();
    }
}
