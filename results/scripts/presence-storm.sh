#!/usr/bin/env bash
# Join storms (issue 15): N bots join one room as fast as they can, then chat; before vs after,
# interleaved (before 1, after 1, before 2, ...) so that the shared machine's noise hits both.
#   storm<N>:   measured 5 s starting the moment the last bot joined (the storm's aftermath).
#   settled<N>: the same, but measured 5 s starting 20 s after the last join (joined long before).
# Frames per member come from the bots' counters (messages.system + messages.presence, whole run).
# Usage: results/scripts/presence-storm.sh OUT_DIR BEFORE_SERVER AFTER_SERVER LOADGEN [REPEATS [FIRST]]
#        ONLY="storm1000 settled1000" limits the scenarios; RATE (default 100 msgs/s) the chat load.
# Loopback only; every run is bounded by its duration and the load generator's timeouts; servers
# are started here and stopped by their own PID.
set -uo pipefail
OUT=$(realpath -m "${1:?output folder}")
BEFORE=${2:?before server binary}; AFTER=${3:?after server binary}; LOADGEN=${4:?loadgen binary}
REPEATS=${5:-3}
FIRST=${6:-1}
ONLY=${ONLY:-storm1000 settled1000}
RATE=${RATE:-100}
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WORK=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

start_server() {
    local bin=$1 log=$2
    (cd "$WORK" && exec "$bin" --bind 127.0.0.1 --port 0 --no-tls --history memory --msg-rate 0 \
        --shards 2 --log-level info > "$log" 2>&1) &
    PID=$!
    ADDR=""
    for _ in $(seq 100); do
        ADDR=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/listening on //')
        [ -n "$ADDR" ] && break
        sleep 0.1
    done
}
stop_server() { kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=""; sleep 1; }

scenario() {
    local name=$1; shift
    case " $ONLY " in *" $name "*) ;; *) return ;; esac
    for i in $(seq "$FIRST" $((FIRST + REPEATS - 1))); do
        for which in before after; do
            local bin=$BEFORE; [ "$which" = after ] && bin=$AFTER
            local tag="$name-$which-$i"
            start_server "$bin" "$OUT/$tag.server.log"
            echo "== $tag: loadgen run -a $ADDR $* (load average $(cut -d' ' -f1 /proc/loadavg))" | tee -a "$OUT/commands.txt"
            "$LOADGEN" run -a "$ADDR" --server-pid "$PID" -q --json "$OUT/$tag.json" \
                --hgrm "$OUT/$tag.hgrm" "$@" > "$OUT/$tag.txt" 2>&1
            echo "   exit $?" | tee -a "$OUT/commands.txt"
            stop_server
        done
    done
}

for n in 1000 6000; do
    scenario "storm$n" -n "$n" --rooms 1 --rate "$RATE" --private-share 0 --warmup 0 -d 5 --connect-timeout 120
    scenario "settled$n" -n "$n" --rooms 1 --rate "$RATE" --private-share 0 --warmup 20 -d 5 --connect-timeout 120
done
