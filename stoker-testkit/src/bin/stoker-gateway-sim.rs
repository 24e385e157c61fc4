//! `stoker-gateway-sim`: a simulator of the Ignition gateway REST endpoints Stoker calls, for
//! tests and demos (loopback only).
//!
//! Prints one JSON line on stdout once listening: `{"url":"http://127.0.0.1:PORT","port":PORT}`
//! (plus `"ca_file"` with `--tls-generate-dir`). See `stoker_testkit::gateway_sim` for the
//! endpoints, the API key check and the `/_sim/...` admin API (calls, Designer sessions,
//! faults, mode).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use stoker_testkit::gateway_sim::{GatewaySim, SimConfig, TestCerts};

/// Ignition gateway simulator for tests (loopback only): scan, designers, gateway-info.
#[derive(Debug, Parser)]
#[command(name = "stoker-gateway-sim", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Require the API key held in this file (in the `X-Ignition-API-Token` header); surrounding
    /// whitespace is ignored. Without it, no key is needed.
    #[arg(long, value_name = "FILE")]
    api_key_file: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_generate_dir"
    )]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a throw-away CA and certificate made here with `openssl` (clients
    /// trust DIR/ca.pem).
    #[arg(long, value_name = "DIR")]
    tls_generate_dir: Option<PathBuf>,
    /// The gateway name `gateway-info` reports.
    #[arg(long, default_value = "stoker-sim")]
    name: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = SimConfig::new().with_listen(args.listen);
    config.name = args.name.clone();
    if let Some(path) = &args.api_key_file {
        let key = std::fs::read_to_string(path)
            .with_context(|| format!("reading the API key file {}", path.display()))?;
        let key = key.trim();
        anyhow::ensure!(
            !key.is_empty(),
            "the API key file {} is empty",
            path.display()
        );
        config = config.with_api_key(key);
    }
    let mut ca_file = None;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config = config.with_tls(cert, key);
    } else if let Some(dir) = &args.tls_generate_dir {
        let certs = TestCerts::generate(dir).context("generating test certificates")?;
        config = config.with_tls(&certs.cert_file, &certs.key_file);
        ca_file = Some(certs.ca_file);
    }
    let sim = GatewaySim::start(config).context("starting the gateway simulator")?;
    let mut line = serde_json::json!({
        "url": sim.url(),
        "port": sim.addr().port(),
    });
    if let Some(ca_file) = ca_file {
        line["ca_file"] = serde_json::json!(ca_file);
    }
    // Never returns but with an error: the simulator runs until this process is killed.
    match stoker_testkit::process::print_and_park(&format!("{line}\n"))
        .context("print the simulator's address")? {}
}
