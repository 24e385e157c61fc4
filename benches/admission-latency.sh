#!/usr/bin/env bash
# What the agent injector adds to a pod creation (issue 16): PODS pod creations through the
# operator's admission webhook, interleaved with as many the API server admits without calling
# it (the baseline, same session). Prints p50/p90/p99/max of both. Usage, from anywhere:
#
#   bash benches/admission-latency.sh            # 1000 pods of each kind
#   PODS=200 bash benches/admission-latency.sh
#
# Runs a release build of stoker-bench-admission (benches/src/bin/stoker-bench-admission.rs) on
# the test kube-apiserver (hack/kube.sh's binaries; STOKER_TEST_KUBECONFIG to reuse one).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

log() { printf '==> %s\n' "$*" >&2; }

if [ -z "${STOKER_KUBE_BIN_DIR:-}" ]; then
  STOKER_KUBE_BIN_DIR=$(bash hack/kube.sh bin-dir) || {
    log "kube-apiserver is not built: run hack/kube.sh install first"
    exit 1
  }
  export STOKER_KUBE_BIN_DIR
fi

log "building the release benchmark binary"
cargo build --release --quiet -p stoker-benches --bin stoker-bench-admission
log "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$CARGO_TARGET_DIR/release/stoker-bench-admission"
