#!/usr/bin/env bash
# Pass 2: the four load runs against a fresh server, in the opposite order.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
OUT=results/2026-11-30-websocket
WORK=$(mktemp -d)
./target/release/chat-server --port 5604 --bind 127.0.0.1 --history memory --data-dir "$WORK/data" \
    --cert "$WORK/server.crt" --key "$WORK/server.key" --shards 1 --log-level warn 2>"$WORK/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
sleep 1
LOAD="-n 200 --rooms 5 --rate-per-bot 2 --payload 80 -d 10 --warmup 2 -t 1 --quiet"
for name in ws-tls:ws:--tls json-tls:json:--tls ws:ws: json:json:; do
  IFS=: read n mode tls <<< "$name"
  extra=""; [ -n "$tls" ] && extra="--tls --ca $WORK/server.crt"
  ./target/release/loadgen run --addr 127.0.0.1:5604 --protocol $mode $extra $LOAD --name-prefix "$n-" --server-pid $SERVER --json $OUT/pass2-$n.json > $OUT/pass2-$n.txt
done
