#!/usr/bin/env bash
# The operator at scale (issue 4): CRS GatewaySyncs × PODS gateway pods each on the test
# kube-apiserver; the time from creating them until every GatewaySync has its status, and the
# operator's peak memory. Usage, from anywhere:
#
#   bash benches/operator-scale.sh            # 100 × 10, agents' reports included
#   CRS=10 PODS=100 bash benches/operator-scale.sh
#
# Environment (see benches/src/bin/stoker-bench-operator.rs for all of it):
#   CRS=100 PODS=10   GatewaySyncs, and gateway pods per GatewaySync
#   NAMESPACES=1      spread the GatewaySyncs over this many namespaces (watched by one operator)
#   REPORTS=1         also write every pod's status ConfigMap (Synced) and wait for Ready=True
#   SECRETS=0         unrelated 16 KiB Secrets per namespace (as Helm releases would be)
#   CONCURRENCY=      the operator's --max-concurrent-reconciles (default: the operator's)
#   IDLE=0            seconds to keep watching after convergence
#   STOKER_TEST_KUBECONFIG  reuse an API server started by `hack/kube.sh start`; otherwise the
#                           benchmark starts its own (from `hack/kube.sh install`'s binaries)
#
# What runs: release builds of `stoker-operator` and of `stoker-bench-operator`; then the latter
# starts (or reuses) etcd + kube-apiserver and a loopback Git server (git http-backend), runs the
# operator binary as a separate process (JSON logs in a scratch directory), creates everything
# while polling the GatewaySyncs, and prints a Markdown table: times, the operator's peak RSS
# (VmHWM from /proc) and CPU time, reconciles and ref resolutions (from its /metrics), and the
# API server's request counters (LIST calls per resource). It plays the kubelet (pod phases)
# and the agents (status ConfigMaps); no kubelet, scheduler or controller-manager run.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
need_kube_bins

log "building the release operator and benchmark binaries"
cargo build --release --quiet -p stoker-operator --bin stoker-operator
cargo build --release --quiet -p stoker-benches --bin stoker-bench-operator
export STOKER_BENCH_OPERATOR=${STOKER_BENCH_OPERATOR:-$CARGO_TARGET_DIR/release/stoker-operator}

log "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
exec "$CARGO_TARGET_DIR/release/stoker-bench-operator"
