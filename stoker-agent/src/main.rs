//! `stoker-agent`: see `stoker-agent --help`. All logic lives in the `stoker_agent` library.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use stoker_agent::Cli;
use stoker_agent::cli::LogFormat;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level, cli.log_format);
    // One crypto provider for the whole process (kube's, reqwest's and gix's rustls): feature
    // unification may enable more than one, and then rustls refuses to choose. Only here, in
    // `main`: a library must not decide it for the program that embeds it.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    stoker_agent::run_on_runtime(cli)
}

fn init_logging(level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
