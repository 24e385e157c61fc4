#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 60). Needs the nightly toolchain;
# installs cargo-fuzz from crates.io when it is missing.
#   ./hack/fuzz.sh 300          # five minutes per target
#   ./hack/fuzz.sh 60 template_render
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cd fuzz
# Extra libFuzzer flags per target. plan_tree syncs real directories (~100 inputs/s), too slow
# for libFuzzer's default length control to grow inputs past a few bytes within minutes.
declare -A extra_flags=(
  [plan_tree]="-len_control=0 -max_len=1024"
)
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
for target in "${targets[@]}"; do
  echo "==> fuzzing $target for ${seconds}s"
  # shellcheck disable=SC2086 # the flags are meant to split into words
  cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 ${extra_flags[$target]:-}
done
