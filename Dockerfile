# syntax=docker/dockerfile:1
# Stoker's two images from one build (see docs/kubernetes.md):
#
#   docker build --target operator -t REGISTRY/stoker-operator:0.1.0 .
#   docker build --target agent    -t REGISTRY/stoker-agent:0.1.0 .
#
# Both run as a non-root user (65532) on Debian slim: ca-certificates for Git and gateways over
# HTTPS, openssh-client because Git over SSH runs the system `ssh`. Needs BuildKit (the default
# builder of current Docker and Podman/Buildah) for the cache mounts.
#
# Two build arguments, both for machines that cannot pull from a registry (hack/images.sh):
#   BASE       the runtime base image (default debian:trixie-slim); any Debian with apt works
#   BINARIES   `build` (default) compiles in the Rust image below; `prebuilt` takes the binaries
#              from the build context's prebuilt/ directory instead (built on the host with
#              `cargo build --release --locked`), so no Rust image is needed
ARG BASE=debian:trixie-slim
ARG BINARIES=build

# --- build: both binaries, release profile, the committed Cargo.lock ---
FROM rust:1.95-trixie AS build
# aws-lc-rs (rustls' crypto provider) builds C code; cmake covers older aws-lc-sys build paths.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p stoker-operator -p stoker-agent \
    && mkdir -p /out \
    && cp target/release/stoker-operator target/release/stoker-agent /out/

# --- or: binaries built outside the image (BINARIES=prebuilt), from the context's prebuilt/ ---
FROM scratch AS prebuilt
COPY prebuilt/stoker-operator prebuilt/stoker-agent /out/

# The stage the images copy the binaries from: `build` or `prebuilt`.
FROM ${BINARIES} AS binaries

# --- runtime base ---
FROM ${BASE} AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 stoker \
    && useradd --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin stoker
ENV HOME=/tmp

# --- the agent: `stoker-agent sidecar` in gateway pods (also `sync` and `run`) ---
FROM runtime AS agent
COPY --from=binaries /out/stoker-agent /usr/local/bin/stoker-agent
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/stoker-agent"]
CMD ["sidecar"]

# --- the operator (the default target) ---
FROM runtime AS operator
COPY --from=binaries /out/stoker-operator /usr/local/bin/stoker-operator
USER 65532:65532
EXPOSE 8081
ENTRYPOINT ["/usr/local/bin/stoker-operator"]
