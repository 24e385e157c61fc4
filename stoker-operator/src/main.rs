//! `stoker-operator`: see `stoker-operator --help`. All logic lives in the `stoker_operator`
//! library and in `stoker-k8s`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use stoker_operator::{Args, LogFormat};

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(&args.log_level, args.log_format);
    // kube and reqwest both use rustls; one crypto provider for the whole process, chosen here
    // in `main` and nowhere in the libraries.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(stoker_operator::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, once (not also as a log event): the cause chain, outermost first.
            eprintln!("error: {}", stoker_core::error::chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in a log file or collector.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
