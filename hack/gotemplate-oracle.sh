#!/usr/bin/env bash
# Go's text/template as an oracle for Stoker's template differential test
# (stoker-core/tests/it/template_go.rs). Test infrastructure only, never shipped.
#
#   hack/gotemplate-oracle.sh install [--print-bin]  build hack/gotemplate-oracle/main.go (standard
#                                                    library only, no module download) into the
#                                                    cache unless already there
#   hack/gotemplate-oracle.sh bin                    print the cached binary's path (never builds;
#                                                    exit 1 if it is not there)
#
# The cache key is the source's hash and the Go version, so an edit or a new Go rebuilds it.
# The test reads the binary's path from STOKER_GOTEMPLATE_ORACLE (hack/test.sh sets it).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC2034 # read by hack/lib/common.sh
script=gotemplate-oracle.sh
# shellcheck source=hack/lib/common.sh
. hack/lib/common.sh

cache_root="${STOKER_HACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stoker-hack}"
source_file=hack/gotemplate-oracle/main.go

key() {
  use_go "the Go text/template oracle"
  local go_version
  go_version=$(GOTOOLCHAIN=local go env GOVERSION)
  echo "$go_version-$(sha256sum "$source_file" | cut -c1-16)"
}

bin_path() { echo "$cache_root/gotemplate-oracle/$(key)/gotemplate-oracle"; }

case "${1:-}" in
  install)
    bin=$(bin_path)
    if [ ! -x "$bin" ]; then
      log "building $bin"
      mkdir -p "$(dirname "$bin")"
      tmp="$bin.tmp.$$"
      GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOPROXY=off CGO_ENABLED=0 \
        go build -trimpath -o "$tmp" "$source_file"
      mv "$tmp" "$bin"
    fi
    if [ "${2:-}" = --print-bin ]; then echo "$bin"; fi
    ;;
  bin)
    bin=$(bin_path)
    [ -x "$bin" ] || die "not built: run hack/gotemplate-oracle.sh install"
    echo "$bin"
    ;;
  *)
    sed -n '2,12p' "$0" >&2
    exit 2
    ;;
esac
