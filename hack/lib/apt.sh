# shellcheck shell=bash
# Debian packages for the hack/ scripts (sourced after hack/lib/common.sh).
#
# `apt_ensure PACKAGE:PATH ...` installs every PACKAGE whose PATH (an absolute file, or a command
# looked up on PATH) is missing, in one apt-get run, as root (or through sudo). Package scripts
# are kept from starting services (containerd, sshd …): a policy-rc.d that refuses every start
# makes invoke-rc.d skip them, and without systemd running deb-systemd-invoke does nothing. The
# scripts start what they need themselves, on their own sockets.

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

# Prints the packages of the PACKAGE:PATH pairs whose PATH is missing, one per line.
apt_missing() {
  local pair pkg path
  for pair in "$@"; do
    pkg=${pair%%:*}
    path=${pair#*:}
    case "$path" in
      /*) [ -e "$path" ] || echo "$pkg" ;;
      *) command -v "$path" >/dev/null 2>&1 || echo "$pkg" ;;
    esac
  done | sort -u
}

apt_ensure() {
  local missing
  missing=$(apt_missing "$@")
  [ -z "$missing" ] && return 0
  log "installing Debian packages: $(echo "$missing" | tr '\n' ' ')"
  local policy=/usr/sbin/policy-rc.d created_policy=
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    created_policy=1
  fi
  local rc=0
  {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      # shellcheck disable=SC2086 # one word per package
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing
  } >&2 || rc=$?
  if [ -n "$created_policy" ]; then as_root rm -f "$policy"; fi
  [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc)"
  missing=$(apt_missing "$@")
  [ -z "$missing" ] || die "still missing after apt-get install: $missing"
}
