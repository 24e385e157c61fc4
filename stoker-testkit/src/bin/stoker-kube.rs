//! `stoker-kube`: etcd + kube-apiserver on loopback, until killed.
//!
//! Used by `hack/kube.sh start`. Prints `export STOKER_TEST_KUBECONFIG=…` and
//! `export STOKER_KUBE_BIN_DIR=…` (and writes them to `--env-file` once `/readyz` is ok), then
//! waits. When this process dies — `SIGTERM`, `SIGKILL`, anything — etcd and the API server stop
//! (see `stoker_testkit::process`).
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use stoker_testkit::kube_api::{Cluster, KubeBinaries};
use stoker_testkit::process::{export_env, print_and_park};

/// Start etcd and kube-apiserver (RBAC, TLS, admin token) on free 127.0.0.1 ports.
#[derive(Debug, Parser)]
#[command(name = "stoker-kube", version)]
struct Args {
    /// Directory for keys, certificates, etcd data, logs and the kubeconfig (created; kept);
    /// default: a temp dir removed on exit.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Directory of etcd, kube-apiserver and kubectl; default: `$STOKER_KUBE_BIN_DIR`, else
    /// `hack/kube.sh bin-dir`.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Also write the `export …` lines to this file (atomically, once the API server is ready).
    #[arg(long)]
    env_file: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bins = match &args.bin_dir {
        Some(dir) => KubeBinaries::in_dir(dir),
        None => KubeBinaries::locate(),
    }
    .context("find the Kubernetes binaries")?;
    let cluster = Cluster::start(args.state.as_deref(), bins)
        .context("start the test Kubernetes API server")?;
    let text =
        export_env(&cluster.env(), args.env_file.as_deref()).context("write the export lines")?;
    // Never returns but with an error: the servers run until this process is killed.
    match print_and_park(&text).context("print the export lines")? {}
}
