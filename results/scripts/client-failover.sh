#!/bin/bash
# chat-client fail-over time on a two-node cluster: nats-server -js and nodes a, b on free
# loopback ports (default --cluster-name-ttl, 10 s), chat-client alice --server a,b, then node a
# is SIGKILLed (its own PID) and the time until the client prints "reconnected to" is taken.
# Usage: results/scripts/client-failover.sh [RUNS] (from the repository root, after cargo build).
set -u
RUNS=${1:-3}
BIN=$(pwd)/target/debug
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
for run in $(seq 1 "$RUNS"); do
  DIR=$(mktemp -d)
  NP=$(free_port); PA=$(free_port); PB=$(free_port)
  nats-server -js -a 127.0.0.1 -p "$NP" -sd "$DIR/js" 2>"$DIR/nats.log" & NATS=$!
  sleep 1
  common=(--bind 127.0.0.1 --no-tls --history memory --cluster "nats://127.0.0.1:$NP" --advertise 127.0.0.1)
  "$BIN/chat-server" --port "$PA" --data-dir "$DIR/a" --node a "${common[@]}" 2>"$DIR/a.log" & A=$!
  "$BIN/chat-server" --port "$PB" --data-dir "$DIR/b" --node b "${common[@]}" 2>"$DIR/b.log" & B=$!
  sleep 2
  mkfifo "$DIR/in"; (sleep 60 >"$DIR/in" &)
  "$BIN/chat-client" alice --server "127.0.0.1:$PA,127.0.0.1:$PB" <"$DIR/in" >"$DIR/out.txt" 2>&1 & C=$!
  sleep 2
  echo "run $run: node a's /config.json: $(curl -s "http://127.0.0.1:$PA/config.json")"
  t0=$(date +%s.%N); kill -9 "$A"
  until grep -q "reconnected to" "$DIR/out.txt"; do sleep 0.05; done
  t1=$(date +%s.%N)
  echo "run $run: chat-client back on node b after $(echo "$t1 - $t0" | bc) s"
  sed 's/^/    /' "$DIR/out.txt"
  echo "run $run: node b's /config.json: $(curl -s "http://127.0.0.1:$PB/config.json")"
  kill "$C" "$B" "$NATS" 2>/dev/null; wait 2>/dev/null
  rm -rf "$DIR"
done
