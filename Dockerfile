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

############################################################################### build
FROM rust:1-bookworm AS builder

# rdkafka builds its bundled librdkafka with configure/make/gcc; aws-lc-sys needs cmake or a C
# compiler; perl and pkg-config are used by both build scripts. libssl-dev is only needed once the
# rdkafka `ssl` feature is enabled (TLS / SASL_SSL to Kafka, see deploy/README.md); it is here so
# that switching the feature on needs no change to this file.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        build-essential \
        cmake \
        perl \
        pkg-config \
        libssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Only what the build reads: the workspace manifests, the crates, the JSON schemas compiled in
# with include_str!, and the docs and tests folders (a workspace member and test fixtures). The
# local target/ and .git never enter the image (with BuildKit they are not even sent).
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY schemas ./schemas
COPY docs ./docs
COPY tests ./tests

# Cache mounts keep the crates.io downloads and the target directory between builds; the target
# directory lives only in the cache, so the binaries are copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
 && mkdir -p /out \
 && for bin in hookline hookline-tracking hookline-profiles hookline-sender hookline-admin; do \
        cp "target/release/$bin" /out/ ; \
    done

############################################################################### runtime
FROM debian:bookworm-slim

LABEL org.opencontainers.image.title="hookline" \
      org.opencontainers.image.description="Kafka-native webhook engine: tracking, profiles, sender, admin and the hookline CLI" \
      org.opencontainers.image.licenses="Apache-2.0"

# ca-certificates: the sender verifies customer endpoints' TLS certificates (and librdkafka can
# use the bundle for TLS to Kafka). libssl3 is what librdkafka links once built with `ssl`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 \
 && rm -rf /var/lib/apt/lists/*

# A fixed numeric non-root user, so Kubernetes' runAsNonRoot can verify it and volume ownership
# is predictable. /var/lib/hookline/keys is where docker compose keeps the generated signing
# key: a named volume mounted there starts out with this directory's owner and mode.
RUN groupadd --system --gid 10001 hookline \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/hookline \
        --no-create-home --shell /usr/sbin/nologin hookline \
 && mkdir -p /var/lib/hookline/keys \
 && chown -R 10001:10001 /var/lib/hookline \
 && chmod 0700 /var/lib/hookline/keys

COPY --from=builder /out/ /usr/local/bin/

USER 10001:10001
WORKDIR /var/lib/hookline

# Admin API, then the metrics/health ports of tracking, profiles, sender, admin (documentation
# only: each binary listens where HOOKLINE_ADMIN_ADDR / HOOKLINE_METRICS_ADDR say).
EXPOSE 9400 9461 9462 9463 9464

# No ENTRYPOINT: each service runs its binary as PID 1 (exec form), so SIGTERM reaches it and
# the stage finishes its batch, commits and exits 0.
CMD ["hookline", "--help"]
