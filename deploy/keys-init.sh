#!/usr/bin/env bash
# hookline-keys-init: writes every signing key Hookline needs, once, and never overwrites one.
#
# Installed in the image as /usr/local/bin/hookline-keys-init. The docker compose one-shot
# service `signing-key` and the Kubernetes Job `hookline-keys` run it before sender and admin
# start, because those two mount the keys read-only and cannot create a missing one.
#
#   hookline-keys-init [KEY]              KEY defaults to $HOOKLINE_SIGNING_KEY
#   hookline-keys-init --secret-json NAME [KEY]
#                                         also prints a Kubernetes Secret NAME holding the files
#                                         (JSON, for `kubectl apply --server-side -f -`)
#
# The files, all beside KEY (sender and admin derive the names from HOOKLINE_SIGNING_KEY):
#   KEY                    RSA-2048 private key, `copernica` profile. Created by
#                          `hookline keys dns-record` when missing; that command also prints the
#                          keyId and the DNS TXT value.
#   KEY.ed25519.pem        Ed25519 private key (PKCS#8), the master the `standard-webhooks`
#                          profile derives every account's key from. No `hookline` command writes
#                          it on its own, so this script does: a random 32-byte seed in the
#                          PKCS#8 envelope `openssl genpkey -algorithm ED25519` writes.
#   KEY.keyring.json       retired RSA keys, published until they expire. Written only by
#                          `hookline keys rotate`; never created here.
#   KEY.ed25519.keyring.json  retired Ed25519 masters, still signing and published until they
#                          expire. Written only by `hookline keys rotate-ed25519`.
#
# Every file is written to a temporary name and hard-linked into place, which fails when the
# file exists: two runs at once never overwrite each other's key. Mode 0600 (umask 077).
set -euo pipefail
umask 077

secret_name=""
if [ "${1:-}" = "--secret-json" ]; then
  secret_name="${2:?--secret-json needs the name of the Secret}"
  shift 2
fi
key="${1:-${HOOKLINE_SIGNING_KEY:-}}"
if [ -z "$key" ]; then
  echo "hookline-keys-init: no key path: pass it or set HOOKLINE_SIGNING_KEY" >&2
  exit 2
fi
dir="$(dirname "$key")"
mkdir -p "$dir"

# Puts stdin at $1 unless something is there already (then leaves it alone).
install_new() {
  local dest="$1" tmp
  tmp="$(mktemp "$dest.tmp-XXXXXX")"
  cat >"$tmp"
  if ln "$tmp" "$dest" 2>/dev/null; then
    echo "hookline-keys-init: wrote $dest" >&2
  else
    echo "hookline-keys-init: $dest exists; left as it is" >&2
  fi
  rm -f "$tmp"
}

# RSA: `hookline keys dns-record` loads the key, generating it (mode 0600, whole or not at all)
# when the file is missing. Its two output lines (keyId, TXT value) go to stderr, so that
# stdout stays free for --secret-json.
hookline keys dns-record --signing-key "$key" >&2

# Ed25519: PKCS#8 v1 = SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING {
# OCTET STRING (32-byte seed) } }. The 16 bytes below are that fixed prefix (RFC 8410, section 7).
ed="$key.ed25519.pem"
if [ ! -e "$ed" ]; then
  {
    echo "-----BEGIN PRIVATE KEY-----"
    { printf '\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20'
      head -c 32 /dev/urandom; } | base64 -w 64
    echo "-----END PRIVATE KEY-----"
  } | install_new "$ed"
else
  echo "hookline-keys-init: $ed exists; left as it is" >&2
fi

if [ -n "$secret_name" ]; then
  # One data entry per file that exists, named like the file (the pods mount the whole Secret,
  # so each entry appears under its own name beside the others).
  printf '{"apiVersion":"v1","kind":"Secret","type":"Opaque",'
  printf '"metadata":{"name":"%s","labels":{"app.kubernetes.io/name":"hookline","app.kubernetes.io/part-of":"hookline"}},' "$secret_name"
  printf '"data":{'
  sep=""
  base="$(basename "$key")"
  for f in "$key" "$ed" "$key.keyring.json" "$key.ed25519.keyring.json"; do
    [ -e "$f" ] || continue
    printf '%s"%s":"%s"' "$sep" "$base${f#"$key"}" "$(base64 -w 0 <"$f")"
    sep=","
  done
  printf '}}\n'
fi
