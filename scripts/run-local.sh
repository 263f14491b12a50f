#!/usr/bin/env bash
# `make run`: the whole pipeline on the local broker, a demo receiver that verifies every
# signature, and demo data. Ctrl-C (SIGINT) or SIGTERM stops everything cleanly and exits 0.
#
# Everything it starts listens on 127.0.0.1. Its folder and ports (README, "Local playground"):
#   HOOKLINE_RUN_DIR              logs, broker data, signing key, demo token   (.run)
#   HOOKLINE_LOCAL_PORT           the broker                                   (9092)
#   HOOKLINE_LOCAL_ADMIN_PORT     the admin API                                (9400)
#   HOOKLINE_LOCAL_RECEIVER_PORT  the demo receiver                            (8080)
#   HOOKLINE_LOCAL_METRICS_PORT   first of four: tracking, profiles, sender, admin (9461)
# Any other HOOKLINE_* variable (HOOKLINE_RETRY_SCHEDULE=2s,4s, RUST_LOG too) reaches the stages.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${HOOKLINE_LOCAL_PORT:-9092}"
ADMIN_PORT="${HOOKLINE_LOCAL_ADMIN_PORT:-9400}"
RECEIVER_PORT="${HOOKLINE_LOCAL_RECEIVER_PORT:-8080}"
METRICS_PORT="${HOOKLINE_LOCAL_METRICS_PORT:-9461}"
RUN_DIR="${HOOKLINE_RUN_DIR:-$PWD/.run}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}/debug"
LOGS="$RUN_DIR/logs"
mkdir -p "$LOGS" "$RUN_DIR/www" "$RUN_DIR/received"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
LOGS="$RUN_DIR/logs"

scripts/broker.sh install
echo "run: building Hookline"
"${CARGO:-cargo}" build --workspace --bins --quiet

export HOOKLINE_BROKERS="127.0.0.1:$PORT"
export HOOKLINE_KAFKA_SESSION_TIMEOUT_MS=6000
# Fetch waits for the local broker, which holds each fetch for its whole wait.
export HOOKLINE_BROKER_PROFILE=local
export HOOKLINE_SIGNING_KEY="$RUN_DIR/signing-key.pem"
# Local run only: the demo receiver is on loopback and speaks plain http.
export HOOKLINE_ALLOW_NETWORKS="127.0.0.0/8,::1/128"
export HOOKLINE_REQUIRE_HTTPS=false
export HOOKLINE_ADMIN_ADDR="127.0.0.1:$ADMIN_PORT"
export HOOKLINE_API_URL="http://127.0.0.1:$ADMIN_PORT"
export HOOKLINE_STATE_DIR="$RUN_DIR/state"
# The local broker does not report a topic's delete.retention.ms, so each join stage would warn
# on every start that it assumes 24 h: say it here instead.
export HOOKLINE_TABLE_RETENTION="${HOOKLINE_TABLE_RETENTION:-24h}"

pids=()
stopped=0
stop() {
  [ "$stopped" = 1 ] && return
  stopped=1
  trap - INT TERM EXIT
  echo
  echo "run: stopping"
  # Stages first (they commit what they processed), the broker last.
  local broker="${pids[0]:-}"
  for pid in "${pids[@]:1}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:1}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$broker" ]; then kill -TERM "$broker" 2>/dev/null || true; wait "$broker" 2>/dev/null || true; fi
  rm -f "$RUN_DIR/run.pid"
  echo "run: stopped (logs in $LOGS)"
}
# A stop asked for (Ctrl-C, SIGTERM) that went well is a success: exit 0. Started in the
# background (`make run &`, nohup, CI) the shell hands SIGINT down ignored, and a script cannot
# trap a signal ignored on entry: stop such a run with SIGTERM (kill -TERM $(cat .run/run.pid)).
trap 'stop; exit 0' INT TERM
# Any other way out (a stage failed to start) stops what did start and keeps the exit code.
trap stop EXIT

wait_port() {
  local port=$1 what=$2
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "run: $what did not come up on port $port; see $LOGS" >&2
  exit 1
}

for p in "$PORT" "$ADMIN_PORT" "$RECEIVER_PORT" "$METRICS_PORT" $((METRICS_PORT + 1)) $((METRICS_PORT + 2)) $((METRICS_PORT + 3)); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "run: port $p is in use (another make run?); stop what uses it or choose other ports with the HOOKLINE_LOCAL_*PORT variables (README, \"Local playground\")" >&2
    exit 1
  fi
done
echo $$ >"$RUN_DIR/run.pid"
# NO_COLOR: the broker's log is a file, not a terminal.
NO_COLOR=1 scripts/broker.sh start "$RUN_DIR/broker" "$PORT" >"$LOGS/broker.log" 2>&1 &
pids+=($!)
wait_port "$PORT" "the broker"
echo "run: broker up on 127.0.0.1:$PORT (data in $RUN_DIR/broker)"

"$TARGET/hookline" topics create --partitions 3

HOOKLINE_METRICS_ADDR="127.0.0.1:$((METRICS_PORT + 3))" "$TARGET/hookline-admin" >"$LOGS/admin.log" 2>&1 &
pids+=($!)
wait_port "$ADMIN_PORT" "the admin API"
HOOKLINE_METRICS_ADDR="127.0.0.1:$((METRICS_PORT + 1))" "$TARGET/hookline-profiles" >"$LOGS/profiles.log" 2>&1 &
pids+=($!)
HOOKLINE_METRICS_ADDR="127.0.0.1:$METRICS_PORT" "$TARGET/hookline-tracking" >"$LOGS/tracking.log" 2>&1 &
pids+=($!)
HOOKLINE_METRICS_ADDR="127.0.0.1:$((METRICS_PORT + 2))" "$TARGET/hookline-sender" >"$LOGS/sender.log" 2>&1 &
pids+=($!)
"$TARGET/hookline" receiver --listen "127.0.0.1:$RECEIVER_PORT" --admin-url "$HOOKLINE_API_URL" \
  --files "$RUN_DIR/www" --save-dir "$RUN_DIR/received" >"$LOGS/receiver.log" 2>&1 &
pids+=($!)
wait_port "$RECEIVER_PORT" "the demo receiver"
echo "run: stages up — metrics on :$METRICS_PORT (tracking) :$((METRICS_PORT + 1)) (profiles) :$((METRICS_PORT + 2)) (sender) :$((METRICS_PORT + 3)) (admin); admin API on :$ADMIN_PORT"

"$TARGET/hookline" demo seed --receiver-url "http://127.0.0.1:$RECEIVER_PORT/webhook"
# A token for the demo account, so the admin API and `hookline subscriptions ...` work at once.
# Local runs only: a real deployment's operator creates tokens and hands them out. The token of
# an earlier run is kept while the broker still knows it, so runs do not pile tokens up.
TOKEN_FILE="$RUN_DIR/demo-token"
token_id=""
if [ -s "$TOKEN_FILE" ]; then token_id=$(cut -d_ -f2 "$TOKEN_FILE"); fi
known=$("$TARGET/hookline" tokens list --json)
if [ -z "$token_id" ] || ! grep -q "\"$token_id\"" <<<"$known"; then
  DEMO_TOKEN=$("$TARGET/hookline" tokens create --account 1001 --label "make run demo" 2>/dev/null)
  (umask 077; echo "$DEMO_TOKEN" >"$TOKEN_FILE")
fi
# The admin API takes a new token within a second: announce it once it works.
for _ in $(seq 1 50); do
  HOOKLINE_TOKEN=$(cat "$TOKEN_FILE") "$TARGET/hookline" subscriptions list >/dev/null 2>&1 && break
  sleep 0.2
done
echo "run: an API token for demo account 1001 is in $TOKEN_FILE; try:"
echo "run:   HOOKLINE_TOKEN=\$(cat $TOKEN_FILE) $TARGET/hookline subscriptions list"
echo "run: the web console is at http://127.0.0.1:$ADMIN_PORT/console/ — sign in with the demo token:"
echo "run:   $(cat "$TOKEN_FILE")"
echo "run: produce more with: $TARGET/hookline produce tracking FILE.jsonl"
echo "run: stop with Ctrl-C, or from elsewhere: kill -TERM \$(cat $RUN_DIR/run.pid)"
echo "run: signed POSTs arriving at the demo receiver (each signature verified against GET /v1/keys):"
tail -n +1 -f "$LOGS/receiver.log" &
pids+=($!)
wait "${pids[0]}"
