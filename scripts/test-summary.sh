#!/usr/bin/env bash
# Sums cargo's "test result:" lines into one closing line, so the last line of `make test` tells
# the whole run (cargo's own last line is often a doc-test binary with 0 tests):
#
#   tests: N passed, N failed, N skipped in whole or part (a runtime is missing), N ignored
#
# Two kinds of "not run" are told apart and named, each on a line of its own above that one:
# - skipped: a test that found a runtime missing (php, node, python3 with cryptography) and
#   returned early; libtest counts it as passed, so it is taken off the passed count here. Such
#   a test writes `SKIPPED-RUNTIME: <binary>::<test> (<runtime>): <why>` past the capture
#   (`hookline_integration_tests::skip_for_missing_runtime`). CI sets
#   HOOKLINE_REQUIRE_RUNTIMES=1, which turns these skips into failures.
# - ignored: `#[ignore]` tests (child-process helpers, the long chaos run, known defects with
#   their reason), run on purpose only; cargo's "test X ... ignored" lines name them.
set -euo pipefail
log="${1:?usage: test-summary.sh LOG}"
awk '
  # The binary whose output follows: "Running tests/x.rs (target/debug/deps/x-<hash>)".
  /^ *Running / {
    bin = $NF; gsub(/[()]/, "", bin); sub(/.*\//, "", bin); sub(/-[0-9a-f]+$/, "", bin)
  }
  /^ *Doc-tests / { bin = "doc-tests " $2 }
  /^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed;?/) passed += $i
      if ($(i+1) ~ /^failed;?/) failed += $i
    }
  }
  # "test name ... ignored" or "test name ... ignored, reason"
  /^test .* \.\.\. ignored/ {
    name = $2
    if (!(bin "::" name in ignored_seen)) {
      ignored_seen[bin "::" name] = 1
      ignored_list = ignored_list (n_ignored++ ? ", " : "") bin "::" name
    }
  }
  # Anywhere in a line: another test may have printed half a line before it.
  /SKIPPED-RUNTIME: / {
    rest = substr($0, index($0, "SKIPPED-RUNTIME: ") + 17)
    test = rest; sub(/ .*/, "", test)
    runtime = rest; sub(/^[^ ]* \(/, "", runtime); sub(/\).*/, "", runtime)
    if (!(test in skipped_tests)) { skipped_tests[test] = ""; n_skipped++ }
    if (index(skipped_tests[test], runtime) == 0)
      skipped_tests[test] = skipped_tests[test] (skipped_tests[test] == "" ? "" : ", ") runtime
  }
  END {
    if (n_ignored > 0) printf "tests ignored (#[ignore], run on purpose only): %s\n", ignored_list
    if (n_skipped > 0) {
      line = ""
      for (t in skipped_tests) line = line (line == "" ? "" : "; ") t " (no " skipped_tests[t] ")"
      printf "tests skipped for a missing runtime (HOOKLINE_REQUIRE_RUNTIMES=1 fails them): %s\n", line
    }
    printf "tests: %d passed, %d failed, %d skipped in whole or part (a runtime is missing), %d ignored\n",
      passed - n_skipped, failed, n_skipped, n_ignored
  }' "$log"
