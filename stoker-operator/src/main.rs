//! The Stoker operator binary. The controller is not built yet; this binary only says so.
#![forbid(unsafe_code)]

use clap::Parser;

/// Stoker operator: resolves Git refs for `GatewaySync` resources (not implemented yet).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {}

fn main() -> anyhow::Result<()> {
    let _args = Args::parse();
    anyhow::bail!(
        "the operator's controller is not implemented yet; use `stoker-agent sync` for one-shot syncs"
    )
}
