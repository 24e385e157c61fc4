//! stoker-core's integration tests, as one test binary (one link instead of one per file).
//! Each module is what used to be a file of its own, compiled with the features it tests: run
//! one with `cargo test -p stoker-core --test it -- git_fetch::`.
// Helpers outside `#[test]` functions panic on failure just as the tests do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[cfg(feature = "git")]
mod git_support;

#[cfg(feature = "git")]
mod git_cache;
#[cfg(feature = "git")]
mod git_fetch;
#[cfg(feature = "git")]
mod git_resolve;
#[cfg(feature = "git")]
mod git_servers;
#[cfg(feature = "git")]
mod github_app;
#[cfg(feature = "ignition")]
mod ignition;
#[cfg(feature = "notify")]
mod notify;
mod template_go;
