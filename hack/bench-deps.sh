#!/usr/bin/env bash
# Installs what benches/compare.sh needs: rsync (the incremental baseline) and GNU time
# (peak RSS). hyperfine is optional and only installed when the distribution has it.
# Idempotent: does nothing when the tools are already there.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

updated=""
apt_install() {
  if ! command -v apt-get >/dev/null; then
    echo "bench-deps: apt-get not found; install $* by hand" >&2
    return 1
  fi
  if [ -z "$updated" ]; then $SUDO apt-get update -qq; updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

command -v rsync >/dev/null || apt_install rsync
[ -x /usr/bin/time ] || apt_install time || echo "bench-deps: no GNU time; peak RSS will be skipped" >&2
# Optional: compare.sh never depends on it.
command -v hyperfine >/dev/null || apt_install hyperfine 2>/dev/null \
  || echo "bench-deps: hyperfine not available (optional)" >&2

command -v rsync >/dev/null
echo "bench-deps: rsync $(rsync --version | head -1 | awk '{print $3}'), time: $([ -x /usr/bin/time ] && echo yes || echo no), hyperfine: $(command -v hyperfine >/dev/null && echo yes || echo no)"
