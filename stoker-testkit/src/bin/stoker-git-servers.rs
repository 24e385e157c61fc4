//! `stoker-git-servers`: every Git test server over one root, until killed.
//!
//! Used by `hack/git-servers.sh start`. Prints `export STOKER_TEST_GIT_*=…` lines (and writes
//! them to `--env-file` once all servers accept connections), then waits. When this process
//! dies — `SIGTERM`, `SIGKILL`, anything — its servers stop (see `stoker_testkit::process`).
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use stoker_testkit::git::GitServers;
use stoker_testkit::process::{export_env, print_and_park};

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
    let text =
        export_env(&servers.env(), args.env_file.as_deref()).context("write the export lines")?;
    // Never returns but with an error: the servers run until this process is killed.
    match print_and_park(&text).context("print the export lines")? {}
}
