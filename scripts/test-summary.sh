#!/usr/bin/env bash
# Sums cargo's "test result:" lines into one closing line, "tests: N passed, N failed", so the
# last line of `make test` tells the whole run (cargo's own last line is often a doc-test
# binary with 0 tests).
set -euo pipefail
log="${1:?usage: test-summary.sh LOG}"
awk '/^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($(i+1) ~ /^passed;?/) passed += $i
         if ($(i+1) ~ /^failed;?/) failed += $i
         if ($(i+1) ~ /^ignored;?/) ignored += $i
       }
     }
     END { printf "tests: %d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$log"
