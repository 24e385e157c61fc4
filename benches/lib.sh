# What the benchmark scripts share. Sourced (`. "$(dirname "$0")/lib.sh"`), never run: it moves
# to the repository root and sets ROOT, CARGO_TARGET_DIR (default target/) and DATA
# (target/bench-data/, where generated repositories are cached).
# shellcheck shell=bash

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DATA=$ROOT/target/bench-data

log() { printf '==> %s\n' "$*" >&2; }

# Exports STOKER_KUBE_BIN_DIR (where the test kube-apiserver and etcd are), or stops saying how
# to build them.
need_kube_bins() {
  if [ -z "${STOKER_KUBE_BIN_DIR:-}" ]; then
    STOKER_KUBE_BIN_DIR=$(bash hack/kube.sh bin-dir) || {
      log "kube-apiserver is not built: run hack/kube.sh install first"
      exit 1
    }
    export STOKER_KUBE_BIN_DIR
  fi
}

# Builds the release benchmark binary NAME (package stoker-benches), says how busy the machine
# is, and replaces the shell with it.
exec_release_bench() {
  log "building the release benchmark binary"
  cargo build --release --quiet -p stoker-benches --bin "$1"
  log "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  exec "$CARGO_TARGET_DIR/release/$1"
}

# The 20k-file repository of ../shared/bench/gen-ignition-repo (two commits, 1% churn),
# generated once into $DATA/repo-20000: sets REPO and COMMITS (its two commits, oldest first).
bench_repo_20000() {
  REPO=$DATA/repo-20000
  mkdir -p "$DATA"
  if [ ! -d "$REPO" ]; then
    log "generating the 20k-file repository"
    python3 ../shared/bench/gen-ignition-repo "$REPO" --files 20000 --commits 2 --churn 1 >"$DATA/repo-20000.json"
  fi
  mapfile -t COMMITS < <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["commits"]))' "$DATA/repo-20000.json")
}

# Serves $DATA's repositories over smart HTTP on loopback with the stoker-git-http binary $HTTP,
# logging into the directory $1: sets HTTP_PID and URL (of repo-20000) and writes $1/gs.yaml, a
# GatewaySync of that repository mapping the whole tree. The caller stops $HTTP_PID.
serve_repo_20000() {
  "$HTTP" --root "$DATA" >"$1/http.json" 2>"$1/http.log" &
  HTTP_PID=$!
  for _ in $(seq 100); do [ -s "$1/http.json" ] && break; sleep 0.1; done
  local base
  base=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["url"])' "$1/http.json")
  URL=${base%/}/repo-20000
  log "serving $URL"
  cat >"$1/gs.yaml" <<YAML
apiVersion: stoker.io/v1alpha1
kind: GatewaySync
metadata: {name: bench}
spec:
  git: {repo: "$URL", ref: main}
  sync:
    profiles:
      default:
        mappings: [{source: ".", destination: "."}]
YAML
}

# For the cgroup memory benchmarks (memory-limit.sh, memory-breakdown.sh), which set RUN and
# CGPREFIX (under CGROOT) first.

# Checks for root and a cgroup v1 memory controller, builds what BENCH and HTTP do not name,
# serves the 20k-file repository (sets COMMIT, its first commit, and URL) and cleans up at exit.
git_memory_setup() {
  [ -w "$CGROOT" ] || { echo "needs root and a cgroup v1 memory controller at $CGROOT" >&2; exit 1; }
  bash hack/bench-deps.sh >&2
  if [ -z "${BENCH:-}" ] || [ -z "${HTTP:-}" ]; then
    cargo build --release --quiet -p stoker-benches --bin stoker-bench-git-memory -p stoker-testkit --bin stoker-git-http
  fi
  BENCH=${BENCH:-$CARGO_TARGET_DIR/release/stoker-bench-git-memory}
  HTTP=${HTTP:-$CARGO_TARGET_DIR/release/stoker-git-http}
  bench_repo_20000
  COMMIT=${COMMITS[0]}
  trap cgroup_cleanup EXIT
  rm -rf "$RUN" && mkdir -p "$RUN"
  serve_repo_20000 "$RUN"
}

# Stops the server and removes every cgroup $CGPREFIX-* this run made (after an interruption,
# once the processes in it have gone), then $RUN. For `trap cgroup_cleanup EXIT`.
cgroup_cleanup() {
  local dir pids
  for dir in "$CGPREFIX"-*; do
    [ -d "$dir" ] || continue
    for _ in $(seq 50); do
      pids=$(cat "$dir/cgroup.procs" 2>/dev/null || true)
      [ -z "$pids" ] && break
      kill $pids 2>/dev/null || true
      sleep 0.2
    done
    rmdir "$dir" 2>/dev/null || echo "could not remove $dir" >&2
  done
  [ -n "${HTTP_PID:-}" ] && kill "$HTTP_PID" 2>/dev/null || true
  rm -rf "$RUN"
}

# The cold fetch + sync of path $1 (ours, gix: stoker-bench-git-memory; git: git clone) into the
# empty directory $RUN/work.
git_memory_command() {
  case $1 in
    ours | gix) echo "$BENCH --path $1 sync --config $RUN/gs.yaml --cache-dir $RUN/work/cache --dest $RUN/work/dest --ref $COMMIT --output json" ;;
    git) echo "git clone -q --depth 1 $URL $RUN/work/clone" ;;
  esac
}
