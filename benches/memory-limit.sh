#!/usr/bin/env bash
# Memory as a container limit sees it (DESIGN §6, issue 18 item 10): the smallest cgroup v1
# memory limit under which a cold fetch + sync of the 20k-file repository (from
# ../shared/bench/gen-ignition-repo, served over smart HTTP on loopback by stoker-git-http, as in
# compare-git.sh) still succeeds, for
#
#   ours   stoker-bench-git-memory --path ours sync ...   Stoker's pack layer (what the agent runs)
#   gix    stoker-bench-git-memory --path gix sync ...    gix's own fetch and memory-mapped reads
#   git    git clone --depth 1 URL DIR                    the baseline
#
# each into an empty cache and an empty destination. Binary search between LOW_MIB (default 8)
# and HIGH_MIB (default 1024) to a resolution of STEP_MIB (default 2); each attempt runs in a
# fresh cgroup /sys/fs/cgroup/memory/stoker-bench-<pid>-<n>/ with memory.limit_in_bytes set,
# the command joining it through cgroup.procs before it starts. An attempt fails when the
# command exits non-zero, the cgroup's memory.oom_control counts an OOM kill, or it runs longer
# than RUN_TIMEOUT seconds (default 300: near the limit a process can thrash instead of being
# killed). Peak RSS (GNU time's %M) of the run at HIGH_MIB is reported beside: it counts clean
# pages of mapped files, which a limit reclaims, so it is not the measure.
#
# PATHS (default "ours gix git") chooses the paths (the "× ours" column is against the first
# when ours is not among them). ROUNDS (default 1) repeats every search; with more than one the
# table gives the median and the range. Memory limits do not depend on timing, so a busy
# machine changes little. Needs root and a cgroup v1 memory controller; hack/bench-deps.sh's GNU
# time. BENCH and HTTP may name prebuilt stoker-bench-git-memory and stoker-git-http binaries
# (then nothing is built). benches/memory-breakdown.sh says what fills the memory.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROUNDS=${ROUNDS:-1}
PATHS=${PATHS:-ours gix git}
LOW_MIB=${LOW_MIB:-8}
HIGH_MIB=${HIGH_MIB:-1024}
STEP_MIB=${STEP_MIB:-2}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
RUN=$DATA/run-memory
CGROOT=/sys/fs/cgroup/memory
CGPREFIX=$CGROOT/stoker-bench-$$

git_memory_setup

# attempt PATH_NAME MIB: runs the command under a limit of MIB MiB; succeeds when it did. Sets
# RSS (peak RSS in MiB).
ATTEMPT=0
attempt() {
  local name=$1 mib=$2 cg status=0 kills started took
  ATTEMPT=$((ATTEMPT + 1))
  cg=$CGPREFIX-$ATTEMPT
  mkdir "$cg"
  echo $((mib << 20)) >"$cg/memory.limit_in_bytes"
  rm -rf "$RUN/work" && mkdir -p "$RUN/work"
  started=$SECONDS
  # The shell joins the cgroup, then becomes the command (so all it starts is inside too).
  /usr/bin/time -f %M -o "$RUN/rss" timeout "$RUN_TIMEOUT" \
    sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg" $(git_memory_command "$name") \
    >"$RUN/out" 2>"$RUN/err" || status=$?
  took=$((SECONDS - started))
  kills=$(awk '$1 == "oom_kill" { print $2 }' "$cg/memory.oom_control")
  rmdir "$cg" 2>/dev/null || true
  rm -rf "$RUN/work"
  RSS=$(awk 'END { printf "%.0f", $1 / 1024 }' "$RUN/rss")
  printf '    %-4s %5d MiB: exit %d, OOM kills %s, peak RSS %s MiB, %d s\n' "$name" "$mib" "$status" "${kills:-0}" "$RSS" "$took" >&2
  [ "$status" -eq 0 ] && [ "${kills:-0}" -eq 0 ]
}

# search PATH_NAME: the smallest passing limit in MiB (LIMIT) and the unlimited run's RSS (PEAK).
search() {
  local name=$1 low=$LOW_MIB high=$HIGH_MIB mid
  attempt "$name" "$high" || { echo "$name fails even under $HIGH_MIB MiB: $(tail -n 3 "$RUN/err")" >&2; exit 1; }
  PEAK=$RSS
  while ((high - low > STEP_MIB)); do
    mid=$(((low + high) / 2 / STEP_MIB * STEP_MIB))
    ((mid > low)) || mid=$((low + STEP_MIB))
    if attempt "$name" "$mid"; then high=$mid; else low=$mid; fi
  done
  ((low > LOW_MIB)) || log "$name passed at every limit tried; $LOW_MIB MiB itself was not tried (lower LOW_MIB to look further)"
  LIMIT=$high
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
range() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "–" hi }'; }

declare -A LIMITS PEAKS
for ((r = 1; r <= ROUNDS; r++)); do
  for name in $PATHS; do
    log "round $r: $name"
    search "$name"
    LIMITS[$name]+="$LIMIT " && PEAKS[$name]+="$PEAK "
    log "round $r: $name needs $LIMIT MiB (peak RSS $PEAK MiB unlimited)"
  done
done

printf '\nCold fetch + sync of the 20k-file repository under a cgroup v1 memory limit — %s, %s, %d cores, load %s; %d round(s), resolution %d MiB\n\n' \
  "$(date -u +%FT%RZ)" "$(uname -r)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$ROUNDS" "$STEP_MIB"
printf '| path | smallest limit (MiB) | range | × ours | peak RSS unlimited (MiB) |\n|---|---:|---:|---:|---:|\n'
ours=$(median ${LIMITS[ours]:-${LIMITS[${PATHS%% *}]}})
for name in $PATHS; do
  limit=$(median ${LIMITS[$name]})
  printf '| %s | %s | %s | %.2f× | %s |\n' "$name" "$limit" "$(range ${LIMITS[$name]})" \
    "$(awk -v a="$limit" -v b="$ours" 'BEGIN { print a / b }')" "$(median ${PEAKS[$name]})"
done
