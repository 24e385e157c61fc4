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
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
for target in "${targets[@]}"; do
  echo "==> fuzzing $target for ${seconds}s"
  cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048
done
