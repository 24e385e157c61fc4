#!/usr/bin/env bash
# Where the memory of a cold fetch + sync goes, as a cgroup v1 memory controller counts it: the
# companion of memory-limit.sh, which finds the smallest limit each path needs; this one says
# what fills it. Each path (the same three commands as memory-limit.sh: ours, gix, git) runs
# RUNS times (default 3) in a fresh cgroup with no limit, into an empty cache and destination,
# while its memory.stat and memory.kmem.usage_in_bytes are read every SAMPLE_MS (default 20) ms.
# Reported per path, as medians of the runs:
#
#   total     memory.max_usage_in_bytes: everything charged to the cgroup at its peak
#   anon      peak of `rss` (anonymous memory: heap, stacks; what no limit can reclaim)
#   cache     peak of `cache` (page cache of files read and written, incl. mapped files)
#   dirty     peak of `dirty` + `writeback` (written pages not yet on disk: reclaimable only
#             after writeback)
#   mapped    peak of `mapped_file` (page cache mapped into the process: counted in its RSS)
#   kmem      memory.kmem.max_usage_in_bytes (kernel memory: inodes, dentries, page tables,
#             socket buffers)
#
# Sampling can miss a peak shorter than SAMPLE_MS; `total` and `kmem` are the kernel's own
# peaks. Needs root and a cgroup v1 memory controller. BENCH and HTTP may name prebuilt
# stoker-bench-git-memory and stoker-git-http binaries (then nothing is built).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}
SAMPLE_MS=${SAMPLE_MS:-20}
PATHS=${PATHS:-ours gix git}
RUN=$DATA/run-breakdown
CGROOT=/sys/fs/cgroup/memory
CGPREFIX=$CGROOT/stoker-breakdown-$$

git_memory_setup

# measure PATH_NAME: one run; prints "total anon cache dirty mapped kmem" in MiB.
N=0
measure() {
  local cg pid status=0
  N=$((N + 1))
  cg=$CGPREFIX-$N
  mkdir "$cg"
  rm -rf "$RUN/work" && mkdir -p "$RUN/work"
  sync && echo 1 >/proc/sys/vm/drop_caches
  sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg" $(git_memory_command "$1") \
    >"$RUN/out" 2>"$RUN/err" &
  pid=$!
  : >"$RUN/samples"
  while kill -0 "$pid" 2>/dev/null; do
    awk '$1 == "rss" || $1 == "cache" || $1 == "dirty" || $1 == "writeback" || $1 == "mapped_file" { v[$1] = $2 }
      END { print v["rss"], v["cache"], v["dirty"] + v["writeback"], v["mapped_file"] }' \
      "$cg/memory.stat" >>"$RUN/samples" 2>/dev/null || true
    sleep "$(awk -v ms="$SAMPLE_MS" 'BEGIN { print ms / 1000 }')"
  done
  wait "$pid" || status=$?
  [ "$status" -eq 0 ] || { echo "$1 failed (exit $status): $(tail -n 3 "$RUN/err")" >&2; exit 1; }
  awk -v total="$(cat "$cg/memory.max_usage_in_bytes")" -v kmem="$(cat "$cg/memory.kmem.max_usage_in_bytes")" '
    { for (i = 1; i <= 4; i++) if ($i > m[i]) m[i] = $i }
    END { printf "%.1f %.1f %.1f %.1f %.1f %.1f\n", total / 1048576, m[1] / 1048576, m[2] / 1048576,
      m[3] / 1048576, m[4] / 1048576, kmem / 1048576 }' "$RUN/samples"
  # What the run left charged (page cache, inodes) goes with the directory before the cgroup
  # can be removed.
  rm -rf "$RUN/work"
  rmdir "$cg" 2>/dev/null || true
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

declare -A COLS
for name in $PATHS; do
  for ((r = 1; r <= RUNS; r++)); do
    row=$(measure "$name")
    log "$name run $r (MiB: total anon cache dirty mapped kmem): $row"
    read -r -a v <<<"$row"
    for i in 0 1 2 3 4 5; do COLS[$name.$i]+="${v[$i]} "; done
  done
done

printf '\nWhere the memory of a cold fetch + sync of the 20k-file repository goes (cgroup v1, no limit) — %s, %s, %d cores, load %s; median of %d runs, MiB\n\n' \
  "$(date -u +%FT%RZ)" "$(uname -r)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$RUNS"
printf '| path | total (peak) | anon | page cache | dirty + writeback | mapped | kernel (kmem) |\n|---|---:|---:|---:|---:|---:|---:|\n'
for name in $PATHS; do
  printf '| %s |' "$name"
  for i in 0 1 2 3 4 5; do printf ' %s |' "$(median ${COLS[$name.$i]})"; done
  printf '\n'
done
