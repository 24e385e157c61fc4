//! stoker-agent's integration tests, as one test binary (one link instead of one per file).
//! Each module is what used to be a file of its own: run one with
//! `cargo test -p stoker-agent --test it -- sync_git::`.
//!
//! - `sidecar`: `stoker-agent sidecar` against the real test kube-apiserver, a loopback Git
//!   server and the gateway simulator (`sidecar_support` builds that world);
//! - `sync_cli`, `sync_gateway`, `sync_git`: `stoker-agent sync` as a user runs it.
//!
//! The one test that restarts the API server has a binary of its own
//! (`tests/sidecar_apiserver_restart.rs`): the testkit starts one API server per test binary,
//! and the restart would take it away from every test sharing the binary.
// Test helpers: a panic is the right failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cli_support;
mod sidecar_support;

mod sidecar;
mod sync_cli;
mod sync_gateway;
mod sync_git;
