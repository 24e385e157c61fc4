#!/usr/bin/env bash
# Runs Stoker's whole test suite: formatting, lints, every test of every crate.
# CI runs exactly this (see .ci/run). Test infrastructure that later suites need (API server,
# Git servers, …) is started here by the scripts next to this one, and stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Property tests: enough cases that CI spends about a minute on them (override with PROPTEST_CASES).
export PROPTEST_CASES="${PROPTEST_CASES:-256}"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (workspace)"
cargo test --workspace --locked

step "benchmarks compile"
cargo bench -p stoker-benches --no-run --locked
