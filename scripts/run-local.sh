#!/usr/bin/env bash
# `make run`: the whole pipeline on the local broker, a demo receiver that verifies every
# signature, and demo data. Ctrl-C stops everything cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${HOOKLINE_LOCAL_PORT:-9092}"
RUN_DIR="${HOOKLINE_RUN_DIR:-$PWD/.run}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}/debug"
LOGS="$RUN_DIR/logs"
mkdir -p "$LOGS"

scripts/broker.sh install
echo "run: building Hookline"
cargo build --workspace --bins --quiet

export HOOKLINE_BROKERS="127.0.0.1:$PORT"
export HOOKLINE_KAFKA_SESSION_TIMEOUT_MS=6000
# Fetch waits for the local broker, which holds each fetch for its whole wait.
export HOOKLINE_BROKER_PROFILE=local
export HOOKLINE_SIGNING_KEY="$RUN_DIR/signing-key.pem"
# Local run only: the demo receiver is on loopback and speaks plain http.
export HOOKLINE_ALLOW_NETWORKS="127.0.0.0/8,::1/128"
export HOOKLINE_REQUIRE_HTTPS=false
export HOOKLINE_ADMIN_ADDR="127.0.0.1:9400"
export HOOKLINE_STATE_DIR="$RUN_DIR/state"

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "run: stopping"
  # Stages first (they commit what they processed), the broker last.
  local broker="${pids[0]:-}"
  for pid in "${pids[@]:1}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:1}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$broker" ]; then kill -TERM "$broker" 2>/dev/null || true; wait "$broker" 2>/dev/null || true; fi
  echo "run: stopped (logs in $LOGS)"
}
trap stop INT TERM EXIT

wait_port() {
  local port=$1 what=$2
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "run: $what did not come up on port $port; see $LOGS" >&2
  exit 1
}

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "run: port $PORT is in use; stop what uses it or set HOOKLINE_LOCAL_PORT" >&2
  exit 1
fi
scripts/broker.sh start "$RUN_DIR/broker" "$PORT" >"$LOGS/broker.log" 2>&1 &
pids+=($!)
wait_port "$PORT" "the broker"
echo "run: broker up on 127.0.0.1:$PORT (data in $RUN_DIR/broker)"

"$TARGET/hookline" topics create --partitions 3

"$TARGET/hookline-admin" >"$LOGS/admin.log" 2>&1 &
pids+=($!)
wait_port 9400 "the admin API"
"$TARGET/hookline-profiles" >"$LOGS/profiles.log" 2>&1 &
pids+=($!)
"$TARGET/hookline-tracking" >"$LOGS/tracking.log" 2>&1 &
pids+=($!)
"$TARGET/hookline-sender" >"$LOGS/sender.log" 2>&1 &
pids+=($!)
"$TARGET/hookline" receiver --listen 127.0.0.1:8080 --admin-url http://127.0.0.1:9400 >"$LOGS/receiver.log" 2>&1 &
pids+=($!)
wait_port 8080 "the demo receiver"
echo "run: stages up — metrics on :9461 (tracking) :9462 (profiles) :9463 (sender) :9464 (admin); admin API on :9400"

"$TARGET/hookline" demo seed --receiver-url http://127.0.0.1:8080/webhook
# A token for the demo account, so the admin API and `hookline subscriptions ...` work at once.
# Local runs only: a real deployment's operator creates tokens and hands them out.
DEMO_TOKEN=$("$TARGET/hookline" tokens create --account 1001 --label "make run demo" 2>/dev/null)
(umask 077; echo "$DEMO_TOKEN" >"$RUN_DIR/demo-token")
echo "run: an API token for demo account 1001 is in $RUN_DIR/demo-token; try:"
echo "run:   HOOKLINE_TOKEN=\$(cat $RUN_DIR/demo-token) target/debug/hookline subscriptions list"
echo "run: signed POSTs arriving at the demo receiver (each signature verified against GET /v1/keys):"
echo "run: produce more with: target/debug/hookline produce tracking FILE.jsonl   (Ctrl-C stops everything)"
tail -n +1 -f "$LOGS/receiver.log" &
pids+=($!)
wait "${pids[0]}"
