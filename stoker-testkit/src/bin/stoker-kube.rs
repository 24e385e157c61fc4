//! `stoker-kube`: etcd + kube-apiserver on loopback, until killed.
//!
//! Used by `hack/kube.sh start`. Prints `export STOKER_TEST_KUBECONFIG=…` and
//! `export STOKER_KUBE_BIN_DIR=…` (and writes them to `--env-file` once `/readyz` is ok), then
//! waits. When this process dies — `SIGTERM`, `SIGKILL`, anything — etcd and the API server stop
//! (see `stoker_testkit::process`).
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use stoker_testkit::kube_api::{Cluster, KubeBinaries};

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
    let mut text = String::new();
    for (name, value) in cluster.env() {
        text.push_str(&format!(
            "export {name}='{}'\n",
            value.replace('\'', r"'\''")
        ));
    }
    if let Some(path) = &args.env_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &text).with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("rename to {}", path.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).context("write stdout")?;
    stdout.flush().context("flush stdout")?;
    drop(stdout);
    loop {
        std::thread::park();
    }
}
