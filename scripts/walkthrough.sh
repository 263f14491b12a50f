#!/usr/bin/env bash
# The README's "Your first webhook", command for command, against a running `make run` (the
# same HOOKLINE_RUN_DIR and HOOKLINE_LOCAL_*PORT variables, if any). Every step must do what the
# README says it does: the script stops at the first that does not, and exits 0 when all did.
# tests/walkthrough.rs runs it against a pipeline started by scripts/run-local.sh, and checks
# that the README's commands are the ones below.
set -euo pipefail
cd "$(dirname "$0")/.."
# The same `hookline` as `make run` (the README puts it on the PATH with `make install`).
export PATH="${CARGO_TARGET_DIR:-$PWD/target}/debug:$PATH"
export HOOKLINE_API_URL="http://127.0.0.1:${HOOKLINE_LOCAL_ADMIN_PORT:-9400}"
export HOOKLINE_BROKERS="127.0.0.1:${HOOKLINE_LOCAL_PORT:-9092}"
RUN_DIR="${HOOKLINE_RUN_DIR:-.run}"
RECEIVER="http://127.0.0.1:${HOOKLINE_LOCAL_RECEIVER_PORT:-8080}"
step() { printf '\n== %s\n' "$*"; }

step "1. create a subscription for clicks in database 12, to the demo receiver"
export HOOKLINE_TOKEN=$(cat "$RUN_DIR/demo-token")
hookline subscriptions create --database 12 --events click --format json --url "$RECEIVER/my-first-webhook" | tee "$RUN_DIR/first-subscription.txt"
SUB=$(sed -n 's/^created subscription \([^ ]*\).*/\1/p' "$RUN_DIR/first-subscription.txt")
FILE=$(grep -o -m1 'hookline-[0-9a-f]*\.txt' "$RUN_DIR/first-subscription.txt")

step "2. verify: publish the file it names where the receiver serves files, then verify"
basename "$FILE" .txt | sed 's/^hookline-//' > "$RUN_DIR/www/$FILE"
hookline subscriptions verify "$SUB"

step "3. test: one signed POST now"
hookline subscriptions test "$SUB"

step "4. produce a click of profile 12:4711 (Mike, from the demo data)"
EVENT="evt-first-$(date +%s)"
echo '{"id":"'"$EVENT"'","type":"click","account":"1001","database":"12","profile":"4711","timestamp":"'"$(date -u +%Y-%m-%dT%H:%M:%SZ)"'","ip":"203.0.113.7","useragent":"Mozilla/5.0","referer":"https://mail.example/","headers":{},"original":"https://shop.example/offer","tags":["first"]}' > "$RUN_DIR/first-click.jsonl"
hookline produce tracking "$RUN_DIR/first-click.jsonl"

step "5. see it arrive: the receiver keeps the latest POST to each path"
timeout 30 sh -c "until grep -qs $EVENT $RUN_DIR/received/my-first-webhook.body; do sleep 0.5; done"
cat "$RUN_DIR/received/my-first-webhook.body"; echo
timeout 30 sh -c "until hookline subscriptions attempts $SUB | grep -q delivered; do sleep 0.5; done"
hookline subscriptions attempts "$SUB"

step "6. verify the signature of what arrived, as a receiver would"
hookline verify-signature --headers-file "$RUN_DIR/received/my-first-webhook.head" --body-file "$RUN_DIR/received/my-first-webhook.body" --account 1001

step "done: subscription $SUB received event $EVENT, signed and verified"
