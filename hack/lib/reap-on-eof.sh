#!/usr/bin/env bash
# reap-on-eof.sh CMD [ARG]...
#
# Runs CMD as a child (in its own process group, stdin from /dev/null) and kills it when this
# script's standard input reaches end-of-file. The caller keeps the write end of a pipe as our
# stdin and never writes to it: when the caller exits for any reason (normal exit with statics
# that are never dropped, panic, SIGKILL), the kernel closes that pipe, we read EOF and the
# server goes down with it. No signal handlers or `unsafe` needed in the caller.
#
# Exits when either happens: stdin EOF (CMD's process group gets SIGTERM, then SIGKILL after
# 5 s; exit status 0) or CMD exiting on its own (exit status is CMD's). SIGTERM, SIGINT and
# SIGHUP to this script stop CMD too. If REAP_ON_EOF_CLEANUP is set, that path is removed
# (rm -rf) once CMD has stopped.
set -u
set -m # background jobs get their own process group, so `kill -- -PID` reaches CMD's children

if [ "$#" -eq 0 ]; then
  echo "usage: reap-on-eof.sh CMD [ARG]..." >&2
  exit 2
fi
cleanup="${REAP_ON_EOF_CLEANUP:-}"
unset REAP_ON_EOF_CLEANUP

exec 3<&0 # the pipe from the caller; background jobs would otherwise get /dev/null

"$@" </dev/null &
child=$!
cat <&3 >/dev/null &
watcher=$!
exec 3<&-

stop_child() {
  kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null
  for _ in $(seq 1 100); do
    kill -0 "$child" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL -- "-$child" 2>/dev/null || kill -KILL "$child" 2>/dev/null
  wait "$child" 2>/dev/null
}

finish() {
  kill "$watcher" 2>/dev/null
  if [ -n "$cleanup" ]; then
    rm -rf -- "$cleanup"
  fi
  exit "$1"
}

trap 'stop_child; finish 143' TERM INT HUP

# Wait for whichever finishes first: the server, or the watcher (stdin hit EOF).
wait -n "$child" "$watcher"
if kill -0 "$child" 2>/dev/null; then
  # stdin EOF: the caller is gone (or closed the pipe to ask for a shutdown).
  stop_child
  finish 0
fi
wait "$child"
finish "$?"
