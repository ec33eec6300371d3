#!/usr/bin/env bash
# Saturation probe: the same load on one standalone server and on one cluster node (+ NATS).
set -uo pipefail
OUT=$1; SERVER=$2; LOADGEN=$3
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
for mode in standalone cluster; do
  for rate in 5000 10000 20000; do
    W=$(mktemp -d); NP=""; extra=()
    if [ $mode = cluster ]; then
      NPORT=$(free_port); nats-server -js -a 127.0.0.1 -p $NPORT -sd $W/js > $W/nats.log 2>&1 & NP=$!
      sleep 0.5; extra=(--cluster nats://127.0.0.1:$NPORT --node a)
    fi
    PORT=$(free_port)
    "$SERVER" --bind 127.0.0.1 --port $PORT --no-tls --history memory --msg-rate 0 --data-dir $W/data "${extra[@]}" > $W/node.log 2>&1 & SP=$!
    for _ in $(seq 100); do grep -q "listening on" $W/node.log && break; sleep 0.1; done
    sleep 0.5
    echo "== $mode rate $rate: loadgen run -a 127.0.0.1:$PORT -n 200 --rooms 10 --rate $rate -d 10 --warmup 2 -t 2 --private-share 0 --server-pid $SP" | tee -a $OUT/saturation-commands.txt
    timeout 120 "$LOADGEN" run -a 127.0.0.1:$PORT -n 200 --rooms 10 --rate $rate -d 10 --warmup 2 -t 2 --private-share 0 --server-pid $SP --json $OUT/sat-$mode-$rate.json > $OUT/sat-$mode-$rate.txt 2>&1
    kill -TERM $SP; wait $SP 2>/dev/null
    [ -n "$NP" ] && kill -TERM $NP && wait $NP 2>/dev/null
    rm -rf $W
  done
done
