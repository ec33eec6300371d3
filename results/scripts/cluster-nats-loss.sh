#!/usr/bin/env bash
# A nats-server lost under load (issue 13): three nats-servers in one JetStream cluster, two
# chat-server nodes with --cluster-replicas 3 listing all three, loadgen spread over both nodes;
# a few seconds into the run the nats-server node a is connected to is SIGKILLed. Writes
# OUT_DIR/nats-loss.{txt,json} and the servers' logs; prints loadgen's summary lines.
#
# Usage: results/scripts/cluster-nats-loss.sh OUT_DIR SERVER LOADGEN
#   BOTS (400) ROOMS (20) RATE (400 msg/s) DURATION (20 s) KILL_AFTER (5 s into the run).
# Loopback only; every wait bounded; only the PIDs started here are signalled.
set -uo pipefail
OUT=$(realpath -m "${1:?output folder}"); SERVER=$(realpath "${2:?chat-server}"); LOADGEN=$(realpath "${3:?loadgen}")
BOTS=${BOTS:-400}; ROOMS=${ROOMS:-20}; RATE=${RATE:-400}; DURATION=${DURATION:-20}; KILL_AFTER=${KILL_AFTER:-5}
NATS=${NATS:-$(command -v nats-server || echo /usr/sbin/nats-server)}
mkdir -p "$OUT"; WORK=$(mktemp -d); PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_log() { for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "no '$2' in $1" >&2; exit 1; }
ROUTES=(); CLIENTS=(); NATS_PIDS=()
for i in 0 1 2; do ROUTES+=("$(free_port)"); CLIENTS+=("$(free_port)"); done
ALL=$(printf 'nats://127.0.0.1:%s,' "${ROUTES[@]}"); ALL=${ALL%,}
for i in 0 1 2; do
    "$NATS" -js -a 127.0.0.1 -p "${CLIENTS[$i]}" -sd "$WORK/js$i" --server_name "s$i" --cluster_name chat \
        --cluster "nats://127.0.0.1:${ROUTES[$i]}" --routes "$ALL" > "$OUT/nats-loss.nats$i.log" 2>&1 &
    NATS_PIDS+=($!); PIDS+=($!)
done
for i in 0 1 2; do wait_log "$OUT/nats-loss.nats$i.log" "metadata leader"; done
URLS=$(printf 'nats://127.0.0.1:%s,' "${CLIENTS[@]}"); URLS=${URLS%,}
ADDRS=()
for n in a b; do
    log="$OUT/nats-loss.node-$n.log"
    (cd "$WORK" && exec "$SERVER" --bind 127.0.0.1 --port 0 --no-tls --history memory --msg-rate 0 --data-dir "$WORK/d$n" \
        --cluster "$URLS" --node "$n" --cluster-replicas 3 > "$log" 2>&1) &
    PIDS+=($!)
    wait_log "$log" "cluster: joined through NATS"
    ADDRS+=("$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/listening on //')")
done
# The nats-server node a is connected to.
PORT=$(grep -o 'connected successfully server=[0-9]*' "$OUT/nats-loss.node-a.log" | tail -1 | sed 's/.*=//')
VICTIM=""; for i in 0 1 2; do [ "${CLIENTS[$i]}" = "$PORT" ] && VICTIM=${NATS_PIDS[$i]}; done
[ -n "$VICTIM" ] || { echo "cannot tell which nats-server node a uses" >&2; exit 1; }
CMD=("$LOADGEN" run -a "${ADDRS[0]},${ADDRS[1]}" -n "$BOTS" --rooms "$ROOMS" --rate "$RATE" -d "$DURATION" --warmup 3 -t 2 \
    --private-share 0 --drain 15 --json "$OUT/nats-loss.json")
echo "== loadgen ${CMD[*]:1}" | tee "$OUT/nats-loss.commands.txt"
"${CMD[@]}" > "$OUT/nats-loss.txt" 2> "$OUT/nats-loss.progress" &
LG=$!
wait_log "$OUT/nats-loss.progress" " run\]"; sleep "$KILL_AFTER"
kill -KILL "$VICTIM" && echo "   SIGKILL nats-server pid $VICTIM (port $PORT) at $(date +%s.%N)" | tee -a "$OUT/nats-loss.commands.txt"
wait "$LG"; echo "   loadgen exit $?" | tee -a "$OUT/nats-loss.commands.txt"
grep -E "delivered|lost|Result|error|refused|  - " "$OUT/nats-loss.txt" | head -20
