//! # stoker-agent
//!
//! The library behind the `stoker-agent` binary: command-line parsing ([`cli`]), the one-shot
//! `sync` command ([`oneshot`], with its [`destination`] checks, [`output`] and the Ignition
//! gateway rescan in [`gateway`]), exit statuses ([`exit`]), and the long-running Kubernetes
//! sidecar ([`sidecar`]). The binary parses the command line, starts logging and calls
//! [`run_main`], which installs the process's rustls crypto provider (aws-lc-rs) and runs
//! [`run`] on the agent's runtime; only a program's `main` may call it.
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

/// What a program's `main` does once the command line is parsed and logging started: installs
/// the process's rustls crypto provider (aws-lc-rs), then runs [`run`] on a runtime of two
/// workers and returns its exit status.
///
/// Only for a `main` (the `stoker-agent` binary, the Git memory benchmark): one crypto provider
/// for the whole process (kube's, reqwest's and gix's rustls), as feature unification may enable
/// more than one and then rustls refuses to choose; a library embedding this one must not have
/// it decided for it.
pub fn run_main(cli: Cli) -> std::process::ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
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
