//! # stoker-agent
//!
//! The library behind the `stoker-agent` binary: command-line parsing, the one-shot `sync`
//! command and the Kubernetes sidecar ([`sidecar`]). The binary only calls [`run`].
#![forbid(unsafe_code)]

pub mod cli;
pub mod exit;
pub mod gateway;
pub mod oneshot;
pub mod output;
pub mod sidecar;

pub use cli::{Cli, Command};

/// Runs a parsed command line; the returned error is printed as one line by `main`.
pub async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Sync(args) => oneshot::sync(args).await,
        Command::Sidecar(args) => sidecar::run(args).await,
    }
}
