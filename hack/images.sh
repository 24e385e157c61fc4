#!/usr/bin/env bash
# Stoker's container images, built here from the repository's Dockerfile with podman + runc, on a
# machine that cannot pull from any registry (see docs/kubernetes.md, "Try it without a cluster").
#
#   hack/images.sh build    the base image (cached), the release binaries, the operator, agent
#                           and gateway-simulator images; smoke-tests each; saves them as OCI
#                           archives in target/images/ and prints their sizes
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
  apt_ensure podman:podman runc:runc mmdebstrap:mmdebstrap uidmap:newuidmap
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

# The release binaries, built on the host into a throw-away build context with the Dockerfile.
binaries() {
  local start=$SECONDS
  log "cargo build --release (stoker-operator, stoker-agent, stoker-gateway-sim)"
  cargo build --release --locked -p stoker-operator -p stoker-agent -p stoker-testkit \
    --bin stoker-operator --bin stoker-agent --bin stoker-gateway-sim >&2
  log "release binaries built in $((SECONDS - start)) s"
  local ctx="$out_dir/context"
  rm -rf "$ctx"
  mkdir -p "$ctx/prebuilt"
  cp Dockerfile hack/lib/gateway-sim.Containerfile "$ctx/"
  local b
  for b in stoker-operator stoker-agent stoker-gateway-sim; do
    # Symbols and line tables are dropped in the images (as a distribution's packages do); a
    # backtrace still names the functions.
    objcopy --strip-debug "$target_dir/release/$b" "$ctx/prebuilt/$b"
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
  local start=$SECONDS
  mkdir -p "$out_dir"
  base
  binaries
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
  build) build ;;
  base) base ;;
  dir) dir_cmd ;;
  -h | --help | help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
