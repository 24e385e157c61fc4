#!/usr/bin/env bash
# Stoker's end-to-end suite: the path a user takes, on a real one-node cluster (hack/cluster.sh)
# with the images built here (hack/images.sh). Nothing is simulated but the Ignition gateway
# (stoker-testkit's simulator, as an image): the chart is helm-installed, the webhook injects the
# agent into real pods, the agent syncs into the pods' volumes, the controller manager collects
# garbage.
#
#   e2e/run.sh            build what is missing, bring a fresh cluster up, run every case, tear
#                         the cluster down; exit 1 if any case failed
#   e2e/run.sh --keep     leave the cluster up afterwards (hack/cluster.sh down to remove it)
#
# Cases (each prints `ok` or `FAIL` with what it saw):
#   operator-ready        helm install (2 replicas, the webhook receiver on with an HMAC
#                         secret); both operator replicas Ready; one holds the Lease
#   inject-and-sync       a gateway StatefulSet of the simulator with v0.5.1's annotations: the
#                         agent is injected as a native sidecar, the gateway container starts
#                         only after the first sync, the files are in the gateway's volume, the
#                         simulator was asked to rescan, `kubectl get gs` says 1/1 synced
#   scale-to-3            3 replicas: every one synced, 3/3 synced
#   ref-change            a new commit on the branch reaches every replica
#   pod-replaced          a deleted pod's replacement syncs into its fresh volume
#   leader-failover       the leader pod killed while idle: the standby takes the Lease, and a
#                         new commit still reaches the gateways
#   failover-mid-rollout  the GatewaySync switched to another branch, and the leader's process
#                         SIGKILLed the moment it publishes the new commit to the agents (then
#                         its pod deleted): the standby takes the Lease once it expires, and the
#                         rollout completes, every replica on the new commit, 3/3 synced
#   push-receiver         polling off; a GitHub push event POSTed (signed) to the operator's
#                         webhook receiver brings the new commit to every replica, 3/3 synced
#   gc-on-delete          `kubectl delete gs`: what it owned is garbage-collected
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC2034 # read by hack/lib/common.sh
script=e2e
# shellcheck source=hack/lib/common.sh
. hack/lib/common.sh
# shellcheck source=hack/lib/apt.sh
. hack/lib/apt.sh
# shellcheck source=e2e/lib.sh
. e2e/lib.sh

keep=
case "${1:-}" in
  --keep) keep=1 ;;
  "") ;;
  *) die "usage: e2e/run.sh [--keep]" ;;
esac

setup() {
  apt_ensure git:git jq:jq openssl:openssl curl:curl
  local start=$SECONDS
  bash hack/images.sh dir >/dev/null 2>&1 || bash hack/images.sh build
  log "images ready after $((SECONDS - start)) s"
  bash hack/cluster.sh down >/dev/null 2>&1 || true
  bash hack/cluster.sh up >/dev/null
  log "cluster up after $((SECONDS - start)) s"
  cluster_env
  git_server
  receiver_secret=$(openssl rand -hex 16)
}

main_pid=$BASHPID
teardown() {
  # Subshells (each case runs in one) run this trap too: only the suite's own exit tears down.
  [ "$BASHPID" = "$main_pid" ] || return 0
  if [ -n "${git_daemon_pid:-}" ]; then kill "$git_daemon_pid" 2>/dev/null || true; fi
  if [ -z "$keep" ]; then bash hack/cluster.sh down >/dev/null 2>&1 || true; fi
}
trap teardown EXIT
# Killed (CI's timeout, ^C): leave through the EXIT trap, which takes the cluster down.
trap 'exit 143' TERM
trap 'exit 130' INT

case_operator_ready() {
  install_chart --set replicaCount=2 --set webhookReceiver.enabled=true \
    --set webhookReceiver.hmac.secret="$receiver_secret" >/dev/null
  kubectl -n stoker-system rollout status deployment/stoker-controller-manager --timeout=120s >/dev/null
  # The operator writes its CA into the webhook configurations at start; until then pods would
  # be created without the agent (failurePolicy Ignore).
  until_ok 60 webhook_has_ca >/dev/null || fail "the pod webhook has no caBundle"
  local holder
  holder=$(until_ok 60 lease_holder) || fail "no operator holds the Lease stoker-operator"
  kubectl -n stoker-system get pod "$holder" >/dev/null || fail "the Lease holder $holder is not a pod"
  note "leader: $holder"
}

webhook_has_ca() {
  [ -n "$(kubectl get mutatingwebhookconfiguration stoker-pod-injection \
    -o 'jsonpath={.webhooks[0].clientConfig.caBundle}')" ]
}

lease_holder() {
  local h
  h=$(kubectl -n stoker-system get lease stoker-operator -o 'jsonpath={.spec.holderIdentity}' 2>/dev/null)
  [ -n "$h" ] && echo "$h"
}

case_inject_and_sync() {
  kubectl create namespace ignition >/dev/null
  # Polling every 10 s rather than the default minute: the cases that wait for a new commit
  # take seconds instead of a minute each.
  gatewaysync ignition polling-interval 10s | kubectl apply -f - >/dev/null
  gateways ignition 1 | kubectl apply -f - >/dev/null
  until_ok 120 pod_ready ignition site1-0 >/dev/null || fail "site1-0 not Ready: $(pod_summary ignition site1-0)"
  local sidecar
  sidecar=$(kubectl -n ignition get pod site1-0 \
    -o 'jsonpath={.spec.initContainers[?(@.name=="stoker-agent")].restartPolicy}')
  [ "$sidecar" = Always ] || fail "no native sidecar stoker-agent in site1-0 (restartPolicy: '$sidecar')"
  # The gateway container started after the agent's startup probe passed, i.e. after the first
  # sync: the agent's first sync finished before the gateway container's start.
  local agent_started gateway_started
  agent_started=$(kubectl -n ignition get pod site1-0 \
    -o 'jsonpath={.status.initContainerStatuses[?(@.name=="stoker-agent")].state.running.startedAt}')
  gateway_started=$(kubectl -n ignition get pod site1-0 \
    -o 'jsonpath={.status.containerStatuses[?(@.name=="gateway")].state.running.startedAt}')
  [ -n "$agent_started" ] && [ -n "$gateway_started" ] || fail "containers not both running"
  # The kubelet starts the gateway only once the sidecar's startup probe passed, and the agent
  # passes it only after its first sync: the probe must be there, and the order must show it.
  local probe
  probe=$(kubectl -n ignition get pod site1-0 \
    -o 'jsonpath={.spec.initContainers[?(@.name=="stoker-agent")].startupProbe.httpGet.path}')
  [ -n "$probe" ] || fail "the injected agent has no HTTP startup probe"
  [[ ! "$gateway_started" < "$agent_started" ]] ||
    fail "the gateway started ($gateway_started) before the agent ($agent_started)"
  synced_files ignition site1-0 || fail "no synced projects in site1-0's data volume"
  until_ok 60 sim_saw_scan ignition site1-0 >/dev/null || fail "the simulator in site1-0 saw no rescan"
  until_ok 120 gs_summary_is "1/1 synced" >/dev/null ||
    fail "kubectl get gs says '$(gs_summary)', not 1/1 synced"
  note "agent started $agent_started, gateway $gateway_started (startup probe $probe); $(gs_summary)"
}

synced_files() {
  kubectl -n "$1" exec "$2" -c gateway -- sh -c \
    'test -n "$(find /usr/local/bin/ignition/data/projects -type f | head -1)"' >/dev/null 2>&1
}

# The simulator's record of the calls it answered (GET /_sim/calls), asked from inside the pod:
# it listens on loopback only.
sim_saw_scan() {
  kubectl -n "$1" exec "$2" -c gateway -- bash -c 'exec 3<>/dev/tcp/127.0.0.1/8088
    printf "GET /_sim/calls HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3; cat <&3' | grep -q scan
}

gs_summary() { kubectl -n ignition get gs plant-gateways -o 'jsonpath={.status.gatewaySummary}'; }
gs_summary_is() { [ "$(gs_summary)" = "$1" ]; }

case_scale_to_3() {
  kubectl -n ignition scale statefulset site1 --replicas=3 >/dev/null
  local p
  for p in site1-0 site1-1 site1-2; do
    until_ok 180 pod_ready ignition "$p" >/dev/null || fail "$p not Ready: $(pod_summary ignition "$p")"
    synced_files ignition "$p" || fail "no synced projects in $p"
  done
  until_ok 120 gs_summary_is "3/3 synced" >/dev/null ||
    fail "kubectl get gs says '$(gs_summary)', not 3/3 synced"
  note "$(gs_summary)"
}

case_ref_change() {
  local commit p
  commit=$(commit_file shared/versions.json '{"e2e": "ref-change"}')
  for p in site1-0 site1-1 site1-2; do
    until_ok 180 file_contains ignition "$p" .versions.json ref-change >/dev/null ||
      fail "$p did not get commit ${commit:0:7} (.versions.json: $(read_file ignition "$p" .versions.json))"
  done
  until_ok 120 gs_commit_is "${commit:0:7}" >/dev/null ||
    fail "the GatewaySync reports $(kubectl -n ignition get gs plant-gateways -o 'jsonpath={.status.lastSyncCommitShort}'), not ${commit:0:7}"
  note "every replica on ${commit:0:7}"
}

read_file() { kubectl -n "$1" exec "$2" -c gateway -- cat "/usr/local/bin/ignition/data/$3" 2>/dev/null; }
file_contains() { read_file "$1" "$2" "$3" | grep -q "$4"; }
gs_commit_is() {
  [ "$(kubectl -n ignition get gs plant-gateways -o 'jsonpath={.status.lastSyncCommitShort}')" = "$1" ]
}

case_pod_replaced() {
  local uid
  uid=$(kubectl -n ignition get pod site1-1 -o 'jsonpath={.metadata.uid}')
  kubectl -n ignition delete pod site1-1 --wait=true >/dev/null
  until_ok 180 pod_replaced_ready ignition site1-1 "$uid" >/dev/null ||
    fail "site1-1 not replaced and Ready: $(pod_summary ignition site1-1)"
  until_ok 60 file_contains ignition site1-1 .versions.json ref-change >/dev/null ||
    fail "the new site1-1 did not sync the current commit"
  until_ok 120 gs_summary_is "3/3 synced" >/dev/null ||
    fail "kubectl get gs says '$(gs_summary)', not 3/3 synced"
}

pod_replaced_ready() {
  [ "$(kubectl -n "$1" get pod "$2" -o 'jsonpath={.metadata.uid}')" != "$3" ] && pod_ready "$1" "$2"
}

case_leader_failover() {
  local old new
  old=$(lease_holder) || fail "no Lease holder"
  kubectl -n stoker-system delete pod "$old" --grace-period=0 --force >/dev/null 2>&1
  new=$(until_ok 120 new_lease_holder "$old") || fail "no new Lease holder after $old was killed"
  # The new leader reconciles: a new commit still reaches the gateways.
  local commit
  commit=$(commit_file shared/versions.json '{"e2e": "after-failover"}')
  until_ok 180 file_contains ignition site1-0 .versions.json after-failover >/dev/null ||
    fail "after failover to $new, site1-0 did not get ${commit:0:7}"
  note "$old -> $new"
}

case_failover_mid_rollout() {
  local commit old new at_kill p
  commit=$(commit_on_branch release shared/versions.json '{"e2e": "mid-rollout"}')
  old=$(lease_holder) || fail "no Lease holder"
  local container
  container=$(kubectl -n stoker-system get pod "$old" \
    -o 'jsonpath={.status.containerStatuses[?(@.name=="operator")].containerID}')
  container=${container#containerd://}
  [ -n "$container" ] || fail "no container id for the operator in $old"
  # The rollout starts when the leader writes the new commit into the metadata ConfigMap the
  # agents watch; the leader dies at that moment, watched for, not polled: the agents sync
  # within a second or two of it, and the status that counts them is written after. It dies
  # as in a crash or an OOM kill (SIGKILL through the node's containerd, quicker than a pod
  # deletion, whose container the kubelet stops later and with SIGTERM): it releases nothing,
  # and the standby takes the Lease once it expires. The pod is then deleted, so that the
  # restarted container does not come back under the same identity.
  local fd watcher line found=
  exec {fd}< <(exec "$kube_bin/kubectl" -n ignition get configmap stoker-metadata-plant-gateways \
    --watch -o 'jsonpath={.data.commit}{"\n"}')
  watcher=$!
  kubectl -n ignition patch gs plant-gateways --type merge -p '{"spec":{"git":{"ref":"release"}}}' >/dev/null
  while read -r -t 120 -u "$fd" line; do
    if [ "$line" = "$commit" ]; then
      found=1
      break
    fi
  done
  kill "$watcher" 2>/dev/null || true
  exec {fd}<&-
  [ -n "$found" ] || fail "$old never published ${commit:0:7} of branch release to the agents"
  kill_container "$container" || fail "could not kill the operator container of $old"
  at_kill=$(gateways_on "$commit")
  kubectl -n stoker-system delete pod "$old" --grace-period=0 --force >/dev/null 2>&1
  new=$(until_ok 120 new_lease_holder "$old") || fail "no new Lease holder after $old was killed"
  for p in site1-0 site1-1 site1-2; do
    until_ok 180 file_contains ignition "$p" .versions.json mid-rollout >/dev/null ||
      fail "$p did not get ${commit:0:7} (.versions.json: $(read_file ignition "$p" .versions.json))"
  done
  until_ok 120 gs_summary_is "3/3 synced" >/dev/null ||
    fail "kubectl get gs says '$(gs_summary)', not 3/3 synced"
  gs_commit_full_is "$commit" || fail "the GatewaySync no longer reports ${commit:0:7}"
  local shown
  shown=$(kubectl -n ignition get gs plant-gateways --no-headers)
  [[ "$shown" == *"3/3 synced"* ]] || fail "kubectl get gs shows: $shown"
  note "$old killed as it published ${commit:0:7}, with $at_kill of 3 gateways counted on it; $new took the Lease; $(gs_summary)"
}

case_push_receiver() {
  # Polling off first (and seen by the leader), so that only the push can bring the commit.
  kubectl -n ignition patch gs plant-gateways --type merge -p '{"spec":{"polling":{"enabled":false}}}' >/dev/null
  until_ok 60 gs_generation_observed >/dev/null || fail "the leader did not reconcile the polling change"
  local before commit ip answer p
  before=$(git -C "$PWD/target/e2e/work" rev-parse release)
  commit=$(commit_on_branch release shared/versions.json '{"e2e": "pushed"}')
  ip=$(receiver_ip)
  [ -n "$ip" ] || fail "no running operator pod"
  answer=$(post_push "$ip" "$(push_payload release "$before" "$commit")" "e2e-$commit") ||
    fail "the receiver at $ip:9444 refused the push"
  [ "$(jq -r .triggered <<<"$answer")" = 1 ] || fail "the receiver triggered nothing: $answer"
  for p in site1-0 site1-1 site1-2; do
    until_ok 120 file_contains ignition "$p" .versions.json pushed >/dev/null ||
      fail "$p did not get ${commit:0:7} (.versions.json: $(read_file ignition "$p" .versions.json))"
  done
  until_ok 60 gs_summary_is "3/3 synced" >/dev/null ||
    fail "kubectl get gs says '$(gs_summary)', not 3/3 synced"
  gs_commit_full_is "$commit" || fail "the GatewaySync does not report ${commit:0:7}"
  local annotated
  annotated=$(kubectl -n ignition get gs plant-gateways -o 'jsonpath={.metadata.annotations.stoker\.io/push-commit}')
  [ "$annotated" = "$commit" ] || fail "stoker.io/push-commit is '$annotated', not $commit"
  note "receiver on $ip answered $answer; every replica on ${commit:0:7}, polling off"
}

gs_generation_observed() {
  [ "$(kubectl -n ignition get gs plant-gateways -o 'jsonpath={.metadata.generation}')" = \
    "$(kubectl -n ignition get gs plant-gateways -o 'jsonpath={.status.observedGeneration}')" ]
}

gs_commit_full_is() {
  [ "$(kubectl -n ignition get gs plant-gateways -o 'jsonpath={.status.lastSyncCommit}')" = "$1" ]
}

# gateways_on COMMIT: how many discovered gateways report COMMIT as synced.
gateways_on() {
  kubectl -n ignition get gs plant-gateways -o json |
    jq --arg c "$1" '[.status.discoveredGateways[]? | select(.syncedCommit == $c)] | length'
}

new_lease_holder() {
  local h
  h=$(lease_holder) && [ "$h" != "$1" ] && kubectl -n stoker-system get pod "$h" >/dev/null 2>&1 && echo "$h"
}

case_gc_on_delete() {
  local uid
  uid=$(kubectl -n ignition get gs plant-gateways -o 'jsonpath={.metadata.uid}')
  local owned
  owned=$(owned_by "$uid")
  [ -n "$owned" ] || fail "nothing in namespace ignition is owned by the GatewaySync"
  kubectl -n ignition delete gs plant-gateways --wait=true --timeout=120s >/dev/null
  until_ok 120 nothing_owned_by "$uid" >/dev/null || fail "still owned after delete: $(owned_by "$uid")"
  note "collected: $(echo "$owned" | tr '\n' ' ')"
}

# owned_by UID: kind/name of every ConfigMap, Secret and RoleBinding in `ignition` owned by UID.
owned_by() {
  kubectl -n ignition get configmaps,secrets,rolebindings -o json |
    jq -r --arg uid "$1" '.items[] | select(any(.metadata.ownerReferences[]?; .uid == $uid)) | "\(.kind)/\(.metadata.name)"'
}
nothing_owned_by() { [ -z "$(owned_by "$1")" ]; }

setup
run_case operator-ready case_operator_ready
run_case inject-and-sync case_inject_and_sync
run_case scale-to-3 case_scale_to_3
run_case ref-change case_ref_change
run_case pod-replaced case_pod_replaced
run_case leader-failover case_leader_failover
run_case failover-mid-rollout case_failover_mid_rollout
run_case push-receiver case_push_receiver
run_case gc-on-delete case_gc_on_delete
summary
