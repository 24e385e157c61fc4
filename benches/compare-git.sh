#!/usr/bin/env bash
# Stoker's Git path against git itself and rsync (issue 3's targets), on the 20k-file repository
# from ../shared/bench/gen-ignition-repo served over smart HTTP on loopback (stoker-git-http:
# git's own http-backend). ROUNDS rounds (default 3), medians; the cold case alternates which side
# goes first, the incremental and no-op cases run Stoker first (both sides then start from
# commit 1's state in their own directories).
#
#   first fetch + cold sync   stoker-agent sync (empty cache, empty dest)  vs  git clone --depth 1 URL
#   incremental 1%, cached    stoker-agent sync commit 1 → 2, both commits already in the cache (the
#                             engine alone: no network)      vs  rsync -a --checksum --delete C2/ DEST/
#   incremental 1%, fetch     the same with commit 2 fetched first (cache at commit 1)
#                                                                          vs  the same rsync
#   no-op with drift check    stoker-agent sync of the same commit again   vs  rsync -a --delete (no-op)
#
# Before the incremental cases the destination is at commit 1 after a cold sync and one untimed
# no-op sync, as after any ordinary run (the first sync into an empty directory does not record
# its directories in the manifest; the next one does). For the cached case, an untimed sync takes
# the destination back to commit 1 after the fetch case, with commit 2 still in the cache.
#
# AGENT and HTTP may name prebuilt stoker-agent and stoker-git-http binaries (then nothing is
# built).
#
# Targets (issue 3): ≤ 1.2× time and ≤ 1.0× peak memory of git clone; incremental ≤ 0.05× rsync
# --checksum; no-op ≤ 1.0× rsync -a --delete. Needs benches/compare.sh's data (generated here when
# missing) and hack/bench-deps.sh's rsync and GNU time.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-3}
RUN=$DATA/run-git

bash hack/bench-deps.sh >&2
if [ -z "${AGENT:-}" ] || [ -z "${HTTP:-}" ]; then
  cargo build --release --quiet -p stoker-agent --bin stoker-agent -p stoker-testkit --bin stoker-git-http
fi
AGENT=${AGENT:-$CARGO_TARGET_DIR/release/stoker-agent}
HTTP=${HTTP:-$CARGO_TARGET_DIR/release/stoker-git-http}

bench_repo_20000
for i in 0 1; do
  dir=$DATA/repo-20000-c$((i + 1))
  [ -d "$dir" ] || { mkdir -p "$dir" && git -C "$REPO" archive "${COMMITS[$i]}" | tar -x -C "$dir"; }
done

rm -rf "$RUN" && mkdir -p "$RUN"
trap 'kill ${HTTP_PID:-} 2>/dev/null || true; rm -rf "$RUN"' EXIT
serve_repo_20000 "$RUN"

# settle: write back everything the steps before left dirty. One `sync` is not enough on ext4
# with delayed allocation: the writeback it waits for dirties the new files' inodes again (their
# on-disk size), and after a `cp -a` of the 20k-file checkout the second `sync` still took
# 30–60 ms here. Without it, that writeback fell on the timed command's first fsync.
settle() { sync && sync; }

# timed CMD...: sets S (seconds) and RSS (MB)
timed() {
  settle
  local start end
  start=$(date +%s%N)
  /usr/bin/time -f %M -o "$RUN/.rss" "$@" >"$RUN/.out" 2>"$RUN/.err" || { cat "$RUN/.err" >&2; exit 1; }
  end=$(date +%s%N)
  S=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  RSS=$(awk '{ printf "%.0f", $1 / 1024 }' "$RUN/.rss")
}
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
agent() { echo "$AGENT sync --config $RUN/gs.yaml --cache-dir $1 --dest $2 --ref $3 --output json"; }

declare -A ST BL SR BR
for ((r = 1; r <= ROUNDS; r++)); do
  order=(st bl)
  if ((r % 2 == 0)); then order=(bl st); fi
  for side in "${order[@]}"; do
    if [ "$side" = st ]; then
      timed $(agent "$RUN/cache-$r" "$RUN/live-$r" "${COMMITS[0]}")
      ST[cold]+="$S " && SR[cold]+="$RSS "
    else
      timed git clone -q --depth 1 "$URL" "$RUN/clone-$r"
      BL[cold]+="$S " && BR[cold]+="$RSS "
    fi
  done
  # incremental: both sides start at commit 1
  $(agent "$RUN/cache-$r" "$RUN/live-$r" "${COMMITS[0]}") >/dev/null
  cp -a "$DATA/repo-20000-c1" "$RUN/rs-$r"
  timed $(agent "$RUN/cache-$r" "$RUN/live-$r" "${COMMITS[1]}")
  ST[inc]+="$S " && SR[inc]+="$RSS "
  timed rsync -a --checksum --delete "$DATA/repo-20000-c2/" "$RUN/rs-$r/"
  BL[inc]+="$S " && BR[inc]+="$RSS "
  # incremental with both commits in the cache: back to commit 1 (untimed), then to commit 2
  $(agent "$RUN/cache-$r" "$RUN/live-$r" "${COMMITS[0]}") >/dev/null
  cp -a "$DATA/repo-20000-c1" "$RUN/rs2-$r"
  timed $(agent "$RUN/cache-$r" "$RUN/live-$r" "${COMMITS[1]}")
  ST[incc]+="$S " && SR[incc]+="$RSS " && incc_stoker=$S
  timed rsync -a --checksum --delete "$DATA/repo-20000-c2/" "$RUN/rs2-$r/"
  BL[incc]+="$S " && BR[incc]+="$RSS " && incc_rsync=$S
  # no-op with drift check
  timed $(agent "$RUN/cache-$r" "$RUN/live-$r" "${COMMITS[1]}")
  ST[noop]+="$S " && SR[noop]+="$RSS "
  timed rsync -a --delete "$DATA/repo-20000-c2/" "$RUN/rs-$r/"
  BL[noop]+="$S " && BR[noop]+="$RSS "
  diff -r -x .stoker -x .git "$DATA/repo-20000-c2" "$RUN/live-$r" >/dev/null || { echo "live-$r differs from commit 2" >&2; exit 1; }
  log "round $r done (incremental, cached: stoker ${incc_stoker} s, rsync ${incc_rsync} s)"
done

printf '\nStoker Git path — %s, 2 cores, load %s; %d rounds, medians (ratio: median of the per-round ratios)\n\n' "$(date -u +%FT%RZ)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$ROUNDS"
printf '| case | stoker (s) | baseline | baseline (s) | ratio | target | peak RSS stoker / baseline (MB) |\n|---|---:|---|---:|---:|---:|---:|\n'
row() {
  local key=$1 name=$2 base=$3 target=$4 st bl ratios
  st=$(median ${ST[$key]}) && bl=$(median ${BL[$key]})
  ratios=$(paste -d' ' <(printf '%s\n' ${ST[$key]}) <(printf '%s\n' ${BL[$key]}) | awk '{ print $1 / $2 }')
  printf '| %s | %s | %s | %s | %.3f× | %s | %s / %s |\n' "$name" "$st" "$base" "$bl" \
    "$(median $ratios)" "$target" \
    "$(printf '%s\n' ${SR[$key]} | sort -g | tail -1)" "$(printf '%s\n' ${BR[$key]} | sort -g | tail -1)"
}
row cold "first fetch + cold sync (smart HTTP)" '`git clone --depth 1`' "≤ 1.2×, RSS ≤ 1.0×"
row incc "incremental 1%, both commits cached (sync only)" '`rsync -a --checksum --delete`' "≤ 0.05×"
row inc "incremental 1% (fetch + sync)" '`rsync -a --checksum --delete`' "—"
row noop "no-op with drift check" '`rsync -a --delete`' "≤ 1.0×"
