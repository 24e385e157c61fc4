//! # stoker-agent
//!
//! The library behind the `stoker-agent` binary: command-line parsing ([`cli`]), the one-shot
//! `sync` command ([`oneshot`], with its [`destination`] checks, [`output`] and the Ignition
//! gateway rescan in [`gateway`]), exit statuses ([`exit`]), and the long-running Kubernetes
//! sidecar ([`sidecar`]). The binary parses the command line, starts logging, installs the
//! process's rustls crypto provider (aws-lc-rs; this library never does) and calls
//! [`run_on_runtime`], which runs [`run`] on the agent's runtime.
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

/// Runs [`run`] on the agent's runtime (two workers) and returns its exit status: what the
/// `stoker-agent` binary and the Git memory benchmark do once the command line is parsed,
/// logging started and the crypto provider installed (by their `main`: a library must not
/// choose the process's provider for the program that embeds it).
pub fn run_on_runtime(cli: Cli) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Prints a failure itself (one line on stderr; JSON on stdout with --output json).
    let code = runtime.block_on(run(cli));
    // Do not wait for blocking work still running (a sync abandoned at the end of the
    // shutdown grace): every write is atomic, the next start converges.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
