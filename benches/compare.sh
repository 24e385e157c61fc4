#!/usr/bin/env bash
# Stoker's sync engine against `cp -a` and `rsync` on a generated 20k-file Ignition repository
# (DESIGN section 6). Usage, from anywhere:
#
#   bash benches/compare.sh
#
# Environment:
#   ROUNDS=5          A/B rounds per case (alternating which side goes first)
#   FILES=20000       size of the generated repository
#   DROP_CACHES=auto  auto: drop the page cache for the cold-cache case when the kernel lets us
#                     (needs root); 0: never (that case is skipped); 1: required
#   CLI=1             also time the release `stoker-agent sync` once per case (0: skip)
#   KEEP=0            1: keep target/bench-data/run/ afterwards for inspection
#   SETTLE=60         seconds to wait after deleting a previous run when the cache cannot be
#                     dropped (see "ext4" below)
#
# What runs: `hack/bench-deps.sh` (rsync, GNU time), a release build of the `stoker-bench-sync`
# binary (MergeStrategy::sync with a LocalSource, whole tree `.` → `.`), then the cases below,
# each measured as wall-clock time of the whole process (ours and the baseline's alike), A/B
# alternated in one run; the table shows medians. Peak RSS comes from `/usr/bin/time -f %M`.
#
# ext4 note: on an ext4 file system without a journal (this machine's), creating many files soon
# after deleting many is slow (the inode allocator skips "recently deleted" inodes, checking each
# one, for 60-360 s), so destinations are never deleted between rounds; every round writes into
# fresh directories, and everything is removed at the end.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
ROUNDS=${ROUNDS:-5}
FILES=${FILES:-20000}
DROP_CACHES=${DROP_CACHES:-auto}
CLI=${CLI:-1}
KEEP=${KEEP:-0}
SETTLE=${SETTLE:-60}
DATA=$ROOT/target/bench-data
RUN=$DATA/run
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

log() { printf '==> %s\n' "$*" >&2; }

bash hack/bench-deps.sh >&2
TIME=""
if [ -x /usr/bin/time ]; then TIME=/usr/bin/time; else log "no /usr/bin/time: peak RSS skipped"; fi

log "building the release benchmark binary"
cargo build --release --quiet -p stoker-benches --bin stoker-bench-sync
BIN=$CARGO_TARGET_DIR/release/stoker-bench-sync
AGENT=""
if [ "$CLI" = 1 ]; then
  if cargo build --release --quiet -p stoker-agent --bin stoker-agent; then
    AGENT=$CARGO_TARGET_DIR/release/stoker-agent
  else
    log "stoker-agent did not build; the CLI figures are skipped"
  fi
fi

# ---------------------------------------------------------------------------------------------
# Data: generated once, both commits extracted to plain directories (no .git). Same cache layout
# as benches/src/lib.rs.
mkdir -p "$DATA"
REPO=$DATA/repo-$FILES
if [ ! -f "$REPO.json" ]; then
  log "generating a $FILES-file repository (once; cached in $DATA)"
  rm -rf "$REPO"
  python3 ../shared/bench/gen-ignition-repo "$REPO" --files "$FILES" --commits 2 --churn 1 >"$REPO.json.tmp"
  mv "$REPO.json.tmp" "$REPO.json"
fi
mapfile -t COMMITS < <(git -C "$REPO" rev-list --reverse main)
[ "${#COMMITS[@]}" = 2 ] || { echo "$REPO: expected 2 commits" >&2; exit 1; }
C1=$REPO-c1
C2=$REPO-c2
for i in 0 1; do
  out=$REPO-c$((i + 1))
  [ -d "$out" ] && continue
  rm -rf "$out.partial" && mkdir -p "$out.partial"
  git -C "$REPO" archive --format=tar "${COMMITS[$i]}" | tar -x -C "$out.partial"
  mv "$out.partial" "$out"
done
NFILES=$(find "$C1" -type f | wc -l)
BYTES=$(find "$C1" -type f -printf '%s\n' | awk '{ n += $1 } END { print n }')
CHANGED=$(diff -rq "$C1" "$C2" | wc -l || true)

# ---------------------------------------------------------------------------------------------
drop_caches() { sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; }
CAN_DROP=0
if [ "$DROP_CACHES" != 0 ] && drop_caches; then CAN_DROP=1; fi
if [ "$DROP_CACHES" = 1 ] && [ "$CAN_DROP" = 0 ]; then
  echo "DROP_CACHES=1 but /proc/sys/vm/drop_caches is not writable" >&2
  exit 1
fi

if [ -e "$RUN" ]; then
  log "removing the previous run"
  rm -rf "$RUN"
  if [ "$CAN_DROP" = 1 ]; then drop_caches; else sync; log "settling ${SETTLE}s after the deletion"; sleep "$SETTLE"; fi
fi
mkdir -p "$RUN"
cleanup() {
  if [ "$KEEP" != 1 ]; then
    rm -rf "$RUN"
    sync
    # Drop the deleted inodes' buffers too, so the next file-creating process is not slowed.
    [ "$CAN_DROP" = 1 ] && drop_caches || true
  fi
}
trap cleanup EXIT

warm() { tar -cf - -C "$DATA" "$(basename "$C1")" "$(basename "$C2")" | cat >/dev/null; }

# measure COLD CMD...: runs CMD once, timed; sets LAST_S (seconds), LAST_RSS (kB), LAST_OUT.
measure() {
  local cold=$1 start end
  shift
  # Twice: one `sync` left the preceding `cp -a`'s inode writeback to the timed command's first
  # fsync (see settle() in compare-git.sh).
  sync && sync
  if [ "$cold" = 1 ]; then drop_caches; fi
  start=$(date +%s%N)
  if [ -n "$TIME" ]; then
    "$TIME" -f %M -o "$RUN/.rss" "$@" >"$RUN/.out" 2>"$RUN/.err" || { cat "$RUN/.err" >&2; return 1; }
  else
    "$@" >"$RUN/.out" 2>"$RUN/.err" || { cat "$RUN/.err" >&2; return 1; }
  fi
  end=$(date +%s%N)
  LAST_S=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
  LAST_RSS=$([ -n "$TIME" ] && tail -1 "$RUN/.rss" || echo "")
  LAST_OUT=$(head -c 4000 "$RUN/.out")
}

field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2" | head -1; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.4f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
maximum() { printf '%s\n' "$@" | sort -g | tail -1; }
same_tree() { diff -r -x .stoker "$1" "$2" >/dev/null || { echo "MISMATCH: $2 differs from $1" >&2; exit 1; }; }

ROWS=() # case|stoker|baseline name|baseline|paired ratio|target|stoker rss|baseline rss|plan|apply
BREAKDOWN=()
CLI_ROWS=()

# run_case NAME BASELINE_NAME TARGET COLD PREPARE_ST TIMED_ST PREPARE_BL TIMED_BL [METRIC]
# PREPARE_* and TIMED_* are function names taking the round number. METRIC: `wall` (default;
# the whole process, as for the baseline) or `engine` (the binary's own plan + apply time, for
# runs that do untimed preparation in the same process).
run_case() {
  local name=$1 bl_name=$2 target=$3 cold=$4 prep_st=$5 run_st=$6 prep_bl=$7 run_bl=$8 metric=${9:-wall}
  local st=() bl=() ratio=() st_rss=() bl_rss=() plan=() apply=() r side
  log "case: $name ($ROUNDS rounds)"
  for ((r = 1; r <= ROUNDS; r++)); do
    local order=(st bl)
    if ((r % 2 == 0)); then order=(bl st); fi
    for side in "${order[@]}"; do
      if [ "$side" = st ]; then
        "$prep_st" "$r"
        measure "$cold" "$BIN" $("$run_st" "$r")
        if [ "$metric" = engine ]; then st+=("$(field total "$LAST_OUT")"); else st+=("$LAST_S"); fi
        st_rss+=("${LAST_RSS:-0}")
        plan+=("$(field plan "$LAST_OUT")") && apply+=("$(field apply "$LAST_OUT")")
      else
        "$prep_bl" "$r"
        measure "$cold" $("$run_bl" "$r")
        bl+=("$LAST_S") && bl_rss+=("${LAST_RSS:-0}")
      fi
    done
    ratio+=("$(awk -v a="${st[-1]}" -v b="${bl[-1]}" 'BEGIN { printf "%.4f", a / b }')")
    printf '    round %d: stoker %ss (plan %s, apply %s)  %s %ss  ratio %s\n' "$r" "${st[-1]}" \
      "${plan[-1]}" "${apply[-1]}" "$bl_name" "${bl[-1]}" "${ratio[-1]}" >&2
  done
  ROWS+=("$name|$(median "${st[@]}")|$bl_name|$(median "${bl[@]}")|$(median "${ratio[@]}")|$target|$(maximum "${st_rss[@]}")|$(maximum "${bl_rss[@]}")|$(median "${plan[@]}")|$(median "${apply[@]}")")
}

nothing() { :; }

# --- cold: into an empty directory ------------------------------------------------------------
cold_st() { echo "$C1 $RUN/$CASE-st-$1 --revision ${COMMITS[0]}"; }
cold_bl() { echo "cp -a $C1 $RUN/$CASE-cp-$1"; }

warm
CASE=cold-warm
run_case "cold sync, warm cache" "cp -a" 1.2 0 nothing cold_st nothing cold_bl
same_tree "$C1" "$RUN/cold-warm-st-1"
same_tree "$C1" "$RUN/cold-warm-cp-1"
if [ "$CAN_DROP" = 1 ]; then
  CASE=cold-dropped
  run_case "cold sync, page cache dropped" "cp -a" 1.2 1 nothing cold_st nothing cold_bl
  same_tree "$C1" "$RUN/cold-dropped-st-1"
else
  log "cannot drop the page cache here: cold-cache case skipped, all figures are warm-cache"
fi

# --- incremental: commit 1's synced state → commit 2 ------------------------------------------
# Stoker's starting state is a live directory it synced to commit 1 itself (manifest current, as
# after a real previous sync): a `cp -a` of a prepared snapshot, then an untimed re-sync of
# commit 1 so that the manifest vouches for the copied inodes. rsync starts from a `cp -a` of
# commit 1. Both copies are made before the timed step.
warm
"$BIN" "$C1" "$RUN/base-st" --revision "${COMMITS[0]}" >/dev/null
inc_prep_st() { cp -a "$RUN/base-st" "$RUN/inc-st-$1" && "$BIN" "$C1" "$RUN/inc-st-$1" --revision "${COMMITS[0]}" >/dev/null; }
inc_st() { echo "$C2 $RUN/inc-st-$1 --revision ${COMMITS[1]}"; }
inc_prep_bl() { cp -a "$C1" "$RUN/inc-rs-$1"; }
inc_bl() { echo "rsync -a --checksum --delete $C2/ $RUN/inc-rs-$1/"; }
run_case "incremental 1% churn" "rsync -a --checksum --delete" 0.7 0 inc_prep_st inc_st inc_prep_bl inc_bl
same_tree "$C2" "$RUN/inc-st-1"
same_tree "$C2" "$RUN/inc-rs-1"

# The same with content ids known up front (what a Git source gives for free): the binary
# hashes the source before its clock starts, so this row compares the engine's own time.
CASE=ids
ids_prep_st() { inc_prep_st "ids-$1"; }
ids_st() { echo "$C2 $RUN/inc-st-ids-$1 --revision ${COMMITS[1]} --known-ids"; }
ids_prep_bl() { inc_prep_bl "ids-$1"; }
ids_bl() { echo "rsync -a --checksum --delete $C2/ $RUN/inc-rs-ids-$1/"; }
run_case "incremental 1%, ids known (Git-like; engine time)" "rsync -a --checksum --delete" 0.7 0 \
  ids_prep_st ids_st ids_prep_bl ids_bl engine
same_tree "$C2" "$RUN/inc-st-ids-1"

# The realistic local-directory case: one source directory updated in place (as `git pull`
# would), with the content-id cache `stoker-agent sync --source` keeps by default. Untimed per
# round: reset the source to commit 1 (rsync touches only the changed files), re-sync commit 1
# (which records ids for files older than a second), move the source to commit 2. Timed: the sync.
SRC="$RUN/src-inplace"
cp -a "$C1" "$SRC"
sleep 1.1 # the id cache only vouches for files whose last change is more than a second old
cache_prep_st() {
  rsync -a --delete "$C1/" "$SRC/"
  cp -a "$RUN/base-st" "$RUN/inc-st-cache-$1"
  "$BIN" "$SRC" "$RUN/inc-st-cache-$1" --revision "${COMMITS[0]}" --id-cache "$RUN/ids.json" >/dev/null
  rsync -a --delete "$C2/" "$SRC/"
}
cache_st() { echo "$SRC $RUN/inc-st-cache-$1 --revision ${COMMITS[1]} --id-cache $RUN/ids.json"; }
cache_prep_bl() { inc_prep_bl "cache-$1"; }
cache_bl() { echo "rsync -a --checksum --delete $C2/ $RUN/inc-rs-cache-$1/"; }
run_case "incremental 1%, source updated in place, id cache" "rsync -a --checksum --delete" 0.7 0 \
  cache_prep_st cache_st cache_prep_bl cache_bl
same_tree "$C2" "$RUN/inc-st-cache-1"

# --- no-op: already synced, drift check -------------------------------------------------------
noop_st() { echo "$C2 $RUN/inc-st-1 --revision ${COMMITS[1]}"; }
noop_bl() { echo "rsync -a --delete $C2/ $RUN/inc-rs-1/"; }
run_case "no-op (already synced)" "rsync -a --delete" 1.0 0 nothing noop_st nothing noop_bl

# --- phase breakdown (one extra run each; the --breakdown pre-pass warms the caches) -----------
breakdown_labelled() { # LABEL SOURCE LIVE [ARGS...]
  local label=$1
  shift
  "$BIN" "$@" --breakdown >"$RUN/.bd"
  BREAKDOWN+=("$label" "$(head -1 "$RUN/.bd")" "$(tail -1 "$RUN/.bd")")
}
warm
breakdown_labelled cold "$C1" "$RUN/bd-cold" --revision "${COMMITS[0]}"
inc_prep_st bd
breakdown_labelled incremental "$C2" "$RUN/inc-st-bd" --revision "${COMMITS[1]}"
breakdown_labelled no-op "$C2" "$RUN/inc-st-bd" --revision "${COMMITS[1]}"

# --- the CLI once per case (release stoker-agent sync, GatewaySync manifest) -------------------
if [ -n "$AGENT" ]; then
  cat >"$RUN/gatewaysync.yaml" <<'YAML'
apiVersion: stoker.io/v1alpha1
kind: GatewaySync
metadata:
  name: bench
  namespace: default
spec:
  git:
    repo: https://git.example.invalid/bench.git
    ref: main
  sync:
    profiles:
      default:
        mappings:
          - source: .
            destination: .
            type: dir
YAML
  cli() { measure 0 "$AGENT" sync -c "$RUN/gatewaysync.yaml" -s "$1" -d "$2"; }
  warm
  cli "$C1" "$RUN/cli-cold" && CLI_ROWS+=("cold sync, warm cache|$LAST_S|$LAST_RSS")
  inc_prep_st cli
  cli "$C2" "$RUN/inc-st-cli" && CLI_ROWS+=("incremental 1% churn|$LAST_S|$LAST_RSS")
  cli "$C2" "$RUN/inc-st-cli" && CLI_ROWS+=("no-op (already synced)|$LAST_S|$LAST_RSS")
  same_tree "$C2" "$RUN/inc-st-cli"
fi

# ---------------------------------------------------------------------------------------------
echo
echo "Stoker vs baselines — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "tree: $NFILES files, $BYTES bytes; commit 1 → 2: $CHANGED changed paths; $ROUNDS rounds, medians of wall-clock seconds"
echo
echo "| case | stoker (s) | baseline | baseline (s) | ratio | target | result | peak RSS stoker / baseline (MB) | stoker plan / apply (s) |"
echo "|---|---:|---|---:|---:|---:|---|---:|---:|"
for row in "${ROWS[@]}"; do
  IFS='|' read -r name st bl_name bl ratio target st_rss bl_rss plan apply <<<"$row"
  awk -v name="$name" -v st="$st" -v bln="$bl_name" -v bl="$bl" -v ratio="$ratio" -v t="$target" \
      -v sr="$st_rss" -v br="$bl_rss" -v p="$plan" -v a="$apply" 'BEGIN {
    printf "| %s | %.3f | `%s` | %.3f | %.2f× | ≤ %.1f× | %s | %.0f / %.0f | %.2f / %.2f |\n",
      name, st, bln, bl, ratio, t, (ratio <= t ? "PASS" : "MISS"), sr / 1024, br / 1024, p, a
  }'
done
echo
echo "ratio = median of the per-round ratios (each round runs both sides back to back, so load"
echo "drift on a shared machine cancels out better than in a ratio of medians)."
echo
echo "DESIGN.md section 6 asks for more: cold ≤ 1.0× cp -a, incremental ≤ 0.05× rsync --checksum."
if [ "$CAN_DROP" = 0 ]; then echo "Page cache could not be dropped: every figure is warm-cache."; fi
[ -n "$TIME" ] || echo "No /usr/bin/time: peak RSS not measured."
echo
echo "Phase breakdown, one run each (seconds; plan = list + desired + manifest + scan + compare;"
echo "the second line is timed separately before the sync, see src/bin/stoker-bench-sync.rs):"
for ((i = 0; i < ${#BREAKDOWN[@]}; i += 3)); do
  printf '  %s:\n    %s\n    %s\n' "${BREAKDOWN[i]}" "${BREAKDOWN[i + 1]}" "${BREAKDOWN[i + 2]}"
done
if [ "${#CLI_ROWS[@]}" -gt 0 ]; then
  echo
  echo "Release CLI, one run each (stoker-agent sync --source, includes resolve's tree fingerprint):"
  for row in "${CLI_ROWS[@]}"; do
    IFS='|' read -r name s rss <<<"$row"
    printf '  %-24s %ss  peak RSS %s MB\n' "$name" "$s" "$(awk -v r="$rss" 'BEGIN { printf "%.0f", r / 1024 }')"
  done
fi
