#!/usr/bin/env bash
# A real Kubernetes API server for Stoker's tests: etcd + kube-apiserver on loopback, no kubelet
# (envtest-style). See stoker-testkit/README.md and `hack/kube.sh --help`.
#
#   hack/kube.sh install [--node] [--print-bin-dir]
#                                            build etcd, kube-apiserver and kubectl from the Go
#                                            module proxy once and cache them (slow the first
#                                            time: tens of minutes on 2 cores; then instant);
#                                            --node adds kubelet, kube-controller-manager and
#                                            kube-scheduler (hack/cluster.sh)
#   hack/kube.sh bin-dir                     print the cache directory of the binaries (never
#                                            builds; exit 1 if they are not all there)
#   hack/kube.sh start                       start etcd + kube-apiserver (RBAC, a service-account
#                                            signing key, TLS, an admin token) on free 127.0.0.1
#                                            ports; prints `export STOKER_TEST_KUBECONFIG=…`
#   hack/kube.sh stop                        stop what `start` started
#   hack/kube.sh env                         print the env lines of the running API server
#
# Tests do not need `start`: stoker-testkit (module kube_api) starts one API server per test
# binary from the cached binaries (STOKER_KUBE_BIN_DIR, else `hack/kube.sh bin-dir`). `start` is
# for poking at it by hand with kubectl, or for sharing one API server between test binaries:
#   hack/kube.sh start && . target/kube/env && cargo test
#
# Why wrapper modules: `go install k8s.io/kubernetes/cmd/kube-apiserver@v1.34.x` is refused
# because k8s.io/kubernetes' go.mod replaces its staging modules (k8s.io/api, k8s.io/client-go,
# …) with directories of its own repository. A throw-away module in the cache directory
# requires k8s.io/kubernetes at the wanted version and replaces each staging module with the
# published module of the matching version (k8s.io/api v0.34.x for kubernetes v1.34.x); the
# list is read from kubernetes' own go.mod. etcd's server module does the same with its sibling
# modules (go.etcd.io/etcd/api/v3 => ../api, …), so it gets its own wrapper, at the etcd version
# kubernetes' go.mod pins. Nothing of this is committed; Go and the module proxy are used only
# to build this third-party test infrastructure.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC2034 # read by hack/lib/common.sh
script=kube.sh
# shellcheck source=hack/lib/common.sh
. hack/lib/common.sh

# k8s-openapi's feature in the root Cargo.toml (v1_34) must match this minor version.
kube_version="${STOKER_KUBE_VERSION:-v1.34.4}"
cache_root="${STOKER_HACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stoker-hack}"
kube_dir="$cache_root/kube/$kube_version"
bin_dir="$kube_dir/bin"
state_dir="${STOKER_KUBE_STATE_DIR:-$PWD/target/kube}"
binaries=(etcd kube-apiserver kubectl)
# Opt-in (`install --node`): what a one-node cluster needs besides the above (hack/cluster.sh).
node_binaries=(kubelet kube-controller-manager kube-scheduler)

usage() {
  cat <<EOF
usage: hack/kube.sh COMMAND

A real kube-apiserver + etcd on 127.0.0.1 for Stoker's tests (no kubelet, no controllers).

commands:
  install [--node] [--print-bin-dir]
                             build etcd, kube-apiserver and kubectl ($kube_version) from the Go
                             module proxy into the cache, unless already there (first build:
                             tens of minutes on 2 cores; cached: instant). With --print-bin-dir,
                             progress goes to stderr and the binaries' directory to stdout.
                             With --node, also kubelet, kube-controller-manager and
                             kube-scheduler (for hack/cluster.sh; a few minutes more).
  bin-dir                    print the binaries' directory; exit 1 if they are not all built
  start                      start etcd + kube-apiserver on free loopback ports (RBAC, TLS,
                             admin token, service-account key); print export lines; wait for
                             /readyz. State, logs and the kubeconfig go to $state_dir.
  stop                       stop what 'start' started
  env                        print the export lines of the running API server

environment:
  STOKER_KUBE_VERSION     kubernetes version to build (default v1.34.4; must match k8s-openapi)
  STOKER_HACK_CACHE       cache root (default \${XDG_CACHE_HOME:-\$HOME/.cache}/stoker-hack)
  STOKER_KUBE_STATE_DIR   where 'start' keeps its state (default target/kube)

binaries: $bin_dir
EOF
}


have_binaries() {
  local b
  for b in "${binaries[@]}" "$@"; do
    [ -x "$bin_dir/$b" ] || return 1
  done
}

# Prints `replace` lines for a wrapper module: every directory replace of the module's go.mod
# (`MOD => ./staging/src/MOD` or `MOD => ../dir`) becomes `MOD => MOD VERSION`.
wrapper_replaces() {
  local gomod=$1 version=$2
  awk -v version="$version" '
    /^replace \(/ { block = 1; next }
    block && /^\)/ { block = 0; next }
    {
      line = $0
      if (!block) { if (line !~ /^replace /) next; sub(/^replace /, "", line) }
      n = split(line, f, /[ \t]+/)
      # fields: [""] MOD [VER] => TARGET [VER]
      i = 1; if (f[1] == "") i = 2
      mod = f[i]; arrow = (f[i + 1] == "=>") ? i + 1 : i + 2; target = f[arrow + 1]
      if (target ~ /^\.\.?\// && target !~ /FORBIDDEN/) printf "\t%s => %s %s\n", mod, mod, version
    }' "$gomod"
}

# go_module_file MODULE VERSION: downloads the module (into the module cache) and prints the
# path of its go.mod.
go_module_file() {
  (cd "$kube_dir" && GOFLAGS="" go mod download -json "$1@$2") |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p'
}

# build_wrapper NAME MODULE VERSION REPLACE_VERSION LDFLAGS PACKAGE...
build_wrapper() {
  local name=$1 module=$2 version=$3 replace_version=$4 ldflags=$5
  shift 5
  local dir="$kube_dir/src/$name" gomod
  rm -rf "$dir"
  mkdir -p "$dir"
  gomod=$(go_module_file "$module" "$version")
  if [ -z "$gomod" ] || [ ! -f "$gomod" ]; then die "could not download $module@$version"; fi
  {
    echo "// Throw-away wrapper written by hack/kube.sh: builds $module@$version's commands."
    echo "module stoker.invalid/hack-kube-$name"
    echo
    grep -m1 '^go ' "$gomod"
    grep -m1 '^godebug ' "$gomod" || true
    echo
    echo "require $module $version"
    echo
    echo "replace ("
    wrapper_replaces "$gomod" "$replace_version"
    echo ")"
  } >"$dir/go.mod"
  log "$name: wrapper module $dir ($(grep -c ' => ' "$dir/go.mod") replace lines); building $* (go build)"
  local out="${wrapper_out:-$kube_dir/bin.partial}"
  mkdir -p "$out"
  # -mod=mod: the wrapper's go.sum is filled in as the build resolves modules.
  (cd "$dir" && GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 \
    go build -trimpath -ldflags="-s -w $ldflags" -o "$out/" "$@")
}

install() {
  local print= node=
  while [ $# -gt 0 ]; do
    case "$1" in
      --print-bin-dir) print=1 ;;
      --node) node=1 ;;
      *) die "install: unknown option $1" ;;
    esac
    shift
  done
  install_base
  if [ -n "$node" ]; then install_node; fi
  [ -n "$print" ] && echo "$bin_dir"
  return 0
}

# kube_ldflags: the version stamps `make` would set (kubectl version, /version, kubelet's node
# status report them).
kube_ldflags() {
  local minor=${kube_version#v1.}
  minor=${minor%%.*}
  local x='k8s.io/component-base/version' c='k8s.io/client-go/pkg/version' flags= var
  for var in gitVersion=$kube_version gitMajor=1 gitMinor=$minor gitTreeState=clean \
    buildDate=1970-01-01T00:00:00Z; do
    flags+=" -X $x.$var -X $c.$var"
  done
  echo "$flags"
}

# The node's components, from the same wrapper module as the API server (the Go build cache it
# left makes this a few minutes, not another half hour).
install_node() {
  if have_binaries "${node_binaries[@]}"; then
    log "kubelet, kube-controller-manager, kube-scheduler $kube_version already built: $bin_dir"
    return 0
  fi
  use_go "kubelet"
  local start=$SECONDS b
  log "building kubelet, kube-controller-manager and kube-scheduler $kube_version into $bin_dir"
  rm -rf "$kube_dir/node.partial"
  wrapper_out="$kube_dir/node.partial" build_wrapper kubernetes-node k8s.io/kubernetes \
    "$kube_version" "v0.${kube_version#v1.}" "$(kube_ldflags)" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler
  for b in "${node_binaries[@]}"; do
    [ -x "$kube_dir/node.partial/$b" ] || die "build produced no $b in $kube_dir/node.partial"
  done
  mkdir -p "$bin_dir"
  for b in "${node_binaries[@]}"; do
    mv -f "$kube_dir/node.partial/$b" "$bin_dir/$b"
  done
  rm -rf "$kube_dir/node.partial" "$kube_dir/src/kubernetes-node"
  log "node components built in $((SECONDS - start)) s"
}

install_base() {
  if have_binaries; then
    log "etcd, kube-apiserver, kubectl $kube_version already built: $bin_dir"
    return 0
  fi
  use_go "kube-apiserver"
  local start=$SECONDS
  log "building etcd, kube-apiserver and kubectl $kube_version with $(go version | awk '{print $3}') into $bin_dir"
  log "(the first build downloads ~700 MB of modules, fills ~2.5 GB of Go build cache and compiles for about 25 minutes on 2 cores; a rebuild from a warm Go build cache takes about a minute)"
  mkdir -p "$kube_dir"
  rm -rf "$kube_dir/bin.partial"

  local kube_gomod etcd_version staging_version b
  kube_gomod=$(go_module_file k8s.io/kubernetes "$kube_version")
  [ -f "$kube_gomod" ] || die "could not download k8s.io/kubernetes@$kube_version"
  # Staging modules are published as v0.MINOR.PATCH for kubernetes v1.MINOR.PATCH.
  staging_version="v0.${kube_version#v1.}"
  etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2; exit }' "$kube_gomod")
  [ -n "$etcd_version" ] || die "no go.etcd.io/etcd/server/v3 version in $kube_gomod"

  build_wrapper kubernetes k8s.io/kubernetes "$kube_version" "$staging_version" "$(kube_ldflags)" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
  log "kube-apiserver and kubectl built after $((SECONDS - start)) s; now etcd $etcd_version"
  build_wrapper etcd go.etcd.io/etcd/server/v3 "$etcd_version" "$etcd_version" "" \
    go.etcd.io/etcd/server/v3
  # The etcd server module's main package is named after the module's last element.
  for b in server v3; do
    if [ -x "$kube_dir/bin.partial/$b" ]; then mv "$kube_dir/bin.partial/$b" "$kube_dir/bin.partial/etcd"; fi
  done

  for b in "${binaries[@]}"; do
    [ -x "$kube_dir/bin.partial/$b" ] || die "build produced no $b in $kube_dir/bin.partial"
  done
  # Binaries appear in bin/ only when all are built, each by an atomic rename.
  mkdir -p "$bin_dir"
  for b in "${binaries[@]}"; do
    mv -f "$kube_dir/bin.partial/$b" "$bin_dir/$b"
  done
  rm -rf "$kube_dir/bin.partial" "$kube_dir/src"
  log "built in $((SECONDS - start)) s: $("$bin_dir/kube-apiserver" --version 2>&1), etcd $("$bin_dir/etcd" --version 2>&1 | awk '/etcd Version/ {print $3}')"
}

bin_dir_cmd() {
  have_binaries || die "etcd, kube-apiserver or kubectl $kube_version missing in $bin_dir: run 'hack/kube.sh install'"
  echo "$bin_dir"
}

start() {
  if [ -f "$state_dir/pid" ] && kill -0 "$(cat "$state_dir/pid")" 2>/dev/null; then
    log "already running (pid $(cat "$state_dir/pid"))"
    cat "$state_dir/env"
    return 0
  fi
  have_binaries || die "run 'hack/kube.sh install' first (no binaries in $bin_dir)"
  command -v openssl >/dev/null 2>&1 || die "openssl is needed (Debian package openssl)"
  # A fresh cluster each time (new keys and ports; an old etcd data directory would not match).
  rm -rf "$state_dir/cluster"
  mkdir -p "$state_dir"
  rm -f "$state_dir/env" "$state_dir/pid"
  cargo build -q -p stoker-testkit --bin stoker-kube
  local bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/stoker-kube"
  # setsid: the servers outlive this script's terminal; `stop` ends them. stoker-kube writes the
  # env file once /readyz is ok, and takes etcd and kube-apiserver down when it dies (they run
  # under hack/lib/reap-on-eof.sh, watching a pipe only stoker-kube holds).
  STOKER_KUBE_BIN_DIR="$bin_dir" setsid "$bin" --state "$state_dir/cluster" \
    --env-file "$state_dir/env" </dev/null >"$state_dir/log" 2>&1 &
  echo $! >"$state_dir/pid"
  for _ in $(seq 1 1200); do
    [ -s "$state_dir/env" ] && break
    if ! kill -0 "$(cat "$state_dir/pid")" 2>/dev/null; then
      log "API server failed to start:"
      cat "$state_dir/log" >&2
      exit 1
    fi
    sleep 0.1
  done
  [ -s "$state_dir/env" ] || die "API server not ready in 120 s; log: $state_dir/log"
  cat "$state_dir/env"
  echo "# API server running (pid $(cat "$state_dir/pid")); to use it: . $state_dir/env"
}

stop() { stop_pidfile "$state_dir"; }

case "${1:-}" in
  install)
    shift
    install "$@"
    ;;
  bin-dir) bin_dir_cmd ;;
  start) start ;;
  stop) stop ;;
  env) cat "$state_dir/env" ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
