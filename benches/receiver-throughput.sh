#!/usr/bin/env bash
# The webhook receiver's throughput on loopback (issue 19): REQUESTS requests of each kind
# (wrong HMAC, a v0.5.1 generic ref accepted for an existing GatewaySync, a push matching no
# GatewaySync) over CONCURRENCY keep-alive connections. Prints requests/s and
# p50/p90/p99/max per kind. Usage, from anywhere:
#
#   bash benches/receiver-throughput.sh                       # 2000 requests, 8 connections
#   REQUESTS=500 CONCURRENCY=4 bash benches/receiver-throughput.sh
#
# Runs a release build of stoker-bench-receiver (benches/src/bin/stoker-bench-receiver.rs) on
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
cargo build --release --quiet -p stoker-benches --bin stoker-bench-receiver
log "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$CARGO_TARGET_DIR/release/stoker-bench-receiver"
