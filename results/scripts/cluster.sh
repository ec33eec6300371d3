#!/usr/bin/env bash
# The cluster measurements (issue 13): one chat-server binary as 1, 2 and 3 nodes joined through
# its own nats-server -js (plus the same binary standalone), the same loadgen load spread over all
# nodes; cross-node latency (publishers on node a, listeners on node b) against the same load on
# one node; and a node SIGKILLed under load with --failover (time until every bot is back,
# messages lost). Writes OUT_DIR/README.md (commands, git revision, machine, tables) beside each
# run's report (.json, .txt, .hgrm), the servers' logs and cpu.tsv (CPU seconds from /proc/PID/stat
# before and after each loadgen run, for every node and for nats-server).
#
# Usage: results/scripts/cluster.sh OUT_DIR SERVER LOADGEN
#   BOTS (2000) ROOMS (100) RATE (1000 msg/s over all publishers) DURATION (20 s) WARMUP (3 s)
#   PUBLISHERS (BOTS/2, the latency runs) TTL (10 s, --cluster-name-ttl) KILL_AFTER (5 s into
#   the run) FAILOVER_TIMEOUT (60 s) THREADS (2, loadgen's) HISTORY_LEN (1000, the nodes'
#   --history-len and loadgen's --dedupe-ids: more than a room gets while the killed node's bots
#   are away, so a resume has no gap) ONLY ("standalone nodes1 nodes2 nodes3 cross same kill")
#   set the scale and the parts.
# Loopback only. Everything is bounded: each run by its duration and loadgen's timeouts, each
# wait by a count of tries. Only the PIDs started here are signalled (never by name).
set -uo pipefail
OUT=$(realpath -m "${1:?output folder}")
SERVER=$(realpath "${2:?chat-server binary}")
LOADGEN=$(realpath "${3:?loadgen binary}")
BOTS=${BOTS:-2000}; ROOMS=${ROOMS:-100}; RATE=${RATE:-1000}; DURATION=${DURATION:-20}; WARMUP=${WARMUP:-3}
PUBLISHERS=${PUBLISHERS:-$((BOTS / 2))}; TTL=${TTL:-10}; KILL_AFTER=${KILL_AFTER:-5}
FAILOVER_TIMEOUT=${FAILOVER_TIMEOUT:-60}; THREADS=${THREADS:-2}; HISTORY_LEN=${HISTORY_LEN:-1000}
ONLY=${ONLY:-standalone nodes1 nodes2 nodes3 cross same kill}
NATS=${NATS:-$(command -v nats-server || echo /usr/sbin/nats-server)}
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WORK=$(mktemp -d)
NATS_PID=""; NODE_PIDS=(); ADDRS=()
stop_all() {
    for p in "${NODE_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${NODE_PIDS[@]}"; do wait "$p" 2>/dev/null; done
    [ -n "$NATS_PID" ] && kill -TERM "$NATS_PID" 2>/dev/null && wait "$NATS_PID" 2>/dev/null
    NATS_PID=""; NODE_PIDS=(); ADDRS=()
}
trap 'stop_all; rm -rf "$WORK"' EXIT
TCK=$(getconf CLK_TCK)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# cpu PID: user + system CPU seconds so far (fields 14 and 15 of /proc/PID/stat), or "nan".
cpu() { awk -v t="$TCK" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null || echo nan; }
# wait_log FILE TEXT: up to 30 s for TEXT in FILE.
wait_log() { for _ in $(seq 300); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "no '$2' in $1" >&2; return 1; }

# start_nats TAG: a fresh nats-server -js on a free loopback port, its store in the scratch folder.
start_nats() {
    NATS_PORT=$(free_port)
    "$NATS" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$WORK/js-$1" > "$OUT/$1.nats.log" 2>&1 &
    NATS_PID=$!
    wait_log "$OUT/$1.nats.log" "Server is ready"
}

# start_node TAG NAME [cluster]: one node on port 0; appends its PID and address.
start_node() {
    local log="$OUT/$1.node-$2.log" extra=()
    [ "${3:-}" = cluster ] && extra=(--cluster "nats://127.0.0.1:$NATS_PORT" --node "$2" --cluster-name-ttl "$TTL")
    (cd "$WORK" && exec "$SERVER" --bind 127.0.0.1 --port 0 --no-tls --history memory --msg-rate 0 \
        --history-len "$HISTORY_LEN" --data-dir "$WORK/data-$1-$2" --log-level info "${extra[@]}" > "$log" 2>&1) &
    NODE_PIDS+=($!)
    wait_log "$log" "listening on 127.0.0.1:" || return 1
    [ "${3:-}" = cluster ] && { wait_log "$log" "cluster: joined through NATS" || return 1; }
    ADDRS+=("$(grep -o 'listening on 127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/listening on //')")
}

# cluster TAG N: nats and N cluster nodes a, b, c (N = 0: one standalone node, no NATS).
cluster() {
    if [ "$2" = 0 ]; then start_node "$1" a; return; fi
    start_nats "$1"
    local names=(a b c)
    for i in $(seq 0 $(($2 - 1))); do start_node "$1" "${names[$i]}" cluster || return 1; done
}

# run TAG ADDRS LOADGEN-ARGS...: one loadgen run with CPU readings around it; a line in cpu.tsv.
run() {
    local tag=$1 addrs=$2; shift 2
    local t0 n0 c0=() c1=()
    t0=$(date +%s.%N); n0=$([ -n "$NATS_PID" ] && cpu "$NATS_PID" || echo nan)
    for p in "${NODE_PIDS[@]}"; do c0+=("$(cpu "$p")"); done
    local cmd=("$LOADGEN" run -a "$addrs" -n "$BOTS" --rooms "$ROOMS" --rate "$RATE" -d "$DURATION" \
        --warmup "$WARMUP" -t "$THREADS" --connect-timeout 120 --json "$OUT/$tag.json" --hgrm "$OUT/$tag.hgrm" "$@")
    echo "== $tag: loadgen ${cmd[*]:1} (load average $(cut -d' ' -f1 /proc/loadavg))" | tee -a "$OUT/commands.txt"
    if [ -n "${KILL_PID:-}" ]; then
        "${cmd[@]}" > "$OUT/$tag.txt" 2> "$OUT/$tag.progress" &
        local lg=$!
        # The progress line says " run]" once sending started; then KILL_AFTER more seconds.
        wait_log "$OUT/$tag.progress" " run\]" && sleep "$KILL_AFTER"
        kill -KILL "$KILL_PID" 2>/dev/null && echo "   SIGKILL $KILL_PID at $(date +%s.%N)" | tee -a "$OUT/commands.txt"
        wait "$lg"
    else
        "${cmd[@]}" -q > "$OUT/$tag.txt" 2>&1
    fi
    echo "   exit $?" | tee -a "$OUT/commands.txt"
    local wall n1
    wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    n1=$([ -n "$NATS_PID" ] && cpu "$NATS_PID" || echo nan)
    for p in "${NODE_PIDS[@]}"; do c1+=("$(cpu "$p")"); done
    local line="$tag	$wall	$(python3 -c "import sys; a=sys.argv[1:]; print(a[1]=='nan' and 'nan' or round(float(a[1])-float(a[0]),2))" "$n0" "$n1")"
    for i in "${!c0[@]}"; do
        line+="	$(python3 -c "import sys; a,b=sys.argv[1:]; print('killed' if b=='nan' else round(float(b)-float(a),2))" "${c0[$i]}" "${c1[$i]:-nan}")"
    done
    echo "$line" >> "$OUT/cpu.tsv"
}

wanted() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
join_addrs() { local IFS=,; echo "$*"; }
: > "$OUT/cpu.tsv"; : > "$OUT/commands.txt"

for n in 0 1 2 3; do
    tag=nodes$n; [ "$n" = 0 ] && tag=standalone
    wanted "$tag" || continue
    cluster "$tag" "$n" && run "$tag" "$(join_addrs "${ADDRS[@]}")"
    stop_all
done

# A fresh cluster (and NATS store) per run, so that the runs are independent. (It was first a
# workaround: bots joining rooms whose log held an earlier run's messages missed live messages
# sent while their join's history was read; fixed in the server since, f01ffdb.)
if wanted cross; then
    cluster cross 2 && run cross "${ADDRS[0]},${ADDRS[1]}" --placement split --publishers "$PUBLISHERS" --private-share 0
    stop_all
fi
if wanted same; then
    cluster same 2 && run same "${ADDRS[0]}" --publishers "$PUBLISHERS" --private-share 0
    stop_all
fi

if wanted kill; then
    cluster kill 2 && {
        KILL_PID=${NODE_PIDS[1]}
        run kill "${ADDRS[0]},${ADDRS[1]}" --private-share 0 --failover --failover-timeout "$FAILOVER_TIMEOUT" \
            --dedupe-ids "$HISTORY_LEN" --drain $((TTL + 10))
        KILL_PID=""
    }
    stop_all
fi

python3 "$(dirname "$0")/cluster_summary.py" "$OUT" "$SERVER" "$LOADGEN" > "$OUT/README.md"
echo "wrote $OUT/README.md"
