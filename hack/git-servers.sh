#!/usr/bin/env bash
# Git servers for Stoker's tests, all on loopback (see stoker-testkit/README.md).
#
#   hack/git-servers.sh install   install git and openssh-server if missing (idempotent; root or sudo)
#   hack/git-servers.sh start     start smart HTTP (open + token), git daemon and sshd over one root
#                                 of bare repositories; prints URLs and writes an env file that
#                                 `cargo test` picks up when sourced (STOKER_TEST_GIT_*)
#   hack/git-servers.sh stop      stop what `start` started
#   hack/git-servers.sh env       print the env file of the running servers
#
# Tests do not need `start`: stoker-testkit starts its own servers once per test binary. `start`
# is for poking at the servers by hand, or for sharing one set between many test binaries:
#   hack/git-servers.sh start && . target/git-servers/env && cargo test
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC2034 # read by hack/lib/common.sh
script=git-servers.sh
# shellcheck source=hack/lib/common.sh
. hack/lib/common.sh

state_dir="${STOKER_GIT_SERVERS_DIR:-$PWD/target/git-servers}"
# Binaries the servers need; git-http-backend and git-daemon ship with Debian's git.
sshd_bin=/usr/sbin/sshd

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "git-servers.sh: need root (or sudo) to run: $*" >&2
    exit 1
  fi
}

missing_packages() {
  local missing=()
  command -v git >/dev/null 2>&1 || missing+=(git)
  [ -x "$(git --exec-path 2>/dev/null)/git-http-backend" ] || missing+=(git)
  [ -x "$sshd_bin" ] || missing+=(openssh-server)
  command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
  command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl) # the HTTPS test front makes its CA
  printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d'
}

install() {
  local missing
  missing=$(missing_packages)
  if [ -z "$missing" ]; then
    echo "git-servers.sh: git and openssh-server already installed"
    return 0
  fi
  echo "git-servers.sh: installing: $(echo "$missing" | tr '\n' ' ')"
  # Package scripts must not start a system sshd (on port 22, as a service): a policy-rc.d that
  # refuses every start (exit 101) makes invoke-rc.d skip it, and without systemd running
  # deb-systemd-invoke does nothing. Only remove the policy file if we created it.
  local policy=/usr/sbin/policy-rc.d created_policy=
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    created_policy=1
  fi
  # shellcheck disable=SC2064
  trap "[ -n '$created_policy' ] && as_root rm -f '$policy'" EXIT
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  # shellcheck disable=SC2086
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing
  if [ -n "$created_policy" ]; then
    as_root rm -f "$policy"
  fi
  trap - EXIT
  missing=$(missing_packages)
  if [ -n "$missing" ]; then
    echo "git-servers.sh: still missing after install: $missing" >&2
    exit 1
  fi
  # sshd's privilege separation directory (normally made by the service unit we never start).
  as_root mkdir -p /run/sshd
  as_root chmod 755 /run/sshd
  echo "git-servers.sh: installed; git $(git --version | awk '{print $3}'), $("$sshd_bin" -V 2>&1 | head -n1)"
}

start() {
  if [ -f "$state_dir/pid" ] && kill -0 "$(cat "$state_dir/pid")" 2>/dev/null; then
    echo "git-servers.sh: already running (pid $(cat "$state_dir/pid"))"
    cat "$state_dir/env"
    return 0
  fi
  if [ -n "$(missing_packages)" ]; then
    echo "git-servers.sh: run 'hack/git-servers.sh install' first" >&2
    exit 1
  fi
  mkdir -p "$state_dir"
  rm -f "$state_dir/env" "$state_dir/pid"
  cargo build -q -p stoker-testkit --bin stoker-git-servers
  local bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/stoker-git-servers"
  # setsid: the servers outlive this script's terminal; `stop` ends them. The binary writes the
  # env file once every server accepts connections, and takes its servers down when it dies.
  setsid "$bin" --root "$state_dir/repos" --state "$state_dir" --env-file "$state_dir/env" \
    </dev/null >"$state_dir/log" 2>&1 &
  echo $! >"$state_dir/pid"
  for _ in $(seq 1 300); do
    [ -s "$state_dir/env" ] && break
    if ! kill -0 "$(cat "$state_dir/pid")" 2>/dev/null; then
      echo "git-servers.sh: servers failed to start:" >&2
      cat "$state_dir/log" >&2
      exit 1
    fi
    sleep 0.1
  done
  if [ ! -s "$state_dir/env" ]; then
    echo "git-servers.sh: servers did not come up in 30 s; log: $state_dir/log" >&2
    exit 1
  fi
  cat "$state_dir/env"
  echo "# servers running (pid $(cat "$state_dir/pid")); to use them: . $state_dir/env"
}

stop() { stop_pidfile "$state_dir"; }

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  env) cat "$state_dir/env" ;;
  *)
    echo "usage: $0 install|start|stop|env" >&2
    exit 2
    ;;
esac
