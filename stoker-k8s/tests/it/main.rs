//! stoker-k8s's integration tests, as one test binary (one link instead of one per file). Each
//! module is what used to be a file of its own: run one with
//! `cargo test -p stoker-k8s --test it -- leader::`.
//!
//! The tests that need a Kubernetes API server share the one stoker-testkit starts for this
//! binary; each works in namespaces of its own, and the webhook tests register configurations
//! restricted to theirs. The one test that restarts the API server has a binary of its own
//! (`tests/controller_restart.rs`).
// Helpers outside `#[test]` functions panic on failure just as the tests do.
#![allow(clippy::unwrap_used)]

mod controller_support;

mod alerting;
mod apiserver;
mod controller;
mod crd;
mod github_token;
mod leader;
mod receiver;
mod webhook;
