#!/usr/bin/env bash
# Proves docker-compose.yml's cluster profile (NATS + nodes a and b, docs/CLUSTER.md) on a machine
# that can reach no image registry (issue 13).
#
#   1. the local base images and the chat-server image, as deploy/docker-proof.sh makes them
#      (deploy/docker-lib.sh; each base only when missing, the image with the build cache);
#   2. a NATS image from Debian's nats-server package on the local base (deploy/nats/Dockerfile,
#      NATS_IMAGE=chatproto-local/nats:bookworm); NATS_IMAGE=nats:2.10-alpine uses the official
#      one instead, which must be present (pulled);
#   3. `compose up` of the profile's nats, node-a and node-b on free loopback ports, and waits
#      until both nodes' metrics say they are connected to NATS;
#   4. alice on node a and bob on node b in one room: a room message crosses each way, the name
#      alice is refused on node b while held on a, a private message crosses each way;
#   5. alice held on node a, `docker kill` node a: node b refuses alice, then grants the name
#      within the cluster name TTL (CLUSTER_NAME_TTL, 10 s, plus 3 s for polling and the kill);
#   6. node a started again: it reconnects, and carol (a) and dave (b) chat across it as in 4;
#   7. node a's process SIGKILLed from the host (a crash, not a stop through Docker): the restart
#      policy starts it again, and erin (a) and frank (b) chat across it as in 4;
#   8. shows NATS's JetStream store (the name and room buckets) on the named volume, restarts
#      the NATS container: both nodes reconnect by themselves, grace (a) and heidi (b) chat
#      across as in 4, and no node had to make a bucket again (the store survived);
#   9. `compose stop`: both nodes (SIGTERM) and NATS (SIGINT) exit 0 after a graceful shutdown;
#  10. removes the containers, the network and the volumes it made (the images stay).
#
# Needs what deploy/docker-proof.sh needs (root, docker.io, debootstrap, docker-compose or the
# compose plugin). Starts dockerd if none answers, and stops only that one. Network use: the Debian
# mirror and crates.io, only while an image is missing or the source changed. All chat traffic is
# on 127.0.0.1. Rerunnable: about 40 s with the images present and the source unchanged (the
# build is a cache hit; BUILD=0 skips it); a changed source adds the release build in the
# container (4 min with the dependencies in BuildKit's cache, ~15 min from nothing on 2 cores),
# and a machine without the bases adds ~3 min of debootstrap.
#
#   deploy/docker-cluster-proof.sh
#   BUILD=0 deploy/docker-cluster-proof.sh                    # use chatproto/chat-server:latest as it is
#   NATS_IMAGE=nats:2.10-alpine deploy/docker-cluster-proof.sh  # where Docker Hub is reachable
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECT=chatcluster
. deploy/docker-lib.sh
began=$(date +%s)
hold_pid=""
cleanup() {
    if [ -n "$hold_pid" ]; then kill "$hold_pid" 2>/dev/null || true; fi
    lib_cleanup
}
trap cleanup EXIT

start_engine
local_bases
if [ "${BUILD:-1}" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    say "BUILD=0: using $IMAGE as it is"
    docker image ls --format '{{.Repository}}:{{.Tag}} {{.ID}} created {{.CreatedSince}}' "$IMAGE"
else
    build_image
fi

NATS_IMAGE=${NATS_IMAGE:-chatproto-local/nats:$SUITE}
say "NATS image $NATS_IMAGE"
case "$NATS_IMAGE" in
chatproto-local/*) # ours: built (a cache hit, once made) so that Dockerfile changes take effect
    buildkit --build-arg BASE_IMAGE="$BASE" -t "$NATS_IMAGE" deploy/nats 2>&1 | tail -3 ;;
*) docker image inspect "$NATS_IMAGE" >/dev/null 2>&1 ||
    { echo "FAIL: $NATS_IMAGE is not here (pull it, or leave NATS_IMAGE unset to build one)"; exit 1; } ;;
esac
docker run --rm "$NATS_IMAGE" --version

compose_setup
NODE_A_PORT=$(free_port)
NODE_B_PORT=$(free_port)
NODE_A_METRICS_PORT=$(free_port)
NODE_B_METRICS_PORT=$(free_port)
TTL=${CLUSTER_NAME_TTL:-10}
compose_env="COMPOSE_PROFILES=cluster NATS_IMAGE=$NATS_IMAGE CHAT_BIND=127.0.0.1 NOFILE=$(engine_nofile)
    NODE_A_PORT=$NODE_A_PORT NODE_B_PORT=$NODE_B_PORT CLUSTER_NAME_TTL=$TTL
    NODE_A_METRICS_PORT=$NODE_A_METRICS_PORT NODE_B_METRICS_PORT=$NODE_B_METRICS_PORT"
probe() { python3 deploy/docker-probe.py "$@"; }
# Waits up to 60 s for a line matching PATTERN in the container's log since SINCE (a Unix time,
# fractions allowed), and shows it.
wait_log() {
    local c=$1 since=$2 pattern=$3
    for _ in $(seq 1 120); do
        if line=$(docker logs --since "$since" "$c" 2>&1 | grep -m1 "$pattern"); then
            echo "$(docker inspect -f '{{.Name}}' "$c"): $line"
            return 0
        fi
        sleep 0.5
    done
    echo "FAIL: $(docker inspect -f '{{.Name}}' "$c") logged no '$pattern' since $since"
    exit 1
}
restarts() { docker inspect -f '{{.Name}}: running={{.State.Running}} restarts={{.RestartCount}} exit={{.State.ExitCode}}' "$@"; }

compose down -v --remove-orphans 2>/dev/null # what an interrupted earlier run may have left
say "compose up: nats, node a on 127.0.0.1:$NODE_A_PORT, node b on 127.0.0.1:$NODE_B_PORT (name TTL $TTL s)"
compose up -d --no-build nats node-a node-b
nats=$(compose ps -q nats)
node_a=$(compose ps -q node-a)
node_b=$(compose ps -q node-b)
probe ready 127.0.0.1 "$NODE_A_METRICS_PORT"
probe ready 127.0.0.1 "$NODE_B_METRICS_PORT"
restarts "$nats" "$node_a" "$node_b"
docker logs "$node_a" 2>&1 | grep -m2 -i 'cluster' || true

say "alice (node a) and bob (node b): room and private messages across nodes, alice refused on b"
probe cross 127.0.0.1 "$NODE_A_PORT" "$NODE_B_PORT" alice bob

say "docker kill node a while it holds alice; node b must grant alice within the TTL"
probe hold 127.0.0.1 "$NODE_A_PORT" alice >"$WORK/hold.out" 2>&1 &
hold_pid=$!
for _ in $(seq 1 120); do grep -q '^held' "$WORK/hold.out" && break; sleep 0.5; done
cat "$WORK/hold.out"
grep -q '^held' "$WORK/hold.out" || { echo "FAIL: alice was not held on node a"; exit 1; }
docker kill "$node_a" >/dev/null
echo "killed node a at $(date -u +%H:%M:%S.%N | cut -c1-12)"
probe claim 127.0.0.1 "$NODE_B_PORT" alice "$((TTL + 3))"
kill "$hold_pid" 2>/dev/null || true
wait "$hold_pid" 2>/dev/null || true
hold_pid=""
restarts "$node_a"

say "node a started again: it rejoins and chat crosses again"
compose start node-a
probe ready 127.0.0.1 "$NODE_A_METRICS_PORT"
probe cross 127.0.0.1 "$NODE_A_PORT" "$NODE_B_PORT" carol dave

say "node a crashes (its process SIGKILLed, not stopped through Docker): the restart policy brings it back"
before=$(docker inspect -f '{{.RestartCount}}' "$node_a")
kill -KILL "$(docker inspect -f '{{.State.Pid}}' "$node_a")"
for _ in $(seq 1 60); do
    [ "$(docker inspect -f '{{.RestartCount}}' "$node_a")" -gt "$before" ] && break
    sleep 0.5
done
restarts "$node_a"
[ "$(docker inspect -f '{{.RestartCount}}' "$node_a")" -gt "$before" ] ||
    { echo "FAIL: Docker did not restart the crashed node"; exit 1; }
probe ready 127.0.0.1 "$NODE_A_METRICS_PORT"
probe cross 127.0.0.1 "$NODE_A_PORT" "$NODE_B_PORT" erin frank

say "NATS's JetStream store on the named volume; NATS restarted: the nodes reconnect, the buckets survive"
docker inspect -f '{{range .Mounts}}{{.Type}} {{.Name}} -> {{.Destination}}{{println}}{{end}}' "$nats"
docker exec "$nats" sh -c 'ls -d /data/jetstream/*/streams/*'
since=$(date +%s.%N)
docker restart -t 10 "$nats" >/dev/null
for c in "$node_a" "$node_b"; do
    wait_log "$c" "$since" 'cluster: lost NATS'
    wait_log "$c" "$since" 'cluster: connected to NATS'
done
probe cross 127.0.0.1 "$NODE_A_PORT" "$NODE_B_PORT" grace heidi
# A node checks every TTL/3 that the buckets exist, makes a missing one again and says so: after
# one such check on each node, none may have had to.
sleep $((TTL / 3 + 2))
if docker logs --since "$since" "$node_a" 2>&1 | grep 'was gone from NATS' ||
    docker logs --since "$since" "$node_b" 2>&1 | grep 'was gone from NATS'; then
    echo "FAIL: a bucket did not survive the NATS restart"; exit 1
fi
echo "ok: no node had to make a bucket again (the store on the volume survived the restart)"

say "compose stop: the nodes (SIGTERM) and NATS (SIGINT) must exit 0 after a graceful shutdown"
compose stop
failed=0
for c in "$node_a" "$node_b" "$nats"; do
    docker logs "$c" 2>&1 | grep -E 'shutting down|chat_server: stopped|Initiating Shutdown|Server Exiting' | tail -2
    code=$(docker inspect -f '{{.State.ExitCode}}' "$c")
    echo "$(docker inspect -f '{{.Name}}' "$c") exit code: $code"
    [ "$code" = 0 ] || failed=1
done
[ "$failed" = 0 ] || { echo "FAIL: a container did not exit 0 on its stop signal"; exit 1; }
say "PASS: cluster profile from local images, chat/PM/names across nodes, a killed node's name freed within the TTL, node rejoined (by hand and by the restart policy), NATS restarted with its store, graceful stop ($(($(date +%s) - began)) s)"
