#!/usr/bin/env bash
# Join storms (issue 15): N bots join one room as fast as they can, then chat; before vs after,
# interleaved (before 1, after 1, before 2, ...) so that the shared machine's noise hits both.
#   storm<N>:   measured 5 s starting the moment the last bot joined (the storm's aftermath).
#   settled<N>: the same, but measured 5 s starting 20 s after the last join (joined long before).
# Frames per member come from the bots' counters (messages.system + messages.presence, whole run).
# Usage: results/scripts/presence-storm.sh OUT_DIR BEFORE_SERVER AFTER_SERVER LOADGEN [REPEATS [FIRST]]
#        ONLY="storm1000 settled1000" limits the scenarios; RATE (default 100 msgs/s) the chat load.
# Loopback only; every run is bounded by its duration and the load generator's timeouts; servers
# are started here and stopped by their own PID (see interleave.sh).
ONLY=${ONLY:-storm1000 settled1000}
RATE=${RATE:-100}
source "$(dirname "$0")/interleave.sh"

for n in 1000 6000; do
    scenario "storm$n" -n "$n" --rooms 1 --rate "$RATE" --private-share 0 --warmup 0 -d 5 --connect-timeout 120
    scenario "settled$n" -n "$n" --rooms 1 --rate "$RATE" --private-share 0 --warmup 20 -d 5 --connect-timeout 120
done
