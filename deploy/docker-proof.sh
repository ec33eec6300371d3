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
# Network use: the Debian mirror (debootstrap, apt-get in the builder root) and crates.io (cargo,
# inside the build). Everything the test client touches is on 127.0.0.1.
#
#   deploy/docker-proof.sh            # about 3 min of bootstrap + a release build in the container
#   MIRROR=http://deb.debian.org/debian SUITE=bookworm deploy/docker-proof.sh
set -euo pipefail
cd "$(dirname "$0")/.."

MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
WORK=${WORK:-target/docker-proof}
BASE=chatproto-local/debian:$SUITE
RUST=chatproto-local/rust:$SUITE
IMAGE=chatproto/chat-server:latest
PROJECT=chatproof
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

say() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

started_dockerd=""
cleanup() {
    set +e
    if [ -n "${compose_env:-}" ]; then
        env $compose_env docker-compose -p "$PROJECT" down -v --remove-orphans >/dev/null 2>&1
    fi
    if [ -n "$started_dockerd" ]; then
        kill "$started_dockerd" 2>/dev/null
        wait "$started_dockerd" 2>/dev/null
    fi
}
trap cleanup EXIT

say "docker engine"
if ! docker info >/dev/null 2>&1; then
    /usr/sbin/dockerd >"$WORK/dockerd.log" 2>&1 &
    started_dockerd=$!
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
fi
docker version --format 'client {{.Client.Version}}, server {{.Server.Version}}'

say "runtime base $BASE (debootstrap $SUITE from $MIRROR)"
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase "$SUITE" "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
        { tail -20 "$WORK/debootstrap.log"; exit 1; }
    tar -C "$WORK/rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' - "$BASE"
fi
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$BASE"

say "builder base $RUST (the base + gcc + this machine's Rust toolchain)"
if ! docker image inspect "$RUST" >/dev/null 2>&1; then
    [ -d "$WORK/rootfs" ] || { echo "the runtime root is gone: rm the $BASE image and rerun"; exit 1; }
    rm -rf "$WORK/builder"
    cp -a "$WORK/rootfs" "$WORK/builder"
    cp /etc/resolv.conf "$WORK/builder/etc/resolv.conf"
    chroot "$WORK/builder" apt-get update -qq
    chroot "$WORK/builder" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends gcc libc6-dev ca-certificates >/dev/null
    chroot "$WORK/builder" apt-get clean
    # This machine's own trust anchors too (a site's TLS-inspecting proxy, say), so that cargo in
    # the build reaches crates.io the way this machine does.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$WORK/builder/usr/local/share/ca-certificates/"
        chroot "$WORK/builder" update-ca-certificates >/dev/null
    fi
    sysroot=$(rustc --print sysroot)
    mkdir -p "$WORK/builder/usr/local/rust" "$WORK/builder/usr/local/cargo"
    tar -C "$sysroot" --exclude=./share/doc -c . | tar -C "$WORK/builder/usr/local/rust" -x
    tar -C "$WORK/builder" -c . | docker import \
        -c 'ENV CARGO_HOME=/usr/local/cargo' \
        -c 'ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        - "$RUST"
fi
docker run --rm "$RUST" rustc --version

say "build $IMAGE with the repository's Dockerfile"
# The Dockerfile needs BuildKit (cache mounts). A newer docker CLI wants the buildx plugin for
# that, which Debian 12 does not package; docker.io's own 20.10 CLI has BuildKit built in.
build_cli=docker
if ! docker buildx version >/dev/null 2>&1 && [ -x /usr/bin/docker ]; then build_cli=/usr/bin/docker; fi
# --network host: the build's cargo fetches crates through this machine's own route.
DOCKER_BUILDKIT=1 $build_cli build --network host \
    --build-arg RUST_IMAGE="$RUST" --build-arg RUNTIME_IMAGE="$BASE" \
    -t "$IMAGE" . 2>&1 | tail -15
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$IMAGE"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CHAT_PORT=$(free_port)
METRICS_PORT=$(free_port)
# The container's open-files limit may not exceed the engine's: take dockerd's own hard limit.
dockerd_pid=$(pgrep -o -x dockerd || true)
NOFILE=$(awk '/Max open files/ {print $5}' "/proc/${dockerd_pid:-self}/limits")
case "$NOFILE" in '' | *[!0-9]*) NOFILE=65536 ;; esac
[ "$NOFILE" -gt 65536 ] && NOFILE=65536
compose_env="CHAT_BIND=127.0.0.1 CHAT_PORT=$CHAT_PORT METRICS_PORT=$METRICS_PORT NOFILE=$NOFILE"

say "docker-compose up (chat on 127.0.0.1:$CHAT_PORT, metrics on 127.0.0.1:$METRICS_PORT)"
env $compose_env docker-compose -p "$PROJECT" up -d --no-build
container=$(env $compose_env docker-compose -p "$PROJECT" ps -q chat-server)

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
