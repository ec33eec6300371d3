# chat-server container image: built with the official Rust image, run on distroless as a
# non-root user (uid 65532). See docs/OPERATIONS.md ("Docker").
#
#   docker build -t chatproto/chat-server .
#   docker run -d --name chat -p 5555:5555 -v chatdata:/data --ulimit nofile=65536:65536 chatproto/chat-server
#
# Everything persistent lives under /data (a volume): certs/ (generated self-signed on first start
# when missing; put your own server.crt and server.key there), history.db, accounts.db, files/.
# The server reads /etc/chatproto/chat-server.toml: the repository's chat-server.example.toml with
# container paths filled in. Mount your own file over it, or append flags (they win over the file):
#   docker run ... chatproto/chat-server --tls-only --log-level debug

# No `# syntax=` line: it would pull a frontend image from Docker Hub, which an air-gapped site
# cannot reach; the frontend built into Docker 20.10+ reads everything used here (cache mounts).
#
# The base images are build arguments, so a site without a registry can use local ones:
#   docker build --build-arg RUST_IMAGE=my/rust --build-arg RUNTIME_IMAGE=my/debian .
# deploy/docker-proof.sh makes both with debootstrap and proves the image end to end.
ARG RUST_IMAGE=rust:1-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# Keep symbol names (readable panics) but not the debug info the release profile asks for.
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    CARGO_TERM_COLOR=never
COPY . .
# Dependency caching: the crates.io registry and the target directory live in BuildKit cache
# mounts, so a rebuild after a source change recompiles only chatproto, not its ~100
# dependencies. (The "stub sources, build deps, copy real sources" layer trick would have to
# list every bin, test and bench target of both workspace members and break when one is added.)
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin chat-server \
 && install -D -m 0755 target/release/chat-server /out/usr/local/bin/chat-server
# The image's config file, and the data directory owned by the runtime user.
RUN mkdir -p /out/etc/chatproto /out/data/certs \
 && sed -e 's|^#bind = .*|bind = "0.0.0.0"|' \
        -e 's|^#cert = .*|cert = "/data/certs/server.crt"|' \
        -e 's|^#key = .*|key = "/data/certs/server.key"|' \
        -e 's|^#metrics = .*|metrics = "0.0.0.0:9555"|' \
        -e 's|^#data_dir = .*|data_dir = "/data"|' \
        chat-server.example.toml > /out/etc/chatproto/chat-server.toml \
 && chown -R 65532:65532 /out/data

FROM ${RUNTIME_IMAGE}
COPY --from=builder /out/usr/local/bin/chat-server /usr/local/bin/chat-server
COPY --from=builder /out/etc/chatproto/ /etc/chatproto/
COPY --from=builder --chown=65532:65532 /out/data/ /data/
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
# 5555: ChatProto (binary and JSON, plain and TLS). 9555: Prometheus metrics (/metrics).
EXPOSE 5555 9555
# SIGTERM: graceful shutdown (clients told, queues flushed), exit 0 within 5 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/chat-server", "--config", "/etc/chatproto/chat-server.toml"]
CMD []
