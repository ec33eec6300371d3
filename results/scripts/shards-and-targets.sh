#!/usr/bin/env bash
# Issue 7 measurements: one shard vs two, highest sustainable rate per mode, connections held and
# memory per connection, and one 6,000-member room with a steady publisher.
# Usage: results/scripts/shards-and-targets.sh OUT_DIR [part...]   (parts: a b c d; default all)
# Needs: cargo build --release --bin chat-server -p loadgen. Loopback only; every run is bounded.
set -uo pipefail
OUT=$(realpath -m "${1:?output folder}"); shift
PARTS=${*:-a b c d}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SERVER=$ROOT/target/release/chat-server
LOADGEN=$ROOT/target/release/loadgen
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WORK=$(mktemp -d)
PID=""
# Stop only the server this script started, by its PID.
trap '[ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

# start_server NAME PORT ARGS... : starts a release server in $WORK, waits for it, sets $PID.
start_server() {
    local name=$1 port=$2; shift 2
    (cd "$WORK" && exec "$SERVER" --bind 127.0.0.1 --port "$port" --history memory --msg-rate 0 \
        --log-level warn --cert "$WORK/s.crt" --key "$WORK/s.key" "$@" > "$OUT/$name.server.log" 2>&1) &
    PID=$!  # the subshell execs the server, so this is the server's own PID
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
}
stop_server() { kill -TERM "$PID" 2>/dev/null; wait 2>/dev/null; sleep 1; }

# run NAME PORT LOADGEN-ARGS... : one loadgen run against the server on PORT.
run() {
    local name=$1 port=$2; shift 2
    echo "== $name: loadgen run -a 127.0.0.1:$port $*" | tee -a "$OUT/commands.txt"
    "$LOADGEN" run -a 127.0.0.1:"$port" --server-pid "$PID" -q --json "$OUT/$name.json" \
        --hgrm "$OUT/$name.hgrm" "$@" > "$OUT/$name.txt" 2>&1
    echo "   exit $? ($(grep -E '^Result' "$OUT/$name.txt"))" | tee -a "$OUT/commands.txt"
}

for part in $PARTS; do case $part in
a)  # One shard vs two at 6,000 bots: 60 rooms of 100, 0.5 msg/s per bot, 10% private.
    for shards in 1 2; do
        start_server "a-shards$shards" 17501 --shards "$shards" --no-tls
        run "a-shards$shards" 17501 -n 6000 --rooms 60 --rate 3000 -d 20 --warmup 5 --connect-timeout 120
        stop_server
    done ;;
b)  # Highest rate at 6,000 bots per mode (600 rooms of 10): a sweep of total message rates.
    for mode in binary json binary-tls json-tls; do
        proto=${mode%-tls}; tls=(); [[ $mode == *-tls ]] && tls=(--tls --ca "$WORK/s.crt")
        for rate in 2000 5000 10000 20000; do
            start_server "b-$mode-$rate" 17502 --shards 2
            run "b-$mode-$rate" 17502 -n 6000 --rooms 600 --rate "$rate" -d 15 --warmup 5 \
                --protocol "$proto" "${tls[@]}" --connect-timeout 120
            stop_server
        done
    done ;;
c)  # 15,000 connections held, plain and TLS: server RSS per connection (idle: 1 msg/min/bot).
    for mode in plain tls; do
        tls=(); [[ $mode == tls ]] && tls=(--tls --ca "$WORK/s.crt")
        start_server "c-$mode" 17503 --shards 2
        run "c-$mode" 17503 -n 15000 --rooms 150 --rate 250 -d 10 --warmup 2 "${tls[@]}" --connect-timeout 180
        stop_server
    done ;;
d)  # One room of 6,000 members, steady publishers: deliveries/s = rate x 5,999.
    for rate in 50 100 166; do
        start_server "d-room6000-$rate" 17504 --shards 2 --no-tls
        run "d-room6000-$rate" 17504 -n 6000 --rooms 1 --rate "$rate" --private-share 0 -d 15 --warmup 5 \
            --connect-timeout 120
        stop_server
    done ;;
esac; done
