#!/usr/bin/env bash
# Proves the Docker image on a machine that can reach no image registry (issue 16).
#
# The Dockerfile's two base images are build arguments (RUST_IMAGE, RUNTIME_IMAGE). Nothing can
# be pulled here, so this script makes both locally and then does what a user does:
#   1. bootstraps a minimal Debian (bookworm) root with debootstrap and `docker import`s it as the
#      runtime base;
#   2. makes a builder base from the same root plus gcc and this machine's Rust toolchain (the one
#      `rustc --print sysroot` names), imported the same way;
#   3. builds the image with the repository's Dockerfile and those two arguments;
#   4. starts it with the repository's docker-compose.yml (Debian's docker-compose), on free
#      loopback ports, connects a JSON client, sends a message and waits for its ACK;
#   5. restarts the container and finds that message replayed as history from the volume;
#   6. stops it (SIGTERM) and checks it exited 0 after a graceful shutdown;
#   7. removes the containers and the volume it made (the images stay, for a faster rerun).
#
# Needs root, docker (docker.io), debootstrap and docker-compose (apt-get install docker.io
# debootstrap docker-compose). Starts dockerd if none answers, and stops only that one.
# Steps 1-3 and the engine live in deploy/docker-lib.sh, shared with deploy/docker-cluster-proof.sh.
# Network use: the Debian mirror (debootstrap, apt-get in the builder root) and crates.io (cargo,
# inside the build). Everything the test client touches is on 127.0.0.1.
#
#   deploy/docker-proof.sh            # about 3 min of bootstrap + a release build in the container
#   MIRROR=http://deb.debian.org/debian SUITE=bookworm deploy/docker-proof.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECT=chatproof
. deploy/docker-lib.sh
trap lib_cleanup EXIT

start_engine
local_bases
build_image

compose_setup
CHAT_PORT=$(free_port)
METRICS_PORT=$(free_port)
compose_env="CHAT_BIND=127.0.0.1 CHAT_PORT=$CHAT_PORT METRICS_PORT=$METRICS_PORT NOFILE=$(engine_nofile)"

say "compose up (chat on 127.0.0.1:$CHAT_PORT, metrics on 127.0.0.1:$METRICS_PORT)"
compose up -d --no-build chat-server
container=$(compose ps -q chat-server)

probe=deploy/docker-probe.py
stamp="proof-$(date -u +%s)-$$"
say "send a message and wait for its ACK"
python3 "$probe" send 127.0.0.1 "$CHAT_PORT" "$stamp"

say "restart the container; the message must come back from the volume"
docker restart -t 10 "$container" >/dev/null
python3 "$probe" replay 127.0.0.1 "$CHAT_PORT" "$stamp"

say "graceful stop (SIGTERM)"
docker stop -t 10 "$container" >/dev/null
code=$(docker inspect -f '{{.State.ExitCode}}' "$container")
docker logs "$container" 2>&1 | tail -4
echo "exit code: $code"
[ "$code" = 0 ] || { echo "FAIL: the server did not exit 0 on SIGTERM"; exit 1; }
say "PASS: image built from local bases, compose start, ACKed message kept across a restart, graceful stop"
