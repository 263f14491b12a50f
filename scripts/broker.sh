#!/usr/bin/env bash
# The local Kafka-compatible broker (Tansu) for `make run` and the tests.
#
#   scripts/broker.sh install          build Tansu once per machine into the cache (15–20 min on 2 cores)
#   scripts/broker.sh path             print the binary's path
#   scripts/broker.sh start DIR PORT   start it on 127.0.0.1:PORT with SQLite storage in DIR
set -euo pipefail

TANSU_VERSION=0.6.0
CACHE="${HOOKLINE_CACHE:-$HOME/.cache/hookline}"
ROOT="$CACHE/tansu-$TANSU_VERSION"
BIN="${HOOKLINE_TANSU_BIN:-$ROOT/bin/tansu}"

case "${1:-}" in
  install)
    if [ -x "$BIN" ]; then
      echo "broker: Tansu $TANSU_VERSION is installed at $BIN"
      exit 0
    fi
    mkdir -p "$CACHE"
    echo "broker: building Tansu $TANSU_VERSION from crates.io into $ROOT"
    echo "broker: this happens once per machine and takes 15–20 minutes on 2 cores; progress follows"
    # --locked: the versions Tansu was released with. Features: SQLite storage (libsql) and its
    # dynamic store. Storage `memory://` is not used: it reports wrong high watermarks.
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql --root "$ROOT"
    echo "broker: installed $BIN"
    ;;
  path)
    echo "$BIN"
    ;;
  start)
    dir="${2:?usage: broker.sh start DIR PORT}"
    port="${3:?usage: broker.sh start DIR PORT}"
    [ -x "$BIN" ] || { echo "broker: not installed; run 'make broker'" >&2; exit 1; }
    mkdir -p "$dir/data"
    cd "$dir"
    # The SQLite path is relative to the working directory, which must exist.
    exec "$BIN" broker \
      --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine "sqlite://data/tansu.db"
    ;;
  *)
    echo "usage: $0 install | path | start DIR PORT" >&2
    exit 2
    ;;
esac
