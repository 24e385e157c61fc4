//! stoker-testkit's own tests, as one test binary (one link instead of one per file). Each
//! module is what used to be a file of its own: run one with
//! `cargo test -p stoker-testkit --test it -- kube_api::`.
//!
//! Only `kube_api` uses the API server this binary starts, and it is the one module that
//! restarts it, so no other test loses its server to the restart.
// Test helpers: a panic is the right failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod gateway_sim;
mod kube_api;
mod servers;
