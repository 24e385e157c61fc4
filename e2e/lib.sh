# shellcheck shell=bash
# Helpers of e2e/run.sh: cases, waiting, kubectl and helm from the project's own builds.

passed=()
failed=()

kubectl() { "$kube_bin/kubectl" "$@"; }
helm() { "$helm_bin/helm" "$@"; }

# fail MESSAGE: ends the current case (each runs in a subshell) as failed.
fail() {
  echo "    $*" >&2
  exit 1
}
# note MESSAGE: what a passing case saw, for the log.
note() { echo "    $*" >&2; }

# run_case NAME FUNCTION: runs FUNCTION in a subshell; a case that fails does not stop the suite.
run_case() {
  local name=$1 fn=$2 start=$SECONDS
  echo "--- $name" >&2
  if ("$fn"); then
    echo "ok   $name ($((SECONDS - start)) s)" >&2
    passed+=("$name")
  else
    echo "FAIL $name ($((SECONDS - start)) s)" >&2
    failed+=("$name")
  fi
}

summary() {
  echo "e2e: ${#passed[@]} passed, ${#failed[@]} failed${failed:+: ${failed[*]}}" >&2
  [ "${#failed[@]}" -eq 0 ]
}

# until_ok SECONDS COMMAND...: runs COMMAND every second (every $poll seconds when set) until it
# succeeds (printing its output) or SECONDS pass (status 1).
until_ok() {
  local deadline=$((SECONDS + $1))
  shift
  while :; do
    if "$@"; then return 0; fi
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep "${poll:-1}"
  done
}

pod_ready() {
  [ "$(kubectl -n "$1" get pod "$2" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

# pod_summary NAMESPACE POD: phase, container states and the last events, for failure messages.
pod_summary() {
  kubectl -n "$1" get pod "$2" -o wide 2>&1 | tail -1
  kubectl -n "$1" get pod "$2" -o 'jsonpath={range .status.initContainerStatuses[*]}{.name}: {.state}{"\n"}{end}{range .status.containerStatuses[*]}{.name}: {.state}{"\n"}{end}' 2>&1
  kubectl -n "$1" get events --field-selector "involvedObject.name=$2" 2>&1 | tail -5
}
