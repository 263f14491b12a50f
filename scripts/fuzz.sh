#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a bounded time each and prints one line per target.
#
#   scripts/fuzz.sh                      every target, FUZZ_SECONDS each (default 30)
#   scripts/fuzz.sh condition payload    only these
#   FUZZ_UPDATE_CORPUS=1 scripts/fuzz.sh fold what the run found into fuzz/corpus (minimized)
#
# Only the stable toolchain is needed: RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's nightly
# flags. cargo-fuzz is installed from crates.io when missing. Builds go to FUZZ_TARGET_DIR
# (default ~/.cache/hookline/fuzz-target), never the workspace's target directory.
#
# The kept inputs (fuzz/seeds, fuzz/corpus) are read, not written: new inputs go to a scratch
# corpus under the target directory, which later runs on the same machine build on. A crash
# leaves its input in fuzz/artifacts/<target>/ and makes the script exit 1 after the other
# targets ran; fuzz/README.md says how to turn it into a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || {
  echo "fuzz: FUZZ_SECONDS must be a positive number of seconds, not '$seconds'" >&2
  exit 2
}
export RUSTC_BOOTSTRAP=1
CARGO_TARGET_DIR="$(realpath -m "${FUZZ_TARGET_DIR:-$HOME/.cache/hookline/fuzz-target}")"
export CARGO_TARGET_DIR

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz from crates.io"
  cargo install --locked cargo-fuzz
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

echo "fuzz: building ${#targets[@]} targets (release, address sanitizer)"
cargo fuzz build

scratch="$CARGO_TARGET_DIR/fuzz-corpus"
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "fuzz/corpus/$t"
  log="$scratch/$t.log"
  status=0
  # -timeout: one input taking 10 s is a hang worth reporting; -rss_limit_mb bounds memory.
  cargo fuzz run "$t" "$scratch/$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  execs=$(awk '/^stat::number_of_executed_units/ {print $NF}' "$log" | tail -1)
  if [ "$status" -eq 0 ]; then
    echo "fuzz: $t: ${execs:-?} runs in ${seconds}s, no crash"
  else
    failed+=("$t")
    echo "fuzz: $t: FAILED after ${execs:-?} runs (exit $status); the end of $log:"
    tail -n 40 "$log" | sed 's/^/    /'
    ls -t "fuzz/artifacts/$t" 2>/dev/null | head -3 | sed "s|^|    reproducer: fuzz/artifacts/$t/|"
  fi
  if [ "${FUZZ_UPDATE_CORPUS:-0}" = 1 ]; then
    # Only inputs that add coverage beyond the kept corpus join it.
    cargo fuzz run "$t" "fuzz/corpus/$t" "$scratch/$t" -- -merge=1 >"$log.merge" 2>&1
    echo "fuzz: $t: fuzz/corpus/$t holds $(ls "fuzz/corpus/$t" | wc -l) inputs"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s each without a crash"
