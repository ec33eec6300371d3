#!/usr/bin/env bash
# Side-by-side check that a change made the server no slower: two server binaries, the same load
# generator, interleaved runs (A B A B ...) so that the shared machine's noise hits both alike.
# Scenarios: 6,000 bots in one room at a steady rate; 2,000 bots in 100 rooms.
# Usage: results/scripts/before-after.sh OUT_DIR BEFORE_SERVER AFTER_SERVER LOADGEN [REPEATS [FIRST]]
#        ONLY="rooms100" ... runs only the named scenarios; FIRST numbers the runs from there
#        (to add repeats to a folder).
# Loopback only; every run is bounded by its duration and the load generator's timeouts; servers
# are started here and stopped by their own PID (see interleave.sh).
ONLY=${ONLY:-room6000 rooms100}
source "$(dirname "$0")/interleave.sh"

scenario room6000 -n 6000 --rooms 1 --rate 40 --private-share 0 -d 15 --warmup 5 --connect-timeout 120
scenario rooms100 -n 2000 --rooms 100 --rate 2000 -d 15 --warmup 5 --connect-timeout 60
