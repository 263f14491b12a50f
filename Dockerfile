# syntax=docker/dockerfile:1
#
# Hookline: one image holding all five binaries (hookline-tracking, hookline-profiles,
# hookline-sender, hookline-admin and the `hookline` CLI). Every service picks its binary as its
# command; the image has no ENTRYPOINT.
#
#   docker build -t hookline:0.1.0 .
#   docker run --rm hookline:0.1.0 hookline-sender --help
#
# See deploy/README.md for running it with docker compose or on Kubernetes.

# Base images are pinned to exact version tags; the builder's Rust must be at least the
# workspace's rust-version (Cargo.toml). To pin by digest as well, append `@sha256:...` as
# `docker buildx imagetools inspect <image>:<tag>` prints it, and let a bot (Renovate,
# Dependabot) keep tag and digest current.
ARG RUST_IMAGE=rust:1.95.0-bookworm
ARG RUNTIME_IMAGE=debian:12.11-slim

############################################################################### build
FROM ${RUST_IMAGE} AS builder

# rdkafka builds its bundled librdkafka with configure/make/gcc; aws-lc-sys needs cmake or a C
# compiler; perl and pkg-config are used by both build scripts. libssl-dev: the workspace enables
# rdkafka's `ssl` feature (TLS, SASL_SSL and SCRAM to Kafka), which links the system OpenSSL.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential \
        cmake \
        perl \
        pkg-config \
        libssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Only what the build reads: the workspace manifests, the crates, the JSON schemas and docs
# compiled in with include_str!, and the tests folder (a workspace member). .dockerignore keeps
# target/, .git, local state and key files out of the build context altogether.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY schemas ./schemas
COPY docs ./docs
COPY tests ./tests

# Cache mounts keep the crates.io downloads and the target directory between builds; the target
# directory lives only in the cache, so the binaries are copied out in the same step. The
# binaries are stripped of symbols (CARGO_PROFILE_RELEASE_STRIP): the image gets smaller and
# panics still print their message and location.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked \
 && mkdir -p /out \
 && for bin in hookline hookline-tracking hookline-profiles hookline-sender hookline-admin; do \
        cp "target/release/$bin" /out/ ; \
    done

############################################################################### runtime
FROM ${RUNTIME_IMAGE}

LABEL org.opencontainers.image.title="hookline" \
      org.opencontainers.image.description="Kafka-native webhook engine: tracking, profiles, sender, admin and the hookline CLI" \
      org.opencontainers.image.licenses="Apache-2.0"

# ca-certificates: the sender verifies customer endpoints' TLS certificates (and librdkafka can
# use the bundle for TLS to Kafka). libssl3 is the OpenSSL librdkafka is linked with (`ssl`).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/*

# A fixed numeric non-root user, so Kubernetes' runAsNonRoot can verify it and volume ownership
# is predictable. docker compose mounts named volumes at /var/lib/hookline/keys (the signing
# keys) and /var/lib/hookline/state (a join stage's table, HOOKLINE_STATE_DIR); a new named
# volume starts out with the owner and mode of the image's directory, so both exist here.
RUN groupadd --system --gid 10001 hookline \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/hookline \
        --no-create-home --shell /usr/sbin/nologin hookline \
 && mkdir -p /var/lib/hookline/keys /var/lib/hookline/state \
 && chown -R 10001:10001 /var/lib/hookline \
 && chmod 0700 /var/lib/hookline/keys /var/lib/hookline/state

COPY --from=builder /out/ /usr/local/bin/
# Writes the RSA and Ed25519 signing keys once (compose `signing-key`, Kubernetes Job
# `hookline-keys`); see the script's header.
COPY --chmod=0755 deploy/keys-init.sh /usr/local/bin/hookline-keys-init

USER 10001:10001
WORKDIR /var/lib/hookline

# Admin API, then the metrics/health ports of tracking, profiles, sender, admin (documentation
# only: each binary listens where HOOKLINE_ADMIN_ADDR / HOOKLINE_METRICS_ADDR say).
EXPOSE 9400 9461 9462 9463 9464

# No ENTRYPOINT: each service runs its binary as PID 1 (exec form), so SIGTERM reaches it and
# the stage finishes its batch, commits and exits 0.
CMD ["hookline", "--help"]
