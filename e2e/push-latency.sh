#!/usr/bin/env bash
# How long a push takes to reach a fleet of gateways (issue 19): from the moment a Git host's
# push event is POSTed to the operator's webhook receiver until the GatewaySync's status says
# every gateway is synced at the pushed commit. Runs on a cluster that is up
# (`hack/images.sh build && hack/cluster.sh up`); not part of e2e/run.sh.
#
#   e2e/push-latency.sh [RUNS]     RUNS pushes (default 5), one after the other
#
# What it sets up: the chart (release `stoker`, installed or upgraded: 1 replica, the receiver
# on with an HMAC secret), examples/repo served by `git daemon` on 10.87.0.1, the GatewaySync
# `plant-gateways` with polling off (only the push makes it resolve) and the simulator's
# StatefulSet site1 with STOKER_PUSH_GATEWAYS replicas (default 10), all in the namespace
# `push-latency`, which is deleted at the end. Each run commits a change to
# shared/versions.json (a file every gateway gets), POSTs GitHub's push event for it, signed,
# to an operator pod's receiver (port 9444), and follows the GatewaySync with a watch:
#   resolved   the status names the new commit (receiver, controller, ls-remote, status write)
#   synced     the status also says N/N synced (the agents fetched, synced, asked the gateway
#              to rescan and reported; the controller counted them)
# It prints each run and the minimum, median and maximum, with the machine's CPU count and load.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC2034 # read by hack/lib/common.sh
script=push-latency
# shellcheck source=hack/lib/common.sh
. hack/lib/common.sh
# shellcheck source=hack/lib/apt.sh
. hack/lib/apt.sh
# shellcheck source=e2e/lib.sh
. e2e/lib.sh

runs=${1:-5}
n=${STOKER_PUSH_GATEWAYS:-10}
ns=push-latency
case "$runs" in '' | *[!0-9]*) die "usage: e2e/push-latency.sh [RUNS]" ;; esac
[ -f target/cluster/env ] || die "no cluster: 'hack/images.sh build' and 'hack/cluster.sh up' first"

cleanup() {
  if [ -n "${git_daemon_pid:-}" ]; then kill "$git_daemon_pid" 2>/dev/null || true; fi
  if [ -n "${kube_bin:-}" ]; then kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

setup() {
  apt_ensure git:git jq:jq openssl:openssl curl:curl
  cluster_env
  git_server
  receiver_secret=$(openssl rand -hex 16)
  install_chart --set replicaCount=1 --set webhookReceiver.enabled=true \
    --set webhookReceiver.hmac.secret="$receiver_secret" >/dev/null
  kubectl -n stoker-system rollout status deployment/stoker-controller-manager --timeout=120s >/dev/null
  receiver_ip=$(receiver_ip)
  [ -n "$receiver_ip" ] || die "no running operator pod"
  until_ok 60 curl -fsS "http://$receiver_ip:9444/healthz" >/dev/null || die "the receiver at $receiver_ip:9444 does not answer"
  kubectl delete namespace "$ns" --wait=true --ignore-not-found >/dev/null
  kubectl create namespace "$ns" >/dev/null
  gatewaysync "$ns" polling-off | kubectl apply -f - >/dev/null
  gateways "$ns" "$n" | kubectl apply -f - >/dev/null
  local start=$SECONDS
  until_ok 600 summary_is "$n/$n synced" >/dev/null ||
    die "$n gateways not synced after 600 s: $(kubectl -n "$ns" get gs plant-gateways -o 'jsonpath={.status.gatewaySummary}')"
  log "$n gateways up and synced after $((SECONDS - start)) s; receiver at $receiver_ip:9444"
}

summary_is() { [ "$(kubectl -n "$ns" get gs plant-gateways -o 'jsonpath={.status.gatewaySummary}')" = "$1" ]; }

# one_run I: prints "RESOLVED SYNCED", seconds from the POST.
one_run() {
  local before after body fd watcher line t0 now resolved= synced= c summary
  before=$(git -C "$PWD/target/e2e/work" rev-parse HEAD)
  after=$(commit_file shared/versions.json "{\"push-latency\": \"run $1 $RANDOM\"}")
  body=$(push_payload main "$before" "$after")
  exec {fd}< <(exec "$kube_bin/kubectl" -n "$ns" get gs plant-gateways --watch \
    -o 'jsonpath={.status.lastSyncCommit} {.status.gatewaySummary}{"\n"}')
  watcher=$!
  # The first line is the current state: from then on the watch is established.
  read -r -t 30 -u "$fd" line || die "the watch on the GatewaySync gave nothing"
  t0=$EPOCHREALTIME
  post_push "$receiver_ip" "$body" "push-latency-$$-$1" >/dev/null
  while read -r -t 120 -u "$fd" c summary; do
    now=$EPOCHREALTIME
    [ "$c" = "$after" ] || continue
    [ -n "$resolved" ] || resolved=$now
    if [ "$summary" = "$n/$n synced" ]; then
      synced=$now
      break
    fi
  done
  kill "$watcher" 2>/dev/null || true
  exec {fd}<&-
  [ -n "$synced" ] || die "run $1: not $n/$n synced at ${after:0:7} after 120 s"
  awk -v t0="$t0" -v r="$resolved" -v s="$synced" 'BEGIN { printf "%.2f %.2f\n", r - t0, s - t0 }'
}

# stats: min, median and max of the numbers on stdin.
stats() {
  sort -g | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "min %.2f s, median %.2f s, max %.2f s", v[1], m, v[NR] }'
}

setup
log "$(nproc) CPUs; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
results=()
for i in $(seq 1 "$runs"); do
  r=$(one_run "$i")
  results+=("$r")
  log "run $i: resolved after ${r% *} s, $n/$n synced after ${r#* } s"
done
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
log "push -> resolved: $(printf '%s\n' "${results[@]}" | cut -d' ' -f1 | stats)"
log "push -> $n/$n synced: $(printf '%s\n' "${results[@]}" | cut -d' ' -f2 | stats)"
