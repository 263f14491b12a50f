#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a bounded time each and prints one line per target.
#
#   scripts/fuzz.sh                      every target, FUZZ_SECONDS each (default 30)
#   scripts/fuzz.sh condition payload    only these
#   FUZZ_UPDATE_CORPUS=1 scripts/fuzz.sh and rewrite fuzz/corpus from what runs found (minimized)
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
  # A temporary build directory, removed afterwards, not the fuzz target directory.
  env -u CARGO_TARGET_DIR cargo install --locked cargo-fuzz@0.13.2
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

echo "fuzz: building ${#targets[@]} targets (release, address sanitizer)"
cargo fuzz build

scratch="$CARGO_TARGET_DIR/fuzz-corpus"

# Rewrites fuzz/corpus/<target> as the fewest inputs that reach the edges the seeds and
# regressions do not (libFuzzer's set-cover merge over edges, not hit counts), drawn from the
# kept corpus and this machine's scratch corpus: a few dozen small files, not thousands.
update_corpus() {
  local t="$1" merged f
  merged=$(mktemp -d)
  cp "fuzz/seeds/$t"/* "$merged/"
  [ -d "fuzz/regressions/$t" ] && cp "fuzz/regressions/$t"/* "$merged/"
  cargo fuzz run "$t" "$merged" "fuzz/corpus/$t" "$scratch/$t" -- \
    -set_cover_merge=1 -use_counters=0 >"$scratch/$t.merge.log" 2>&1
  rm -f "fuzz/corpus/$t"/*
  for f in "$merged"/*; do
    f=$(basename "$f")
    [ -e "fuzz/seeds/$t/$f" ] || [ -e "fuzz/regressions/$t/$f" ] || cp "$merged/$f" "fuzz/corpus/$t/"
  done
  rm -rf "$merged"
  echo "fuzz: $t: fuzz/corpus/$t holds $(ls "fuzz/corpus/$t" | wc -l) inputs"
}
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
    update_corpus "$t"
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s each without a crash"
