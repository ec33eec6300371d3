#!/usr/bin/env bash
# Side-by-side check that a change made the server no slower: two server binaries, the same load
# generator, interleaved runs (A B A B ...) so that the shared machine's noise hits both alike.
# Scenarios: 6,000 bots in one room at a steady rate; 2,000 bots in 100 rooms.
# Usage: results/scripts/before-after.sh OUT_DIR BEFORE_SERVER AFTER_SERVER LOADGEN [REPEATS [FIRST]]
#        ONLY="rooms100" ... runs only the named scenarios; FIRST numbers the runs from there
#        (to add repeats to a folder).
# Loopback only; every run is bounded by its duration and the load generator's timeouts; servers
# are started here and stopped by their own PID.
set -uo pipefail
OUT=$(realpath -m "${1:?output folder}")
BEFORE=${2:?before server binary}; AFTER=${3:?after server binary}; LOADGEN=${4:?loadgen binary}
REPEATS=${5:-3}
FIRST=${6:-1}
ONLY=${ONLY:-room6000 rooms100}
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WORK=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

# start_server BIN LOG : a release server on a free loopback port (port 0); sets PID and ADDR.
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

# scenario NAME LOADGEN-ARGS... : one run against each binary per repeat, interleaved.
scenario() {
    local name=$1; shift
    case " $ONLY " in *" $name "*) ;; *) return ;; esac
    for i in $(seq "$FIRST" $((FIRST + REPEATS - 1))); do
        for which in before after; do
            local bin=$BEFORE; [ "$which" = after ] && bin=$AFTER
            local tag="$name-$which-$i"
            start_server "$bin" "$OUT/$tag.server.log"
            echo "== $tag: loadgen run -a $ADDR $*" | tee -a "$OUT/commands.txt"
            "$LOADGEN" run -a "$ADDR" --server-pid "$PID" -q --json "$OUT/$tag.json" \
                --hgrm "$OUT/$tag.hgrm" "$@" > "$OUT/$tag.txt" 2>&1
            echo "   exit $?" | tee -a "$OUT/commands.txt"
            stop_server
        done
    done
}

scenario room6000 -n 6000 --rooms 1 --rate 40 --private-share 0 -d 15 --warmup 5 --connect-timeout 120
scenario rooms100 -n 2000 --rooms 100 --rate 2000 -d 15 --warmup 5 --connect-timeout 60
