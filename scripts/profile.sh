#!/usr/bin/env bash
# A CPU profile of the pipeline's stages at their peak, as flame graphs (SVG).
#
#   scripts/profile.sh [OUT_DIR]     default OUT_DIR: docs/profile
#
# Runs `hookline-bench` (release build; its pipeline section starts the stages as processes on
# the local broker), waits for its 16× burst, and records each stage with `perf` (Debian
# `linux-perf`) for PROFILE_SECONDS (default 15) while the burst is delivered. Folds the stacks
# with `inferno` (`cargo install inferno`) into OUT_DIR/<stage>.svg and prints the top frames.
# Needs perf_event access (root, or kernel.perf_event_paranoid <= 1).
set -euo pipefail

OUT="${1:-docs/profile}"
SECONDS_TO_RECORD="${PROFILE_SECONDS:-15}"
TARGET="${CARGO_TARGET_DIR:-target}"
BENCH="$TARGET/release/hookline-bench"
command -v perf >/dev/null || { echo "profile: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
command -v inferno-flamegraph >/dev/null || { echo "profile: inferno is missing (cargo install inferno)" >&2; exit 1; }
[ -x "$BENCH" ] || { echo "profile: $BENCH is missing; run cargo build --release --workspace --bins" >&2; exit 1; }

mkdir -p "$OUT"
work=$(mktemp -d)
# The bench runs in a session of its own, so that stopping it stops its broker and stages too
# (a SIGTERM to the bench alone would leave them running).
trap 'rm -rf "$work"; [ -n "${bench_pid:-}" ] && kill -TERM -- "-$bench_pid" 2>/dev/null || true' EXIT
setsid "$BENCH" > "$work/bench.out" 2> "$work/bench.err" &
bench_pid=$!
echo "profile: waiting for the 16x burst (about 2 minutes)"
until grep -q "burst of 32000" "$work/bench.err" 2>/dev/null; do
  kill -0 "$bench_pid" 2>/dev/null || { cat "$work/bench.err" >&2; echo "profile: the bench stopped early" >&2; exit 1; }
  sleep 1
done
sleep 2
pids=()
for stage in hookline-tracking hookline-sender hookline-profiles; do
  pid=$(pgrep -n -f "release/$stage$" || true)
  [ -n "$pid" ] || { echo "profile: $stage is not running" >&2; exit 1; }
  perf record -F 499 --call-graph dwarf,16384 -p "$pid" -o "$work/$stage.data" -- sleep "$SECONDS_TO_RECORD" \
    > "$work/$stage.perf.log" 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
kill -TERM -- "-$bench_pid" 2>/dev/null || true
for stage in hookline-tracking hookline-sender hookline-profiles; do
  perf script -i "$work/$stage.data" 2>/dev/null | inferno-collapse-perf > "$work/$stage.folded"
  inferno-flamegraph --minwidth 1 --title "$stage at the 16x burst of make bench" < "$work/$stage.folded" > "$OUT/$stage.svg"
  [ -z "${PROFILE_KEEP_FOLDED:-}" ] || cp "$work/$stage.folded" "$OUT/$stage.folded"
  echo "== $stage: $OUT/$stage.svg"
done
