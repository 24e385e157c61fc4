//! stoker-operator's integration tests, as one test binary (one link instead of one per file):
//! run one module with `cargo test -p stoker-operator --test it -- chart::`.
//!
//! `binary` runs the operator binary against the API server stoker-testkit starts for this
//! binary; `chart` installs the Helm chart on an API server of its own (see `chart::cluster`).
// Helpers outside `#[test]` functions panic on failure just as the tests do.
#![allow(clippy::unwrap_used)]

mod binary;
mod chart;
