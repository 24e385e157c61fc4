# shellcheck shell=bash
# Shared by the hack/ scripts (sourced after `cd` to the repository root). Each script sets
# `script` (its name, for messages) before sourcing.

log() { echo "${script:-hack}: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# `use_go WHAT`: puts the Go toolchain on PATH (the official distribution's place when it is
# installed but not on PATH) or dies saying WHAT needs it.
use_go() {
  if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
    PATH="/usr/local/go/bin:$PATH"
  fi
  command -v go >/dev/null 2>&1 || die "Go is needed to build $1 (Go on PATH)"
}

# `stop_pidfile STATE_DIR`: stops the process whose pid `start` wrote to STATE_DIR/pid (TERM,
# then up to 10 s for it to exit) and removes its pid and env files.
stop_pidfile() {
  local state_dir=$1 pid
  if [ ! -f "$state_dir/pid" ]; then
    log "not running"
    return 0
  fi
  pid=$(cat "$state_dir/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 200); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
  fi
  rm -f "$state_dir/pid" "$state_dir/env"
  log "stopped"
}
