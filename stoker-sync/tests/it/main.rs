//! stoker-sync's integration tests, as one test binary (one link of the engine and its
//! dependencies instead of one per file). Each module is what used to be a file of its own:
//! run one with `cargo test -p stoker-sync --test it -- rules::`.
// Helpers outside `#[test]` functions panic on failure just as the tests do.
#![allow(clippy::unwrap_used)]

mod common;

mod disk_space;
mod incremental;
mod large_files;
mod model;
mod pipeline;
mod rules;
mod state_dir;
