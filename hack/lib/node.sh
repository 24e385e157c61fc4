#!/usr/bin/env bash
# The node of hack/cluster.sh: containerd and the kubelet, run inside the cluster's network
# namespace and a mount namespace of their own (nsenter --net … unshare --mount). Until it
# exits (SIGTERM from `hack/cluster.sh down`), it keeps both running; the kubelet's and
# containerd's mounts, bridge and firewall rules live and die with these namespaces.
#
#   hack/lib/node.sh STATE_DIR KUBE_BIN_DIR
set -euo pipefail
state=$1
bin=$2
node="$state/node"

# Mounts made here (sysctl files below, kubelet volumes, container root file systems) stay here.
mount --make-rprivate /

# The kubelet insists on these kernel settings and would write the machine's own (panic on oops,
# overcommit …), which are not its to change here: it reads them from files bound over /proc/sys
# in this mount namespace only, and finds them as it wants them (protectKernelDefaults: true, so it
# never writes).
mkdir -p "$node/sysctl"
want_sysctl() {
  local file="$node/sysctl/${1//\//.}"
  echo "$2" >"$file"
  mount --bind "$file" "/proc/sys/$1"
}
want_sysctl vm/overcommit_memory 1
want_sysctl vm/panic_on_oom 0
want_sysctl kernel/panic 10
want_sysctl kernel/panic_on_oops 1
want_sysctl kernel/keys/root_maxkeys 1000000
want_sysctl kernel/keys/root_maxbytes 25000000
# Pods reach the host (API server, test servers) through this namespace; /proc/sys/net is this
# network namespace's own.
echo 1 >/proc/sys/net/ipv4/ip_forward
ip link set lo up

containerd --config "$node/containerd.toml" >"$state/logs/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 1 300); do
  [ -S "$node/containerd.sock" ] && break
  kill -0 "$containerd_pid" 2>/dev/null || {
    echo "containerd exited; see $state/logs/containerd.log" >&2
    exit 1
  }
  sleep 0.1
done

"$bin/kubelet" --config "$node/kubelet.yaml" --kubeconfig "$state/kubeconfig" \
  --root-dir "$node/kubelet" --cert-dir "$node/kubelet-pki" --hostname-override stoker-node \
  --node-ip "$(cat "$state/node-ip")" --v=1 >"$state/logs/kubelet.log" 2>&1 &
kubelet_pid=$!

# On SIGTERM: the kubelet first (no new containers), then every container (SIGKILL: this is a
# test cluster being thrown away), then containerd; their shims exit with their containers.
stop() {
  kill -TERM "$kubelet_pid" 2>/dev/null || true
  wait "$kubelet_pid" 2>/dev/null || true
  local ctr=(ctr --address "$node/containerd.sock" -n k8s.io) id
  for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
    "${ctr[@]}" tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
  done
  sleep 1
  for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
    "${ctr[@]}" tasks delete -f "$id" >/dev/null 2>&1 || true
  done
  kill -TERM "$containerd_pid" 2>/dev/null || true
  wait "$containerd_pid" 2>/dev/null || true
  exit 0
}
trap stop TERM INT
echo ready >"$state/node-ready"
# Either dying takes the node down.
wait -n "$kubelet_pid" "$containerd_pid" || true
echo "kubelet or containerd exited; see $state/logs" >&2
stop
