#!/usr/bin/env bash
# Supply-chain check with cargo-deny (deny.toml): licenses, bans and sources always; advisories
# where the RustSec database can be had. Exits non-zero on any violation.
#
#   scripts/ci-deny.sh                               licenses, bans, sources
#   HOOKLINE_ADVISORY_DB=/path/to/advisory-db scripts/ci-deny.sh
#                                                    ... and advisories against that copy
#   HOOKLINE_ADVISORY_DB=fetch scripts/ci-deny.sh    ... and advisories, fetching the database
#
# The database is a git repository on GitHub, out of reach of this project's machines and CI
# (package registries only; docs/security.md, "Supply chain"). A copy is a git clone of
# https://github.com/rustsec/advisory-db made wherever it can be reached.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deny --version >/dev/null 2>&1; then
  echo "deny: installing cargo-deny from crates.io"
  # A temporary build directory, removed afterwards, not the workspace's target directory.
  env -u CARGO_TARGET_DIR cargo install --locked cargo-deny@0.20.2
fi

# --hide-inclusion-graph: a finding names the crate and version; `cargo tree -i <crate>` tells
# where it comes from.
check=(cargo deny --locked check --hide-inclusion-graph --show-stats)

status=0
"${check[@]}" licenses bans sources || status=$?

db="${HOOKLINE_ADVISORY_DB:-}"
if [ -z "$db" ]; then
  echo "deny: advisories skipped: no RustSec database here (set HOOKLINE_ADVISORY_DB to a copy, or to 'fetch')"
elif [ "$db" = fetch ]; then
  "${check[@]}" advisories || status=$?
else
  [ -d "$db/crates" ] || {
    echo "deny: HOOKLINE_ADVISORY_DB=$db is not a copy of the RustSec database (no crates/)" >&2
    exit 2
  }
  # cargo-deny reads the database from <db-path>/<last URL segment>-<xxhash64 of the URL>
  # (cargo-deny 0.20: advisory-db-3157b0e258782691 for deny.toml's URL). A scratch db-path
  # points that name at the given copy, and the check stays offline. Should a later cargo-deny
  # name it otherwise, the check fails saying which directory it looked for.
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  ln -s "$(realpath "$db")" "$scratch/advisory-db-3157b0e258782691"
  sed "s|^db-path = .*|db-path = \"$scratch\"|" deny.toml >"$scratch/deny.toml"
  echo "deny: advisories against $db ($(git -C "$db" log -1 --format='%h of %cs' 2>/dev/null || echo 'not a git checkout'))"
  cargo deny --locked --offline --config "$scratch/deny.toml" check --hide-inclusion-graph \
    --show-stats advisories || status=$?
fi

if [ "$status" -ne 0 ]; then
  echo "deny: FAILED (see deny.toml for what is allowed and why)" >&2
fi
exit "$status"
