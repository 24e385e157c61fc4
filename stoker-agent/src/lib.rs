//! # stoker-agent
//!
//! The library behind the `stoker-agent` binary: command-line parsing ([`cli`]), the one-shot
//! `sync` command ([`oneshot`], with its [`destination`] checks, [`output`] and the Ignition
//! gateway rescan in [`gateway`]), exit statuses ([`exit`]), and the long-running Kubernetes
//! sidecar ([`sidecar`]). The binary parses the command line, starts logging, installs the
//! process's rustls crypto provider (aws-lc-rs; this library never does) and calls [`run`].
#![forbid(unsafe_code)]

pub mod cli;
pub mod destination;
pub mod exit;
pub mod gateway;
pub mod oneshot;
pub mod output;
pub mod sidecar;

pub use cli::{Cli, Command};

/// Runs a parsed command line and returns its exit status ([`exit`]); a failure is printed
/// here: one line on stderr, and with `sync --output json` a JSON object on stdout too.
pub async fn run(cli: Cli) -> std::process::ExitCode {
    let json =
        matches!(&cli.command, Command::Sync(args) if args.output == cli::OutputFormat::Json);
    let outcome = match cli.command {
        Command::Sync(args) => oneshot::sync(args).await,
        Command::Sidecar(args) => sidecar::run(args).await,
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            let status = exit::status_of(&error);
            exit::report(&error, status, json);
            exit::code(status)
        }
    }
}
