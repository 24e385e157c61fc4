//! Prints the `GatewaySync` CustomResourceDefinition as YAML, or writes it into the Helm chart.
//!
//! ```text
//! cargo run -p stoker-k8s --bin crdgen               # YAML on stdout
//! cargo run -p stoker-k8s --bin crdgen -- --write    # charts/stoker/crds/gatewaysyncs.stoker.io.yaml
//! cargo run -p stoker-k8s --bin crdgen -- --write PATH
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use stoker_k8s::crd::{CRD_FILE, crd_yaml};

const USAGE: &str = "usage: crdgen [--write [PATH]]

Prints the GatewaySync CustomResourceDefinition (stoker.io/v1alpha1) as YAML on stdout.
With --write, writes it to PATH instead (default: the Helm chart's
charts/stoker/crds/gatewaysyncs.stoker.io.yaml in this workspace).";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("crdgen: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let yaml = crd_yaml().map_err(|error| stoker_core::error::chain(&error))?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => std::io::stdout()
            .write_all(yaml.as_bytes())
            .map_err(|error| format!("writing to stdout: {error}")),
        ["--write"] | ["--write", _] => {
            let path = match args.get(1) {
                Some(path) => PathBuf::from(path),
                None => workspace_root().join(CRD_FILE),
            };
            std::fs::write(&path, yaml).map_err(|error| format!("{}: {error}", path.display()))?;
            eprintln!("crdgen: wrote {}", path.display());
            Ok(())
        }
        ["-h"] | ["--help"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unexpected arguments {args:?}\n{USAGE}")),
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.join(".."), PathBuf::from)
}
