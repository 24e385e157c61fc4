#!/usr/bin/env bash
# Runs Stoker's whole test suite: formatting, lints, every test of every crate, then the
# end-to-end suite (e2e/run.sh) on a real one-node cluster.
# CI runs exactly this (see .ci/run). Test infrastructure is installed by the scripts next to this
# one (hack/git-servers.sh: git and sshd from Debian; hack/kube.sh: etcd, kube-apiserver and
# kubectl built from the Go module proxy, cached; hack/helm.sh: helm, likewise); the tests start
# and stop the servers.
#
# The end-to-end suite needs root on Linux (hack/cluster.sh makes a network namespace and runs
# containerd and the kubelet; hack/images.sh runs podman), the Debian mirror (podman, containerd,
# mmdebstrap, …) and the Go module proxy (kubelet, kube-controller-manager and kube-scheduler,
# `hack/kube.sh install --node`). Not root: the run stops at once saying so; outside CI,
# STOKER_E2E=skip leaves the suite out (and the closing line says it was skipped). Its images are
# built from the debug binaries `cargo test --workspace` leaves in target/debug (no release
# build). On a 2-core machine it adds about 15 minutes to a cold run (nothing in
# ~/.cache/stoker-hack/: the node's binaries about 10, the base image about 3, the images, the
# cluster and the cases the rest) and about 3 minutes to a warm one; the cluster is always taken
# down, also when a case fails or the run is interrupted.
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

# Every `cargo test` below is logged here too, for the summary line at the end; so is e2e/run.sh.
results=$(mktemp)
e2e_started=
cleanup() {
  rm -f "$results"
  # e2e/run.sh takes its cluster down itself; this covers a run stopped while it was starting.
  if [ -n "$e2e_started" ]; then bash hack/cluster.sh down >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# The end-to-end suite runs last, but what it needs is checked first: no half-hour of cargo
# before finding out.
e2e=run
if [ "${STOKER_E2E:-}" = skip ]; then
  if [ "${CI:-}" = true ]; then
    echo "STOKER_E2E=skip is not allowed in CI: the end-to-end suite is part of the test suite" >&2
    exit 1
  fi
  e2e=skip
elif [ "$(id -u)" -ne 0 ] || [ "$(uname -s)" != Linux ]; then
  echo "the end-to-end suite (e2e/run.sh) needs root on Linux: it creates a network namespace and" >&2
  echo "runs containerd, the kubelet and podman. Run hack/test.sh as root, or STOKER_E2E=skip" >&2
  echo "hack/test.sh to leave it out (not in CI)." >&2
  exit 1
fi

step "test infrastructure: git, git-http-backend, git daemon, sshd (installed once, cached)"
bash hack/git-servers.sh install

step "test infrastructure: etcd, kube-apiserver, kubectl (built from the Go module proxy once, cached)"
bash hack/kube.sh install
if [ "$e2e" = run ]; then
  step "end-to-end infrastructure: kubelet, kube-controller-manager, kube-scheduler (built once, cached)"
  bash hack/kube.sh install --node
  step "end-to-end infrastructure: podman and the images' Debian base (made once, cached)"
  bash hack/images.sh base
fi
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
cargo test -p stoker-core --features testing --test git_pack_gix --test git_gix_path --locked 2>&1 | tee -a "$results"

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
# In the test profile, which reuses what `cargo test` built: `cargo bench --no-run` compiled every
# dependency again with optimisations, about 15 minutes of a cold run on 2 cores.
cargo test -p stoker-benches --benches --no-run --locked

e2e_status=0
if [ "$e2e" = run ]; then
  step "end-to-end suite: images of the debug binaries above, a one-node cluster, e2e/run.sh"
  e2e_started=1
  # The binaries `cargo test --workspace` built for the integration tests, as the tests build
  # them (dev profile, the dev-dependencies' features unified in): the suite tests the code and
  # the images' runtime, not the release profile.
  if bash hack/images.sh build --binaries "${CARGO_TARGET_DIR:-target}/debug"; then
    bash e2e/run.sh 2>&1 | tee -a "$results" || e2e_status=$?
  else
    e2e_status=1
  fi
fi

# One closing line for people and CI: every test of every `cargo test` run above, and the cases
# of the end-to-end suite.
awk -v e2e="$e2e" '
  /^test result:/ { passed += $4; failed += $6 }
  /^e2e: [0-9]+ passed, [0-9]+ failed/ { e2e_line = $0 }
  END {
    printf "\ntests: %d passed, %d failed", passed, failed
    if (e2e == "skip") print "; e2e: skipped (STOKER_E2E=skip)"
    else if (e2e_line == "") print "; e2e: did not finish (see its output above)"
    else { sub(/^e2e: /, "", e2e_line); print "; e2e: " e2e_line }
  }' "$results"
exit "$e2e_status"
