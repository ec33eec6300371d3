#!/usr/bin/env bash
# The measured run recorded in this folder: JSON over raw TCP vs JSON over WebSocket, plain and
# TLS, at the same load against one release server; then the server's RSS per idle connection.
# Run from the repository root after `cargo build --release -p chatproto -p loadgen`.
set -euo pipefail
OUT=results/2026-11-30-websocket
PORT=${PORT:-5601}
WORK=$(mktemp -d)
./target/release/chat-server --port "$PORT" --bind 127.0.0.1 --history memory --data-dir "$WORK/data" \
    --cert "$WORK/server.crt" --key "$WORK/server.key" --shards 1 --log-level warn 2>"$WORK/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do [ -f "$WORK/server.crt" ] && nc -z 127.0.0.1 "$PORT" 2>/dev/null && break; sleep 0.1; done
LOAD="-n 200 --rooms 5 --rate-per-bot 2 --payload 80 -d 10 --warmup 2 -t 1 --quiet"
for mode in json ws; do
    for tls in "" "--tls --ca $WORK/server.crt"; do
        name=$mode$([ -n "$tls" ] && echo -tls || true)
        ./target/release/loadgen run --addr 127.0.0.1:"$PORT" --protocol "$mode" $tls $LOAD \
            --name-prefix "$name-" --server-pid "$SERVER" --json "$OUT/$name.json" > "$OUT/$name.txt"
    done
done
for kind in json ws; do
    python3 "$OUT/idle_rss.py" "$SERVER" 127.0.0.1:"$PORT" 2000 "$kind" > "$OUT/idle-$kind.json"
    sleep 2
done
