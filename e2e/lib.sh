# shellcheck shell=bash
# Helpers of e2e/run.sh and e2e/push-latency.sh: cases, waiting, kubectl and helm from the
# project's own builds, the Git server, the chart and the manifests as the suite uses them.

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

# cluster_env: kubectl and helm of hack/kube.sh and hack/helm.sh, the cluster of hack/cluster.sh,
# the images' tag.
cluster_env() {
  kube_bin=$(bash hack/kube.sh bin-dir)
  helm_bin=$(bash hack/helm.sh install --print-bin-dir)
  export KUBECONFIG="$PWD/target/cluster/kubeconfig"
  version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
}

# kill_container ID: SIGKILL to a container's process, through the node's containerd
# (hack/cluster.sh), as the kernel's OOM killer or a crash would end it.
kill_container() {
  ctr --address "$PWD/target/cluster/node/containerd.sock" -n k8s.io tasks kill --signal SIGKILL "$1" >/dev/null
}

# install_chart [HELM ARGS...]: the chart with the images of hack/images.sh, as a user on kind
# would install it with images loaded into the node (README, "Try it on Kubernetes").
install_chart() {
  helm upgrade --install stoker charts/stoker -n stoker-system --create-namespace --wait --timeout 180s \
    --set image.repository=localhost/stoker-operator --set image.tag="$version" \
    --set agentImage.repository=localhost/stoker-agent --set agentImage.tag="$version" \
    --set image.pullPolicy=Never --set agentImage.pullPolicy=Never "$@"
}

# gatewaysync NAMESPACE [polling-interval DURATION | polling-off]: examples/gatewaysync.yaml
# following the suite's Git server, in NAMESPACE.
gatewaysync() {
  local ns=$1 polling=
  case "${2:-}" in
    polling-interval) polling="  polling:\n    interval: $3\n" ;;
    polling-off) polling="  polling:\n    enabled: false\n" ;;
  esac
  sed -e "s#https://git.example.invalid/controls/plant-gateways.git#$git_url#" \
    -e "s#^  namespace: ignition\$#  namespace: $ns#" -e "s#^  gateway:\$#$polling  gateway:#" \
    examples/gatewaysync.yaml
}

# gateways NAMESPACE REPLICAS: e2e/gateway.yaml (the StatefulSet site1 of the simulator) in
# NAMESPACE.
gateways() {
  sed -e "s#IMAGE#localhost/stoker-gateway-sim:$version#" -e "s#^  namespace: ignition\$#  namespace: $1#" \
    -e "s#^  replicas: 1\$#  replicas: $2#" e2e/gateway.yaml
}

# The repository the GatewaySync follows: examples/repo as commit 1 of `main`, served by
# `git daemon` on the host's end of the node's veth (pods reach 10.87.0.1). The caller kills
# $git_daemon_pid.
git_server() {
  git_root="$PWD/target/e2e/git"
  rm -rf "$git_root" "$PWD/target/e2e/work"
  mkdir -p "$git_root"
  git init -q --bare -b main "$git_root/plant.git"
  git -C "$git_root/plant.git" config daemon.receivepack false
  local work="$PWD/target/e2e/work"
  git init -q -b main "$work"
  cp -r examples/repo/. "$work/"
  git -C "$work" add -A
  git -C "$work" -c user.name=e2e -c user.email=e2e@invalid commit -q -m "examples/repo"
  git -C "$work" push -q "$git_root/plant.git" main
  git daemon --export-all --base-path="$git_root" --listen=10.87.0.1 --port=9418 \
    --reuseaddr >"$PWD/target/e2e/git-daemon.log" 2>&1 &
  git_daemon_pid=$!
  git_url=git://10.87.0.1:9418/plant.git
}

# commit_file PATH CONTENT: a new commit on main changing one file.
commit_file() { commit_file_to main "$@"; }

# commit_file_to BRANCH PATH CONTENT: the same on BRANCH, which is checked out.
commit_file_to() {
  local work="$PWD/target/e2e/work"
  mkdir -p "$(dirname "$work/$2")"
  printf '%s' "$3" >"$work/$2"
  git -C "$work" add -A
  git -C "$work" -c user.name=e2e -c user.email=e2e@invalid commit -q -m "change $2"
  git -C "$work" push -q "$git_root/plant.git" "$1"
  git -C "$work" rev-parse HEAD
}

# commit_on_branch BRANCH PATH CONTENT: a new commit on BRANCH (made from main if new) changing
# one file.
commit_on_branch() {
  local work="$PWD/target/e2e/work" commit
  git -C "$work" checkout -q "$1" 2>/dev/null || git -C "$work" checkout -q -b "$1"
  commit=$(commit_file_to "$1" "$2" "$3")
  git -C "$work" checkout -q main
  echo "$commit"
}


# push_payload BRANCH BEFORE AFTER: GitHub's push event for one commit on BRANCH of the suite's
# repository changing shared/versions.json.
push_payload() {
  jq -cn --arg ref "refs/heads/$1" --arg before "$2" --arg after "$3" --arg url "$git_url" '{
    ref: $ref, before: $before, after: $after, created: false, forced: false,
    commits: [{id: $after, added: [], removed: [], modified: ["shared/versions.json"]}],
    total_commits: 1,
    repository: {clone_url: $url, default_branch: "main"}
  }'
}

# post_push IP BODY DELIVERY: POSTs BODY to the receiver at IP:9444 as GitHub would, signed with
# $receiver_secret; prints the answer.
post_push() {
  local sig
  sig=$(printf %s "$2" | openssl dgst -sha256 -hmac "$receiver_secret" -r | cut -d' ' -f1)
  curl -fsS -X POST "http://$1:9444/webhook/push" -H 'Content-Type: application/json' \
    -H 'X-GitHub-Event: push' -H "X-GitHub-Delivery: $3" \
    -H "X-Hub-Signature-256: sha256=$sig" --data-binary "$2"
}

# receiver_ip: the pod IP of a running operator replica (every replica serves the receiver; the
# host reaches pod IPs).
receiver_ip() {
  kubectl -n stoker-system get pods -l app.kubernetes.io/component=operator \
    --field-selector status.phase=Running -o 'jsonpath={.items[0].status.podIP}'
}
