# Shared steps of deploy/docker-proof.sh (one server) and deploy/docker-cluster-proof.sh (the
# compose cluster profile). Sourced, not run: the caller sets `set -euo pipefail`, cds to the
# repository root, sets PROJECT (the compose project name) and calls `lib_cleanup` from its EXIT trap.
#
# What it does for them, on a machine that can reach no image registry:
#   start_engine     start dockerd if none answers (and remember it, to stop only that one)
#   local_bases      the runtime base (debootstrap + docker import) and the builder base (that root +
#                    gcc + this machine's Rust toolchain), each made only when missing
#   build_image      the chat-server image from the repository's Dockerfile on those bases
#   compose_setup    picks `docker compose` or `docker-compose`; `compose ...` then runs it for PROJECT
#                    with the variables in compose_env
#   free_port, engine_nofile
# Network use: the Debian mirror (debootstrap, apt-get in the builder root) and crates.io (cargo,
# inside the build).

MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
WORK=${WORK:-target/docker-proof}
BASE=chatproto-local/debian:$SUITE
RUST=chatproto-local/rust:$SUITE
IMAGE=chatproto/chat-server:latest
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

say() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

started_dockerd=""
compose_env=""
# Removes the project's containers, networks and volumes (when compose was set up) and stops the
# dockerd this script started, if any.
lib_cleanup() {
    set +e
    if [ -n "${COMPOSE:-}" ]; then
        compose down -v --remove-orphans >/dev/null 2>&1
    fi
    if [ -n "$started_dockerd" ]; then
        kill "$started_dockerd" 2>/dev/null
        wait "$started_dockerd" 2>/dev/null
    fi
}

start_engine() {
    say "docker engine"
    if ! docker info >/dev/null 2>&1; then
        /usr/sbin/dockerd >"$WORK/dockerd.log" 2>&1 &
        started_dockerd=$!
        for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    fi
    docker version --format 'client {{.Client.Version}}, server {{.Server.Version}}'
}

local_bases() {
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
        # This machine's own trust anchors too (a site's TLS-inspecting proxy, say), so that cargo
        # in the build reaches crates.io the way this machine does.
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
}

# `docker build` with BuildKit. The Dockerfiles need it (cache mounts). A newer docker CLI wants
# the buildx plugin for that, which Debian 12 does not package; docker.io's own 20.10 CLI has
# BuildKit built in. --network host: the build fetches crates (or packages) through this
# machine's own route.
buildkit() {
    local cli=docker
    if ! docker buildx version >/dev/null 2>&1 && [ -x /usr/bin/docker ]; then cli=/usr/bin/docker; fi
    DOCKER_BUILDKIT=1 $cli build --network host "$@"
}

build_image() {
    say "build $IMAGE with the repository's Dockerfile"
    buildkit --build-arg RUST_IMAGE="$RUST" --build-arg RUNTIME_IMAGE="$BASE" -t "$IMAGE" . 2>&1 | tail -15
    docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$IMAGE"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The containers' open-files limit may not exceed the engine's: dockerd's own hard limit, at most
# 65,536.
engine_nofile() {
    local pid n
    pid=$(pgrep -o -x dockerd || true)
    n=$(awk '/Max open files/ {print $5}' "/proc/${pid:-self}/limits")
    case "$n" in '' | *[!0-9]*) n=65536 ;; esac
    [ "$n" -gt 65536 ] && n=65536
    echo "$n"
}

# Docker Compose v2 (`docker compose`, the CLI plugin) where present, else v1 (`docker-compose`,
# Debian 12's package); both read the repository's docker-compose.yml.
compose_setup() {
    if docker compose version >/dev/null 2>&1; then COMPOSE="docker compose"; else COMPOSE=docker-compose; fi
    $COMPOSE version | sed -n 1p  # (sed reads it all: head would end compose with SIGPIPE)
}
compose() { env $compose_env $COMPOSE -p "$PROJECT" "$@"; }
