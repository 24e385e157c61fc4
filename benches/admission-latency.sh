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

. "$(dirname "$0")/lib.sh"
need_kube_bins

exec_release_bench stoker-bench-admission
