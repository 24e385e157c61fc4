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

. "$(dirname "$0")/lib.sh"
need_kube_bins

exec_release_bench stoker-bench-receiver
