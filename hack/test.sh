#!/usr/bin/env bash
# Runs Stoker's whole test suite: formatting, lints, every test of every crate.
# CI runs exactly this (see .ci/run). Test infrastructure is installed by the scripts next to this
# one (hack/git-servers.sh: git and sshd from Debian; hack/kube.sh: etcd, kube-apiserver and
# kubectl built from the Go module proxy, cached; hack/helm.sh: helm, likewise); the tests start
# and stop the servers.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Property tests: enough cases that CI spends about a minute on them (override with PROPTEST_CASES).
export PROPTEST_CASES="${PROPTEST_CASES:-400}"
# In CI the property tests use a fixed seed, so a run is reproducible and a landing is never
# decided by luck; locally each run explores new cases (failures are kept in
# proptest-regressions/ and replayed everywhere). Override with PROPTEST_RNG_SEED.
if [ "${CI:-}" = true ]; then export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-20261123}"; fi
# A clean clone gains nothing from incremental compilation, whose caches were 3 GB of target/.
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi

step() { printf '\n==> %s\n' "$*"; }

# Every `cargo test` below is logged here too, for the summary line at the end.
results=$(mktemp)
trap 'rm -f "$results"' EXIT

step "test infrastructure: git, git-http-backend, git daemon, sshd (installed once, cached)"
bash hack/git-servers.sh install

step "test infrastructure: etcd, kube-apiserver, kubectl (built from the Go module proxy once, cached)"
bash hack/kube.sh install
# Tests start their API servers from these binaries (stoker_testkit::kube_api).
STOKER_KUBE_BIN_DIR=$(bash hack/kube.sh bin-dir)
export STOKER_KUBE_BIN_DIR

step "test infrastructure: helm (built from the Go module proxy once, cached)"
bash hack/helm.sh install
# The chart tests (stoker-operator/tests/it/chart.rs) run this helm.
STOKER_HELM_BIN_DIR=$(bash hack/helm.sh bin-dir)
export STOKER_HELM_BIN_DIR

step "test infrastructure: Go text/template oracle (built from hack/gotemplate-oracle once, cached)"
# stoker-core/tests/it/template_go.rs compares Stoker's templates with Go's on random templates;
# it fails when this is unset. CI runs the default count (20,000 cases, well under a minute).
STOKER_GOTEMPLATE_ORACLE=$(bash hack/gotemplate-oracle.sh install --print-bin)
export STOKER_GOTEMPLATE_ORACLE

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test (workspace)"
cargo test --workspace --locked 2>&1 | tee -a "$results"

step "stoker-core's Git pack layer against gix (needs the \`testing\` feature)"
cargo test -p stoker-core --features testing --test git_pack_gix --locked 2>&1 | tee -a "$results"

step "stoker-core without default features: builds, tests pass, only the promised dependencies"
cargo test -p stoker-core --no-default-features --locked 2>&1 | tee -a "$results"
deps=$(cargo tree -p stoker-core --no-default-features --edges normal --depth 1 --prefix none --locked \
  | tail -n +2 | awk '{print $1}' | sort -u | tr '\n' ' ')
if [ "$deps" != "async-trait globset serde thiserror " ]; then
  echo "stoker-core --no-default-features depends on: $deps (expected: async-trait globset serde thiserror)" >&2
  exit 1
fi

step "fuzz targets compile (running them needs nightly: ./hack/fuzz.sh)"
cargo check --manifest-path fuzz/Cargo.toml --locked

step "benchmarks compile"
cargo bench -p stoker-benches --no-run --locked

# One closing line for people and CI: every test of every `cargo test` run above.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "\ntests: %d passed, %d failed\n", passed, failed }' "$results"
