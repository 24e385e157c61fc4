# syntax=docker/dockerfile:1
# Stoker's two images from one build (see docs/kubernetes.md):
#
#   docker build --target operator -t REGISTRY/stoker-operator:0.1.0 .
#   docker build --target agent    -t REGISTRY/stoker-agent:0.1.0 .
#
# Both run as a non-root user (65532) on a minimal file system taken from Debian: the C library
# and what the binaries link, the CA certificates (Git and gateways over HTTPS), `ssh` and `sh`
# (Git over SSH runs `sh -c "ssh …"`) with their libraries and the Debian copyright files of
# everything copied; no package manager, no other tools. Needs BuildKit (the default builder of
# current Docker and Podman/Buildah) for the cache mounts.
#
# Two build arguments, both for machines that cannot pull from a registry (hack/images.sh):
#   BASE       the Debian the runtime files are taken from (default debian:trixie-slim); any
#              Debian with apt works
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

# --- the runtime's files, collected from Debian into /rootfs ---
# Debian's slim image with apt, dpkg, perl and coreutils made most of an image's size (36 of
# 48 MB compressed): the images carry only what runs. Libraries are found with ldd, so the list
# follows the binaries and the Debian release. `/etc/passwd` names user 65532 (ssh refuses to
# run for a user it cannot look up); /tmp is HOME and writable.
FROM ${BASE} AS rootfs
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates openssh-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=binaries /out/ /tmp/binaries/
RUN set -eu; r=/rootfs; \
    mkdir -p "$r/usr/bin" "$r/usr/lib" "$r/etc/ssl/certs" "$r/tmp" "$r/usr/share/doc"; \
    chmod 1777 "$r/tmp"; \
    for d in bin sbin lib lib32 lib64 libx32; do \
      if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$r/$d"; mkdir -p "$r/$(readlink -f "/$d")"; fi; \
    done; \
    files=$(for f in /bin/sh /usr/bin/ssh /tmp/binaries/*; do \
      ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'; \
    done | sort -u); \
    for f in /bin/sh /usr/bin/ssh $files; do cp -L --parents "$f" "$r"; done; \
    cp /etc/ssl/certs/ca-certificates.crt "$r/etc/ssl/certs/"; \
    for f in /bin/sh /usr/bin/ssh $files /etc/ssl/certs/ca-certificates.crt; do \
      dpkg -S "$f" 2>/dev/null || dpkg -S "$(readlink -f "$f")" 2>/dev/null || true; \
    done | cut -d: -f1 | sort -u | while read -r pkg; do \
      if [ -f "/usr/share/doc/$pkg/copyright" ]; then \
        mkdir -p "$r/usr/share/doc/$pkg" && cp "/usr/share/doc/$pkg/copyright" "$r/usr/share/doc/$pkg/"; \
      fi; \
    done; \
    printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nstoker:x:65532:65532:stoker:/tmp:/usr/sbin/nologin\n' >"$r/etc/passwd"; \
    printf 'root:x:0:\nstoker:x:65532:\n' >"$r/etc/group"; \
    test -x "$r/usr/bin/ssh" && test -s "$r/etc/ssl/certs/ca-certificates.crt"

# --- runtime base: those files alone ---
FROM scratch AS runtime
COPY --from=rootfs /rootfs/ /
ENV HOME=/tmp PATH=/usr/local/bin:/usr/bin:/bin

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
