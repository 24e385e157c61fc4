//! `stoker-bench-git-memory --path ours|gix sync ARGS...`
//!
//! Runs `stoker-agent sync ARGS...` (the same library the agent binary runs, on the same
//! two-worker runtime) with the Git source on one of two paths:
//!
//! - `ours`: what the agent does, the first fetch indexed by Stoker's own pack indexer and trees
//!   and blobs read with positioned reads (stoker-core's hand-written pack layer);
//! - `gix`: gix's own path, the first fetch through gix's `prepare_fetch(..).receive(..)` and
//!   every object read through gix's object database (its memory-mapped packs), switched on with
//!   stoker-core's measurement switch (`git::testing::use_gix_path`, feature `testing`).
//!
//! For benches/memory-limit.sh: a cold fetch and sync into an empty cache and destination, under
//! a memory limit. The exit status is the agent's.

use std::process::ExitCode;

use clap::Parser;
use stoker_agent::Cli;

const USAGE: &str = "usage: stoker-bench-git-memory --path ours|gix sync ARGS...";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let gix = match (args.next().as_deref(), args.next().as_deref()) {
        (Some("--path"), Some("ours")) => false,
        (Some("--path"), Some("gix")) => true,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let cli = match Cli::try_parse_from(std::iter::once("stoker-agent".to_owned()).chain(args)) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(2);
        }
    };
    stoker_core::git::testing::use_gix_path(gix);
    // As the agent's `main`: its crypto provider, then its runtime.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    stoker_agent::run_on_runtime(cli)
}
