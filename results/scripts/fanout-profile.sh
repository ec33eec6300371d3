#!/usr/bin/env bash
# Issue 15, the tail: one room of N bots at a steady rate, one shard vs two; the server is
# profiled with perf (software clock: this VM has no hardware counters) for 8 s of the measured
# window, and its scheduling counted with perf stat.
# Usage: results/scripts/fanout-profile.sh OUT_DIR SERVER LOADGEN TAG [N [RATE [SHARDS...]]]
#        PIN=1: the server on CPU 0 and the load generator (one thread) on CPU 1 (taskset).
# Loopback only; bounded by the run's duration; the server is stopped by its own PID.
set -uo pipefail
OUT=$(realpath -m "${1:?output folder}"); SERVER=${2:?server}; LOADGEN=${3:?loadgen}; TAG=${4:?tag}
N=${5:-1000}; RATE=${6:-200}; shift 6 2>/dev/null || shift $#
SHARDS=${*:-1 2}
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WORK=$(mktemp -d)
PID=""
trap '[ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
SRV_PIN=(); LG_PIN=()
if [ "${PIN:-0}" = 1 ]; then SRV_PIN=(taskset -c 0); LG_PIN=(taskset -c 1); fi
LG_THREADS=(); [ "${PIN:-0}" = 1 ] && LG_THREADS=(-t 1)
for s in $SHARDS; do
    name="$TAG-shards$s"
    (cd "$WORK" && exec "${SRV_PIN[@]}" "$SERVER" --bind 127.0.0.1 --port 0 --no-tls --history memory --msg-rate 0 \
        --shards "$s" --log-level warn > "$OUT/$name.server.log" 2>&1) &
    PID=$!
    ADDR=""
    for _ in $(seq 100); do
        ADDR=$(ss -ltnp 2>/dev/null | grep "pid=$PID," | grep -o '127.0.0.1:[0-9]*' | head -1)
        [ -n "$ADDR" ] && break; sleep 0.1
    done
    echo "== $name: loadgen run -a $ADDR -n $N --rooms 1 --rate $RATE --private-share 0 -d 15 --warmup 5 (load average $(cut -d' ' -f1 /proc/loadavg))" | tee -a "$OUT/commands.txt"
    "${LG_PIN[@]}" "$LOADGEN" run -a "$ADDR" --server-pid "$PID" -q --json "$OUT/$name.json" --hgrm "$OUT/$name.hgrm" \
        "${LG_THREADS[@]}" -n "$N" --rooms 1 --rate "$RATE" --private-share 0 -d 15 --warmup 5 --connect-timeout 120 > "$OUT/$name.txt" 2>&1 &
    LG=$!
    # Past connect and warm-up (bots join in about a second here).
    sleep 9
    perf stat -e task-clock,context-switches,cpu-migrations,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_writev,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_write -p "$PID" -o "$OUT/$name.perfstat.txt" -- sleep 8 &
    PS=$!
    perf record -e cpu-clock -F 999 -g -p "$PID" -o "$WORK/perf.data" -- sleep 8 > /dev/null 2>&1
    wait "$PS" "$LG"
    perf report -i "$WORK/perf.data" --stdio --no-children --sort dso,symbol -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -60 > "$OUT/$name.perf-report.txt"
    perf report -i "$WORK/perf.data" --stdio --children --sort symbol -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^$' | head -60 > "$OUT/$name.perf-children.txt"
    echo "   done" | tee -a "$OUT/commands.txt"
    kill -TERM "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=""; sleep 1
done
