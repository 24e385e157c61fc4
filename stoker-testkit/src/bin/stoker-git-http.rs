//! `stoker-git-http`: a smart-HTTP Git server for tests, in front of `git http-backend`.
//!
//! Prints one JSON line on stdout once listening: `{"url":"http://127.0.0.1:PORT","port":PORT,
//! "root":"/abs/root"}`. See `stoker_testkit::git_http` for auth and the admin endpoints.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use stoker_testkit::git_http::{GitHttpState, serve};

/// Smart HTTP Git server for tests (loopback only), bridging to `git http-backend`.
#[derive(Debug, Parser)]
#[command(name = "stoker-git-http", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Directory of bare repositories to serve (`GIT_PROJECT_ROOT`).
    #[arg(long)]
    root: PathBuf,
    /// Require this token: Basic auth with it as the password, or `Bearer TOKEN`.
    #[arg(long, env = "STOKER_GIT_HTTP_TOKEN")]
    token: Option<String>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.listen.ip().is_loopback(),
        "stoker-git-http is a test server: listen on a loopback address, not {}",
        args.listen
    );
    let root = args
        .root
        .canonicalize()
        .with_context(|| format!("project root {}", args.root.display()))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("bind {}", args.listen))?;
    let addr = listener.local_addr().context("local address")?;
    let line = serde_json::json!({
        "url": format!("http://{addr}"),
        "port": addr.port(),
        "root": root,
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").context("write stdout")?;
    stdout.flush().context("flush stdout")?;
    drop(stdout);
    let state = GitHttpState::new(root, args.token.as_deref());
    serve(listener, state, std::future::pending())
        .await
        .context("serve")
}
