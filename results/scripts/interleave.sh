# Sourced by the before/after scripts (before-after.sh, presence-storm.sh): two server binaries,
# one load generator, interleaved runs (A B A B ...) so that the shared machine's noise hits both
# alike. The caller sets ONLY (its default scenarios) and then calls `scenario` per scenario.
# Arguments: OUT_DIR BEFORE_SERVER AFTER_SERVER LOADGEN [REPEATS [FIRST]]; FIRST numbers the runs
# from there (to add repeats to a folder). Loopback only; every run is bounded by its duration and
# the load generator's timeouts; servers are started here and stopped by their own PID.
set -uo pipefail
OUT=$(realpath -m "${1:?output folder}")
# Absolute paths: the servers start in a scratch directory.
BEFORE=$(realpath "${2:?before server binary}"); AFTER=$(realpath "${3:?after server binary}")
LOADGEN=$(realpath "${4:?loadgen binary}")
REPEATS=${5:-3}
FIRST=${6:-1}
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

# scenario NAME LOADGEN-ARGS... : one run against each binary per repeat, interleaved; skipped
# unless NAME is in ONLY.
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
