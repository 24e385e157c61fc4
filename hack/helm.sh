#!/usr/bin/env bash
# helm for Stoker's chart tests, built from the Go module proxy and cached like hack/kube.sh's
# binaries. See `hack/helm.sh --help`.
#
#   hack/helm.sh install [--print-bin-dir]   build helm once and cache it (a few minutes on 2
#                                            cores the first time; then instant)
#   hack/helm.sh bin-dir                     print the cache directory of helm (never builds;
#                                            exit 1 if it is not there)
#
# Tests (stoker-operator/tests/it/chart.rs) find helm through STOKER_HELM_BIN_DIR, else
# `hack/helm.sh bin-dir`; they never build it. helm.sh/helm/v3's go.mod has no replace
# directives, so a plain `go install` works (unlike kube-apiserver: no wrapper module). Nothing
# of this is committed; Go and the module proxy are used only to build this third-party test tool.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC2034 # read by hack/lib/common.sh
script=helm.sh
# shellcheck source=hack/lib/common.sh
. hack/lib/common.sh

helm_version="${STOKER_HELM_VERSION:-v3.22.0}"
cache_root="${STOKER_HACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stoker-hack}"
helm_dir="$cache_root/helm/$helm_version"
bin_dir="$helm_dir/bin"

usage() {
  cat <<USAGE
usage: hack/helm.sh COMMAND

helm for Stoker's chart tests (helm lint, helm template, helm install against the test API
server). Built from the Go module proxy once and cached.

commands:
  install [--print-bin-dir]  build helm ($helm_version) into the cache, unless already there
                             (first build: a few minutes on 2 cores; cached: instant). With
                             --print-bin-dir, progress goes to stderr and the binary's directory
                             to stdout.
  bin-dir                    print helm's directory; exit 1 if it is not built

environment:
  STOKER_HELM_VERSION   helm version to build (default v3.22.0; a helm.sh/helm/v3 release)
  STOKER_HACK_CACHE     cache root (default \${XDG_CACHE_HOME:-\$HOME/.cache}/stoker-hack)

binary: $bin_dir/helm
USAGE
}


have_helm() { [ -x "$bin_dir/helm" ]; }

install() {
  local print=
  case "${1:-}" in
    --print-bin-dir) print=1 ;;
    "") ;;
    *) die "install: unknown option $1" ;;
  esac
  if have_helm; then
    [ -n "$print" ] && echo "$bin_dir"
    [ -z "$print" ] && log "helm $helm_version already built: $bin_dir"
    return 0
  fi
  use_go "helm"
  local start=$SECONDS
  log "building helm $helm_version with $(go version | awk '{print $3}') into $bin_dir"
  log "(the first build downloads about 150 MB of modules and compiles for a few minutes on 2 cores)"
  local partial="$helm_dir/bin.partial"
  rm -rf "$partial"
  mkdir -p "$partial"
  # The variables helm's Makefile sets: its version, and the Kubernetes version that `helm
  # template` and `helm lint` assume (1.MINOR for client-go v0.MINOR; unset, it is 1.20, and a
  # chart's kubeVersion constraint fails).
  local gomod client_go minor
  gomod=$(cd "$helm_dir" && GOFLAGS="" go mod download -json "helm.sh/helm/v3@$helm_version" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$gomod" ] || die "could not download helm.sh/helm/v3@$helm_version"
  client_go=$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$gomod")
  minor=${client_go#v0.}
  minor=${minor%%.*}
  [ -n "$minor" ] || die "no k8s.io/client-go version in $gomod"
  local x=helm.sh/helm/v3/internal/version ldflags var
  ldflags="-s -w -X $x.version=$helm_version -X $x.gitTreeState=clean"
  for var in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X $var.k8sVersionMajor=1 -X $var.k8sVersionMinor=$minor"
  done
  (cd "$helm_dir" && GOBIN="$partial" GOFLAGS="-buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 \
    go install -trimpath -ldflags="$ldflags" "helm.sh/helm/v3/cmd/helm@$helm_version")
  [ -x "$partial/helm" ] || die "build produced no helm in $partial"
  # The binary appears in bin/ only when it is complete, by an atomic rename.
  mkdir -p "$bin_dir"
  mv -f "$partial/helm" "$bin_dir/helm"
  rm -rf "$partial"
  log "built in $((SECONDS - start)) s: $("$bin_dir/helm" version --short 2>&1)"
  [ -n "$print" ] && echo "$bin_dir"
  return 0
}

bin_dir_cmd() {
  have_helm || die "helm $helm_version missing in $bin_dir: run 'hack/helm.sh install'"
  echo "$bin_dir"
}

case "${1:-}" in
  install)
    shift
    install "$@"
    ;;
  bin-dir) bin_dir_cmd ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
