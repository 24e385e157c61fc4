#!/usr/bin/env bash
# Stoker's container images, built here from the repository's Dockerfile with podman + runc, on a
# machine that cannot pull from any registry (see docs/kubernetes.md, "Try it without a cluster").
#
#   hack/images.sh build [--binaries DIR]
#                           the base image (cached), the release binaries, the operator, agent
#                           and gateway-simulator images; smoke-tests each; saves them as OCI
#                           archives in target/images/ and prints their sizes. With --binaries,
#                           no cargo build: stoker-operator, stoker-agent and stoker-gateway-sim
#                           are taken from DIR as they are (hack/test.sh passes the debug
#                           binaries `cargo test --workspace` left in target/debug: a release
#                           build would cost CI 8-10 minutes more; the sizes printed are then
#                           those of debug images)
#   hack/images.sh base     only the base image (a Debian rootfs made with mmdebstrap, imported)
#   hack/images.sh dir      print the directory of the OCI archives (exit 1 if not built)
#
# Why no Rust image: none can be pulled here, so the binaries are compiled on the host
# (`cargo build --release --locked`, which reuses CARGO_TARGET_DIR between runs) and the
# Dockerfile copies them in with `--build-arg BINARIES=prebuilt`. The runtime stages are exactly
# the ones users build. The base is `debian:trixie-slim`'s equivalent: `mmdebstrap --variant
# minbase` of trixie with ca-certificates and openssh-client, imported with `podman import` and
# cached under ~/.cache/stoker-hack/images/ (rebuilt when older than 30 days, so security updates
# arrive). The Dockerfile's `apt-get install` then has nothing to add but still runs (it needs
# the Debian mirror, which every hack/ script needs anyway).
#
# Images (podman's local storage, and target/images/*.oci.tar for `ctr images import`):
#   localhost/stoker-operator:VERSION   --target operator
#   localhost/stoker-agent:VERSION      --target agent
#   localhost/stoker-gateway-sim:VERSION  the Ignition gateway simulator of stoker-testkit, for
#                                       end-to-end tests only (hack/lib/gateway-sim.Containerfile)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC2034 # read by hack/lib/common.sh
script=images.sh
# shellcheck source=hack/lib/common.sh
. hack/lib/common.sh
# shellcheck source=hack/lib/apt.sh
. hack/lib/apt.sh

cache_root="${STOKER_HACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stoker-hack}"
cache_dir="$cache_root/images"
out_dir="${STOKER_IMAGES_DIR:-$PWD/target/images}"
suite="${STOKER_BASE_SUITE:-trixie}"
mirror="${STOKER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
base_image="localhost/stoker-base:$suite"
version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
images=(operator agent gateway-sim)

# podman with runc: crun refuses this kind of machine's hybrid cgroup v1 layout. Ulimits stay
# within the hard limits of podman's own processes (no CAP_SYS_RESOURCE to raise them; podman's
# defaults ask for more): this shell's open files, and 4096 processes (podman's conmon may have
# fewer than this shell).
podman_() { podman --runtime runc "$@"; }
ulimits=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)

# The header comment above, without its `#`.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

install_tools() {
  apt_ensure podman:podman runc:runc mmdebstrap:mmdebstrap uidmap:newuidmap binutils:objcopy
}

# The base image: made once, imported into podman whenever podman does not have it.
base() {
  install_tools
  # Bump the recipe number when the mmdebstrap command below changes: a new cached rootfs.
  local tar="$cache_dir/base-$suite-r2.tar"
  if [ -f "$tar" ] && [ -n "$(find "$tar" -mtime +30)" ]; then
    log "base rootfs older than 30 days: rebuilding"
    rm -f "$tar"
  fi
  if [ ! -f "$tar" ]; then
    mkdir -p "$cache_dir"
    local start=$SECONDS
    log "making the base rootfs ($suite, minbase + ca-certificates + openssh-client) with mmdebstrap"
    # As in Debian's slim images: documentation, manuals and translations left out (also from
    # what the Dockerfile's apt-get installs: --dpkgopt stays in the image), and apt keeps no
    # binary package caches (90 MB after an `apt-get update`) and fetches no translations.
    mmdebstrap --quiet --format=tar --variant=minbase --include=ca-certificates,openssh-client \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --customize-hook='printf "%s\n" "Dir::Cache::pkgcache \"\";" "Dir::Cache::srcpkgcache \"\";" "Acquire::Languages \"none\";" >"$1"/etc/apt/apt.conf.d/90stoker-slim' \
      --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*' \
      "$suite" "$tar.partial" "$mirror" >&2
    mv "$tar.partial" "$tar"
    log "base rootfs made in $((SECONDS - start)) s: $tar"
  fi
  if ! podman_ image exists "$base_image"; then
    podman_ import --quiet --change 'CMD ["/bin/bash"]' "$tar" "$base_image" >/dev/null
    log "imported $base_image"
  fi
}

# The binaries (release, built here; or those in $1), copied into a throw-away build context
# with the Dockerfile.
binaries() {
  local from=${1:-} b
  if [ -z "$from" ]; then
    local start=$SECONDS
    log "cargo build --release (stoker-operator, stoker-agent, stoker-gateway-sim)"
    cargo build --release --locked -p stoker-operator -p stoker-agent -p stoker-testkit \
      --bin stoker-operator --bin stoker-agent --bin stoker-gateway-sim >&2
    log "release binaries built in $((SECONDS - start)) s"
    from="$target_dir/release"
  else
    for b in stoker-operator stoker-agent stoker-gateway-sim; do
      [ -x "$from/$b" ] || die "no $from/$b (cargo test --workspace, or cargo build, builds it)"
    done
    log "binaries from $from (no cargo build)"
  fi
  local ctx="$out_dir/context"
  rm -rf "$ctx"
  mkdir -p "$ctx/prebuilt"
  cp Dockerfile hack/lib/gateway-sim.Containerfile "$ctx/"
  for b in stoker-operator stoker-agent stoker-gateway-sim; do
    # Symbols and line tables are dropped in the images (as a distribution's packages do); a
    # backtrace still names the functions.
    objcopy --strip-debug "$from/$b" "$ctx/prebuilt/$b"
  done
}

build_images() {
  local ctx="$out_dir/context" start=$SECONDS t
  # --network host: the Dockerfile's `apt-get` reaches the mirror without podman creating a
  # bridge and firewall rules on this machine.
  local common=(--network host "${ulimits[@]}" --build-arg "BASE=$base_image"
    --build-arg BINARIES=prebuilt --layers)
  for t in operator agent; do
    podman_ build --quiet "${common[@]}" --target "$t" -t "localhost/stoker-$t:$version" \
      -f "$ctx/Dockerfile" "$ctx" >/dev/null
  done
  podman_ build --quiet "${common[@]}" -t "localhost/stoker-gateway-sim:$version" \
    -f "$ctx/gateway-sim.Containerfile" "$ctx" >/dev/null
  log "images built in $((SECONDS - start)) s"
}

# Each image answers --version; the agent syncs examples/ as user 65532 with a read-only root
# file system into a mounted directory, and the files arrive.
smoke_test() {
  local t out
  for t in "${images[@]}"; do
    out=$(podman_ run --rm "${ulimits[@]}" --network none "localhost/stoker-$t:$version" --version)
    log "localhost/stoker-$t:$version --version: $out"
    case "$out" in *"$version"*) ;; *) die "stoker-$t --version does not name $version: $out" ;; esac
  done
  # The runtime is only what the binaries run (Dockerfile, stage rootfs): sh and ssh load their
  # libraries, ssh knows user 65532 (it refuses to run for a user it cannot look up, before
  # connecting), and the CA bundle is there.
  for t in operator agent; do
    out=$(podman_ run --rm "${ulimits[@]}" --network none --entrypoint /bin/sh \
      "localhost/stoker-$t:$version" -c \
      'ssh -o BatchMode=yes -o ConnectTimeout=5 127.0.0.1 true 2>&1; test -s /etc/ssl/certs/ca-certificates.crt && echo ca-bundle' ||
      true)
    case "$out" in
      *"connect to host 127.0.0.1 port 22"*ca-bundle*) ;;
      *) die "stoker-$t: ssh, sh or the CA bundle unusable as 65532: $out" ;;
    esac
  done
  log "operator and agent images: sh, ssh (as 65532) and the CA bundle work"
  local dest
  dest=$(mktemp -d "$out_dir/smoke.XXXXXX")
  chown 65532:65532 "$dest"
  podman_ run --rm "${ulimits[@]}" --network none --read-only --user 65532:65532 \
    -v "$PWD/examples:/examples:ro" -v "$dest:/data" "localhost/stoker-agent:$version" \
    sync --config /examples/gatewaysync.yaml --source /examples/repo --dest /data \
    --gateway-name site1 >&2
  # examples/gatewaysync.yaml maps services/site1/projects to projects/.
  [ -n "$(find "$dest/projects" -type f -print -quit 2>/dev/null)" ] ||
    die "the agent image synced no projects into $dest"
  [ "$(stat -c %u "$(find "$dest" -mindepth 1 -type f -print -quit)")" = 65532 ] ||
    die "the agent image's files are not owned by 65532"
  log "agent image synced examples/ as 65532 with a read-only root: $(find "$dest" -type f | wc -l) files"
  rm -rf "$dest"
}

save_archives() {
  local t f
  for t in "${images[@]}"; do
    f="$out_dir/stoker-$t.oci.tar"
    rm -f "$f"
    podman_ save --quiet --format oci-archive -o "$f" "localhost/stoker-$t:$version"
  done
  # The archive's layers are gzip-compressed: its size is what a registry stores and a node pulls.
  log "image sizes (uncompressed; compressed as pushed):"
  for t in "${images[@]}"; do
    f="$out_dir/stoker-$t.oci.tar"
    log "  stoker-$t: $(podman_ image inspect --format '{{.Size}}' "localhost/stoker-$t:$version" |
      awk '{ printf "%.1f MB", $1 / 1e6 }'), $(stat -c %s "$f" | awk '{ printf "%.1f MB", $1 / 1e6 }') compressed"
  done
}

build() {
  local from=
  case "${1:-}" in
    --binaries)
      [ -n "${2:-}" ] || die "usage: hack/images.sh build [--binaries DIR]"
      from=$(cd "$2" && pwd) || die "no directory $2"
      ;;
    "") ;;
    *) die "usage: hack/images.sh build [--binaries DIR]" ;;
  esac
  local start=$SECONDS
  mkdir -p "$out_dir"
  base
  binaries "$from"
  build_images
  smoke_test
  save_archives
  log "done in $((SECONDS - start)) s: $out_dir"
}

dir_cmd() {
  local t
  for t in "${images[@]}"; do
    [ -f "$out_dir/stoker-$t.oci.tar" ] || die "no $out_dir/stoker-$t.oci.tar: run 'hack/images.sh build'"
  done
  echo "$out_dir"
}

case "${1:-}" in
  build)
    shift
    build "$@"
    ;;
  base) base ;;
  dir) dir_cmd ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
