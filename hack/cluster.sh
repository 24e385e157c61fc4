#!/usr/bin/env bash
# A real one-node Kubernetes cluster on this machine, made of the real components, for trying
# Stoker without a cluster and for its end-to-end tests (docs/kubernetes.md, "Try it without a
# cluster"; stoker-testkit/README.md).
#
#   hack/cluster.sh up      etcd, kube-apiserver, kube-controller-manager, kube-scheduler on the
#                           host; containerd + runc + the CNI bridge and the kubelet in a network
#                           namespace of their own (the node); a pause image made here; the images
#                           of hack/images.sh imported when built. Prints `export KUBECONFIG=…`.
#   hack/cluster.sh load    import (again) the images of hack/images.sh into the node
#   hack/cluster.sh down    stop everything `up` started and remove its network namespace
#   hack/cluster.sh env     print the export line of the running cluster
#
# Network: the node is the network namespace `stoker-node`, joined to the host by a veth pair
# (host 10.87.0.1, node 10.87.0.2). Pods get 10.88.0.0/24 on the bridge `stoker0` inside the node
# namespace; the host routes that range to the node, so the API server reaches the admission
# webhooks at their pod IPs (--enable-aggregator-routing; no kube-proxy). The API server listens
# on 10.87.0.1:6443 only; pods reach it as the `kubernetes` Service (10.96.0.1:443) through one
# DNAT rule in the node namespace. etcd, the controller manager and the scheduler listen on
# loopback. There is no cluster DNS. Nothing outside the namespace is changed but the veth's host
# end and its route, which disappear with the namespace. One cluster per machine.
#
# Binaries: hack/kube.sh install --node (built from the Go module proxy once, cached);
# containerd, runc, containernetworking-plugins from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC2034 # read by hack/lib/common.sh
script=cluster.sh
# shellcheck source=hack/lib/common.sh
. hack/lib/common.sh
# shellcheck source=hack/lib/apt.sh
. hack/lib/apt.sh

state="${STOKER_CLUSTER_STATE_DIR:-$PWD/target/cluster}"
cache_root="${STOKER_HACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stoker-hack}"
cache_dir="$cache_root/cluster"
netns=stoker-node
host_ip=10.87.0.1
node_ip=10.87.0.2
pod_cidr=10.88.0.0/24
service_cidr=10.96.0.0/24
service_ip=10.96.0.1
api_port=6443
pause_image=stoker.local/pause:1
admin_token=stoker-cluster-admin-token

# The header comment above, without its `#`.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

install_tools() {
  apt_ensure containerd:containerd runc:runc containernetworking-plugins:/usr/lib/cni/bridge \
    iptables:iptables iproute2:ip openssl:openssl gcc:gcc libc6-dev:/usr/lib/x86_64-linux-gnu/libc.a \
    podman:podman
}

# The pause image: hack/lib/pause.c, static, alone in an image; cached as an OCI archive.
pause_archive() {
  local archive="$cache_dir/pause.oci.tar"
  if [ ! -f "$archive" ]; then
    local tmp
    tmp=$(mktemp -d)
    gcc -static -Os -s -o "$tmp/pause" hack/lib/pause.c
    tar -C "$tmp" -cf "$tmp/rootfs.tar" pause
    podman --runtime runc import --quiet --change 'ENTRYPOINT ["/pause"]' "$tmp/rootfs.tar" \
      "$pause_image" >/dev/null
    mkdir -p "$cache_dir"
    podman --runtime runc save --quiet --format oci-archive -o "$archive.partial" "$pause_image"
    mv "$archive.partial" "$archive"
    rm -rf "$tmp"
  fi
  echo "$archive"
}

# free_port: a TCP port nothing listens on at 127.0.0.1 (from the ephemeral range's far end).
free_port() {
  local p
  for p in $(shuf -i 20000-29999 -n 50); do
    if ! ss -Htln "sport = :$p" | grep -q .; then
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}

pki() {
  local d="$state/pki"
  mkdir -p "$d"
  openssl ecparam -name prime256v1 -genkey -noout -out "$d/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$d/ca.key" -subj /CN=stoker-cluster-ca -days 30 -out "$d/ca.crt" 2>/dev/null
  openssl ecparam -name prime256v1 -genkey -noout -out "$d/apiserver.key" 2>/dev/null
  openssl req -new -key "$d/apiserver.key" -subj /CN=kube-apiserver -out "$d/apiserver.csr" 2>/dev/null
  printf 'subjectAltName=IP:%s,IP:%s,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' \
    "$host_ip" "$service_ip" >"$d/apiserver.ext"
  openssl x509 -req -in "$d/apiserver.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 30 -extfile "$d/apiserver.ext" -out "$d/apiserver.crt" 2>/dev/null
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  # One static token in system:masters: kubectl, helm, the tests, the controller manager, the
  # scheduler and the kubelet all use it (a throw-away cluster on a private address).
  echo "$admin_token,stoker-admin,stoker-admin,system:masters" >"$d/tokens.csv"
  cat >"$state/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: stoker
  cluster:
    server: https://$host_ip:$api_port
    certificate-authority-data: $(base64 -w0 "$d/ca.crt")
users:
- name: stoker-admin
  user:
    token: $admin_token
contexts:
- name: stoker
  context: {cluster: stoker, user: stoker-admin}
current-context: stoker
EOF
}

network() {
  ip netns add "$netns"
  ip link add stoker-h type veth peer name stoker-n
  ip link set stoker-n netns "$netns"
  ip addr add "$host_ip/30" dev stoker-h
  ip link set stoker-h up
  ip -n "$netns" addr add "$node_ip/30" dev stoker-n
  ip -n "$netns" link set stoker-n up
  ip -n "$netns" link set lo up
  ip -n "$netns" route add default via "$host_ip"
  ip route add "$pod_cidr" via "$node_ip" dev stoker-h
  # The `kubernetes` Service, without kube-proxy.
  ip netns exec "$netns" iptables -t nat -A PREROUTING -d "$service_ip/32" -p tcp --dport 443 \
    -j DNAT --to-destination "$host_ip:$api_port"
}

# start NAME COMMAND...: runs COMMAND in its own session, logging to logs/NAME.log.
start() {
  local name=$1
  shift
  setsid "$@" </dev/null >"$state/logs/$name.log" 2>&1 &
  echo $! >"$state/pids/$name"
}

# wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local i
  for i in $(seq 1 $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "$what not ready after $seconds s; logs: $state/logs"
}

control_plane() {
  local bin=$1 d="$state/pki" etcd_port etcd_peer
  etcd_port=$(free_port)
  etcd_peer=$(free_port)
  start etcd "$bin/etcd" --data-dir "$state/etcd" --name stoker \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "stoker=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync --log-level warn
  start kube-apiserver "$bin/kube-apiserver" --bind-address "$host_ip" --advertise-address "$host_ip" \
    --secure-port "$api_port" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --tls-cert-file "$d/apiserver.crt" --tls-private-key-file "$d/apiserver.key" \
    --client-ca-file "$d/ca.crt" --token-auth-file "$d/tokens.csv" --authorization-mode RBAC \
    --anonymous-auth=false --service-account-key-file "$d/sa.pub" \
    --service-account-signing-key-file "$d/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range "$service_cidr" --allow-privileged=true \
    --enable-aggregator-routing=true --kubelet-preferred-address-types InternalIP \
    --profiling=false --v=1
  wait_for "kube-apiserver" 120 "$bin/kubectl" --kubeconfig "$state/kubeconfig" get --raw /readyz
  start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$state/kubeconfig" \
    --service-account-private-key-file "$d/sa.key" --root-ca-file "$d/ca.crt" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 --profiling=false --v=1
  start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$state/kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 --profiling=false --v=1
}

node_config() {
  local n="$state/node"
  mkdir -p "$n/cni"
  echo "$node_ip" >"$state/node-ip"
  cat >"$n/containerd.toml" <<EOF
version = 2
root = "$n/containerd/root"
state = "$n/containerd/state"
[grpc]
  address = "$n/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  # No CAP_SYS_RESOURCE: no process may get a lower OOM score than containerd's own.
  restrict_oom_score_adj = true
  # Pod network namespaces under the node's state, not the machine's /run/netns.
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$n/cni"
EOF
  cat >"$n/cni/10-stoker.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "stoker", "plugins": [
  {"type": "bridge", "bridge": "stoker0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$pod_cidr"}]],
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$n/cni-ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
  # cgroupfs on the cgroup v1 hierarchy; no per-QoS cgroups and no node-allocatable enforcement
  # (they need limits this machine will not let the kubelet set); eviction only when the disk or
  # memory is nearly exhausted (a CI disk is often 80% full).
  cat >"$n/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
protectKernelDefaults: true
containerRuntimeEndpoint: unix://$n/containerd.sock
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
address: $node_ip
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
podLogsDir: $n/pod-logs
evictionHard: {"nodefs.available": "1%", "imagefs.available": "1%", "nodefs.inodesFree": "1%", "memory.available": "100Mi"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
}

# import ARCHIVE...: into the node's containerd (namespace k8s.io, where the kubelet looks).
import_images() {
  local a
  for a in "$@"; do
    ctr --address "$state/node/containerd.sock" -n k8s.io images import --all-platforms "$a" >/dev/null
    log "imported $(basename "$a")"
  done
}

load() {
  local dir
  dir=$(bash hack/images.sh dir) || die "no images: run 'hack/images.sh build' first"
  import_images "$dir"/*.oci.tar
}

up() {
  if [ -f "$state/env" ]; then die "already up ($state/env); 'hack/cluster.sh down' first"; fi
  local start=$SECONDS bin pause
  install_tools
  bin=$(bash hack/kube.sh install --node --print-bin-dir)
  pause=$(pause_archive)
  ip netns list | grep -qw "$netns" && die "network namespace $netns exists: 'hack/cluster.sh down' first"
  rm -rf "$state"
  mkdir -p "$state/logs" "$state/pids"
  pki
  network
  control_plane "$bin"
  log "control plane up after $((SECONDS - start)) s"
  node_config
  # nsenter + unshare, not `ip netns exec`: that remounts /sys, and the cgroup mounts with it.
  start node nsenter --net="/run/netns/$netns" unshare --mount --propagation private \
    bash hack/lib/node.sh "$state" "$bin"
  wait_for "containerd" 60 test -S "$state/node/containerd.sock"
  import_images "$pause"
  if dir=$(bash hack/images.sh dir 2>/dev/null); then import_images "$dir"/*.oci.tar; fi
  local kubectl=("$bin/kubectl" --kubeconfig "$state/kubeconfig")
  wait_for "the node" 120 "${kubectl[@]}" wait --for=condition=Ready node/stoker-node --timeout=1s
  wait_for "the default service account" 60 "${kubectl[@]}" get serviceaccount default
  echo "export KUBECONFIG='$state/kubeconfig'" >"$state/env"
  log "up in $((SECONDS - start)) s"
  cat "$state/env"
}

stop_pid() {
  local f="$state/pids/$1" pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$f"
}

down() {
  local c
  for c in node kube-scheduler kube-controller-manager kube-apiserver etcd; do stop_pid "$c"; done
  if ip netns list | grep -qw "$netns"; then ip netns del "$netns"; fi
  ip link del stoker-h 2>/dev/null || true
  rm -f "$state/env" "$state/node-ready"
  log "down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  load) load ;;
  env) cat "$state/env" ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
