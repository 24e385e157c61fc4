//! Shared helpers for Stoker benchmarks: see `benches/` and `README.md`.
#![forbid(unsafe_code)]
