# Hookline: the two commands of the quick start are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
# Where cargo puts its builds (the bench targets run the binary built by `--workspace --bins`:
# `cargo run -p hookline-bench` would build it again with the package's own feature set).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
export HOOKLINE_TANSU_BIN ?= $(shell scripts/broker.sh path)
# Every stage run by make (run, test, chaos, bench) talks to the local broker: its fetch waits.
export HOOKLINE_BROKER_PROFILE ?= local
# Seconds each fuzz target runs in `make fuzz`.
FUZZ_SECONDS ?= 30

.PHONY: all broker build install run test test-unit test-integration bench bench-full chaos fuzz deny lint fmt clean validate-deploy

all: build

## broker: install the local Kafka-compatible broker (Tansu) once per machine
broker:
	@scripts/broker.sh install

build:
	$(CARGO) build --workspace --bins

## install: the `hookline` command on the PATH (cargo's bin folder, usually ~/.cargo/bin)
install:
	$(CARGO) install --locked --path crates/cli

## run: the whole pipeline on the local broker with a verifying demo receiver; Ctrl-C (or
## SIGTERM to the pid in .run/run.pid, for a run in the background) stops it, exit code 0
run:
	@scripts/run-local.sh

## test: unit tests and end-to-end tests on the real local broker
test: broker
	$(CARGO) build --workspace --bins
	@log=$$(mktemp); set -o pipefail; \
	  $(CARGO) test --workspace --no-fail-fast 2>&1 | tee $$log; status=$$?; \
	  scripts/test-summary.sh $$log; rm -f $$log; exit $$status

## chaos: the long chaos run (20,000 records, two instances per group, broker restarts); prints
## the table docs/reliability.md records, then runs every fuzz target for CHAOS_FUZZ_SECONDS.
## CHAOS_EVENTS, CHAOS_INSTANCES, CHAOS_SEED change the run.
CHAOS_EVENTS ?= 20000
CHAOS_INSTANCES ?= 2
CHAOS_SEED ?= 7
# Seconds each fuzz target runs at the end of `make chaos`.
CHAOS_FUZZ_SECONDS ?= 20
chaos: broker
	$(CARGO) build --workspace --bins
	HOOKLINE_CHAOS_EVENTS=$(CHAOS_EVENTS) HOOKLINE_CHAOS_INSTANCES=$(CHAOS_INSTANCES) \
	  HOOKLINE_CHAOS_BROKER_RESTARTS=1 HOOKLINE_CHAOS_SEED=$(CHAOS_SEED) \
	  $(CARGO) test -p hookline-integration-tests --test chaos -- --ignored --nocapture
	@FUZZ_SECONDS=$(CHAOS_FUZZ_SECONDS) scripts/fuzz.sh

## bench: the benchmark table (docs/benchmarks.md): signing, payload, routing, loopback POST and
## the pipeline as separate processes (idle cost, latency, CPU per delivery); about 5 minutes
bench: broker
	$(CARGO) build --release --workspace --bins
	$(TARGET_DIR)/release/hookline-bench

## bench-full: the same plus the join section with 1M- and 10M-profile tables; records the
## table in docs/benchmarks.md (the block between its hookline-bench markers)
bench-full: broker
	$(CARGO) build --release --workspace --bins
	$(TARGET_DIR)/release/hookline-bench --full --write docs/benchmarks.md

## fuzz: every cargo-fuzz target for FUZZ_SECONDS (30) each, on the stable toolchain (fuzz/README.md)
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

## deny: supply-chain check with cargo-deny (deny.toml; advisories need HOOKLINE_ADVISORY_DB)
deny:
	@scripts/ci-deny.sh

## validate-deploy: check compose, Kubernetes, KEDA, Dockerfile, alert rules and dashboard against their schemas and the code
validate-deploy:
	@scripts/validate-deploy.sh

## lint: formatting, clippy, and files and functions within their sizes (scripts/check-sizes.py)
lint:
	python3 scripts/check-sizes.py
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	rm -rf .run
	$(CARGO) clean
