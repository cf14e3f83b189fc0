#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each one briefly: the CI smoke run.
#
# Usage: scripts/fuzz-smoke.sh [seconds per target]   (default 15; FUZZ_SANITIZER=address for ASan)
# The longer run is described in DEVELOPERS.md. A target that finds something stops with the
# input in fuzz/artifacts/<target>/ and this script fails.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_PER_TARGET=${1:-15}
# Only the stable toolchain is installed; cargo-fuzz needs a few -Z flags, which this allows.
export RUSTC_BOOTSTRAP=1
# Tessera has no unsafe code, so the address sanitizer adds little but a slower build and run.
SANITIZER=${FUZZ_SANITIZER:-none}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo fuzz build -s "$SANITIZER"
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
for target in $(cargo fuzz list); do
  mkdir -p "corpus/$target"
  log="$LOGS/$target.log"
  if ! cargo fuzz run -s "$SANITIZER" "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  echo "$target: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') runs in ${SECONDS_PER_TARGET}s, $(grep -E '^stat::new_units_added' "$log" | awk '{print $2}') new inputs"
done
