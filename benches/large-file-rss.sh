#!/usr/bin/env bash
# Peak RSS of `stoker-agent sync` of one large file (issue 15 item 4): from a local directory
# (`--source`) and from a Git repository served by `git daemon` on loopback (empty cache: the
# fetch is measured too). Memory only: the times printed are for orientation, nothing is
# asserted. Not `file://`: the agent would then run git's `upload-pack` and `pack-objects` as
# its children, and GNU time's peak RSS is the largest of the whole process tree (git's
# pack-objects holds a large loose object whole: 267 MB for a 128 MiB file).
#
# Cases, each into an empty destination, then once more after the live file's mtime changed
# (the manifest cannot vouch for it: the live file and the source are hashed again):
#   local      SIZE_MIB of pseudo-random bytes (written once, on disk)
#   sparse     a sparse file of SIZE_MIB with 1 MiB of data (holes must stay holes)
#   git        GIT_SIZE_MIB of pseudo-random bytes, committed to a repository (`git add` of a
#              large random file is slow: 256 MiB by default shows the trend)
#
# Environment:
#   SIZE_MIB=1024  GIT_SIZE_MIB=256
#   AGENT=PATH        the stoker-agent to measure (default: build the release one here)
#   BEFORE=PATH       another stoker-agent (e.g. built from an older commit) measured the same
#                     way, side by side
#   OUT=DIR           data and runs (default target/bench-data/large-file); KEEP=1 keeps them
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE_MIB=${SIZE_MIB:-1024}
GIT_SIZE_MIB=${GIT_SIZE_MIB:-256}
OUT=${OUT:-$ROOT/target/bench-data/large-file}
TIME=/usr/bin/time
[ -x "$TIME" ] || bash "$ROOT/hack/bench-deps.sh"
[ -x "$TIME" ] || { echo "large-file-rss: GNU time is needed (/usr/bin/time)" >&2; exit 1; }

if [ -z "${AGENT:-}" ]; then
  (cd "$ROOT" && cargo build --release --quiet -p stoker-agent --bin stoker-agent)
  AGENT=$ROOT/target/release/stoker-agent
fi

mkdir -p "$OUT"
DATA=$OUT/data
RUN=$OUT/run
rm -rf "$RUN"
mkdir -p "$DATA" "$RUN"

# --- data (cached between runs) ---------------------------------------------------------------
random_file() { # PATH MIB: pseudo-random bytes (no chunk of zeros)
  [ -f "$1" ] && [ "$(stat -c %s "$1")" = $(($2 << 20)) ] && return
  mkdir -p "$(dirname "$1")"
  head -c $(($2 << 20)) /dev/urandom >"$1.tmp" && mv "$1.tmp" "$1"
}
random_file "$DATA/local/modules/big.modl" "$SIZE_MIB"
if [ ! -f "$DATA/sparse/modules/big.modl" ]; then
  mkdir -p "$DATA/sparse/modules"
  truncate -s $((SIZE_MIB << 20)) "$DATA/sparse/modules/big.modl"
  head -c $((1 << 20)) /dev/urandom |
    dd of="$DATA/sparse/modules/big.modl" bs=1M seek=$((SIZE_MIB / 2)) conv=notrunc status=none
fi
if [ ! -d "$DATA/git.git" ]; then
  rm -rf "$DATA/git-work"
  random_file "$DATA/git-work/modules/big.modl" "$GIT_SIZE_MIB"
  git -C "$DATA/git-work" init -q -b main
  git -C "$DATA/git-work" -c user.name=bench -c user.email=bench@example.invalid add .
  git -C "$DATA/git-work" -c user.name=bench -c user.email=bench@example.invalid commit -q -m big
  git clone -q --bare "$DATA/git-work" "$DATA/git.git"
  rm -rf "$DATA/git-work"
fi
PORT=$((20000 + RANDOM % 20000))
git daemon --reuseaddr --base-path="$DATA" --export-all --listen=127.0.0.1 --port="$PORT" \
  "$DATA" 2>"$RUN/daemon.log" &
DAEMON=$!
trap 'kill "$DAEMON" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  git ls-remote "git://127.0.0.1:$PORT/git.git" >/dev/null 2>&1 && break
  sleep 0.1
done

manifest() { # GIT_URL
  cat <<YAML
apiVersion: stoker.io/v1alpha1
kind: GatewaySync
metadata:
  name: bench
  namespace: default
spec:
  git:
    repo: $1
    ref: main
  sync:
    profiles:
      default:
        mappings:
          - source: .
            destination: .
            type: dir
YAML
}
manifest "https://git.example.invalid/unused.git" >"$RUN/local.yaml"
manifest "git://127.0.0.1:$PORT/git.git" >"$RUN/git.yaml"

ROWS=()
measure() { # LABEL AGENT ARGS...: one sync; appends "label|peak RSS KiB|seconds"
  local label=$1 agent=$2
  shift 2
  sync
  if ! "$TIME" -f '%M %e' -o "$RUN/time" "$agent" sync --output json "$@" >"$RUN/out.json" 2>"$RUN/err"; then
    echo "large-file-rss: $label failed:" >&2
    cat "$RUN/err" >&2
    ROWS+=("$label|failed|")
    return
  fi
  read -r rss secs <"$RUN/time"
  ROWS+=("$label|$rss|$secs")
}

cases() { # NAME AGENT
  local name=$1 agent=$2 dest
  for src in local sparse; do
    dest=$RUN/$name-$src
    measure "$name $src: cold sync" "$agent" -c "$RUN/local.yaml" -s "$DATA/$src" -d "$dest" \
      --cache-dir "$RUN/$name-$src-cache"
    cmp -s "$DATA/$src/modules/big.modl" "$dest/modules/big.modl" || echo "MISMATCH: $name $src" >&2
    touch "$dest/modules/big.modl"
    measure "$name $src: drift check (live and source hashed)" "$agent" -c "$RUN/local.yaml" \
      -s "$DATA/$src" -d "$dest" --cache-dir "$RUN/$name-$src-cache"
    echo "  $name $src: $(du -k "$dest/modules/big.modl" | cut -f1) KiB allocated for $(stat -c %s "$dest/modules/big.modl") bytes" >&2
    [ -n "${KEEP:-}" ] || rm -rf "$dest"
  done
  dest=$RUN/$name-git
  measure "$name git: cold sync (fetch into an empty cache)" "$agent" -c "$RUN/git.yaml" -d "$dest" \
    --cache-dir "$RUN/$name-git-cache"
  git -C "$DATA/git.git" cat-file blob main:modules/big.modl | cmp -s - "$dest/modules/big.modl" ||
    echo "MISMATCH: $name git" >&2
  touch "$dest/modules/big.modl"
  measure "$name git: drift check (live hashed)" "$agent" -c "$RUN/git.yaml" -d "$dest" \
    --cache-dir "$RUN/$name-git-cache"
  [ -n "${KEEP:-}" ] || rm -rf "$dest" "$RUN/$name-"*-cache
}

[ -z "${BEFORE:-}" ] || cases before "$BEFORE"
cases after "$AGENT"

echo
echo "One large file, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "local and sparse: $SIZE_MIB MiB; git: $GIT_SIZE_MIB MiB"
echo
echo "| case | peak RSS (MiB) | wall (s) |"
echo "|---|---:|---:|"
for row in "${ROWS[@]}"; do
  IFS='|' read -r label rss secs <<<"$row"
  if [ "$rss" = failed ]; then
    echo "| $label | failed | |"
  else
    awk -v l="$label" -v r="$rss" -v s="$secs" 'BEGIN { printf "| %s | %.0f | %s |\n", l, r / 1024, s }'
  fi
done
[ -n "${KEEP:-}" ] || rm -rf "$RUN"
