#!/usr/bin/env python3
"""A Hookline webhook receiver that verifies every POST before it trusts it.

    pip install cryptography
    python3 verify.py [LISTEN] [ADMIN_URL | PUBLIC_KEY.pem]

LISTEN is host:port (env LISTEN, default 127.0.0.1:8080). The public keys come from
<ADMIN_URL>/v1/keys (env HOOKLINE_ADMIN_URL, default http://127.0.0.1:9400), fetched at start
and again when a request names a keyId not seen yet (key rotation), or from a PEM file (env
PUBLIC_KEY_FILE). MAX_DATE_SKEW (seconds, default 60) bounds how far Date may be from now.
EXPECTED_ACCOUNT is your Hookline account id: the signed X-Copernica-ID must then be
account_<EXPECTED_ACCOUNT>, so a request Hookline signed for another account is rejected.

Each verified POST is answered 200 and printed as one JSON line on stdout; anything else is
answered 401 with the reason. This example reads JSON bodies (subscription format "json").
"""

import base64
import hashlib
import hmac
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.request
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

MAX_BODY = 5 * 1024 * 1024
# Without these in the signed list, the Digest or Date checks below would prove nothing.
REQUIRED_SIGNED = {"(request-target)", "host", "date", "digest"}


class Rejected(Exception):
    """Why a request is not accepted: the text goes back in the 401 answer."""


class Keys:
    """keyId -> public key, from the admin API or from one PEM file."""

    def __init__(self, source):
        self.source = source
        self.keys = {}
        self.fetched_at = 0.0
        self.lock = threading.Lock()
        if source.startswith(("http://", "https://")):
            self.fetch()
        else:
            with open(source, "rb") as f:
                # A single key from a file is used whatever keyId the request names.
                self.keys["*"] = serialization.load_pem_public_key(f.read())

    def fetch(self):
        url = self.source.rstrip("/") + "/v1/keys"
        with urllib.request.urlopen(url, timeout=10) as resp:
            listed = json.load(resp)
        self.keys = {
            k["key_id"]: serialization.load_pem_public_key(k["public_key_pem"].encode())
            for k in listed
            if k.get("algorithm") == "rsa-sha256"
        }
        self.fetched_at = time.monotonic()

    def get(self, key_id):
        with self.lock:
            if key_id not in self.keys and "*" not in self.keys:
                # A new keyId: the keys may have rotated. At most one fetch per 10 s, so that
                # made-up keyIds cannot make us hammer the admin API.
                if time.monotonic() - self.fetched_at > 10:
                    try:
                        self.fetch()
                    except OSError as e:
                        print(f"fetching keys failed: {e}", file=sys.stderr, flush=True)
            return self.keys.get(key_id) or self.keys.get("*")


def parse_signature(value):
    """keyId="…",algorithm="…",headers="…",signature="…" -> dict."""
    if not value:
        raise Rejected("no Signature header")
    params = dict(re.findall(r'(\w+)="([^"]*)"', value))
    for name in ("keyId", "signature"):
        if name not in params:
            raise Rejected(f"Signature header has no {name}")
    params.setdefault("algorithm", "rsa-sha256")
    params.setdefault("headers", "date")
    return params


def verify(method, target, headers, body, keys, max_skew, account=None):
    """Checks the request; returns the keyId it was signed with, or raises Rejected."""
    sig = parse_signature(headers.get("Signature"))
    if sig["algorithm"].lower() != "rsa-sha256":
        raise Rejected(f"unsupported algorithm {sig['algorithm']}")
    signed = sig["headers"].lower().split()
    # Hookline signs for every account with the same RSA key: the signed X-Copernica-ID says
    # which account a request is for.
    missing = (REQUIRED_SIGNED | ({"x-copernica-id"} if account else set())) - set(signed)
    if missing:
        raise Rejected(f"signature does not cover {' '.join(sorted(missing))}")

    # 1. The signing string: one "name: value" line per listed header, joined by "\n".
    lines = []
    for name in signed:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
        else:
            value = headers.get(name)
            if value is None:
                raise Rejected(f"signed header {name} is missing")
            lines.append(f"{name}: {value.strip()}")
    signing_string = "\n".join(lines).encode()

    # 2. The signature, with the key the request names.
    key = keys.get(sig["keyId"])
    if key is None:
        raise Rejected(f"unknown keyId {sig['keyId']}")
    try:
        signature = base64.b64decode(sig["signature"], validate=True)
        key.verify(signature, signing_string, padding.PKCS1v15(), hashes.SHA256())
    except (ValueError, InvalidSignature):
        raise Rejected("signature does not verify") from None

    # 3. The body: Digest (now known to be authentic) must match the raw bytes received.
    token, _, value = headers.get("Digest", "").partition("=")
    expected = base64.b64encode(hashlib.sha256(body).digest()).decode()
    if token.strip().lower() != "sha-256" or not hmac.compare_digest(value.strip(), expected):
        raise Rejected("Digest does not match the body")

    # 4. Freshness: a captured request cannot be replayed later.
    try:
        sent = parsedate_to_datetime(headers.get("Date")).timestamp()
    except (TypeError, ValueError):
        raise Rejected("Date is not a valid HTTP date") from None
    if abs(time.time() - sent) > max_skew:
        raise Rejected(f"Date is more than {max_skew:g} s from now")

    # 5. The account: the signed X-Copernica-ID must be ours, else the request was signed for
    #    another account (and replayed to us).
    if account and headers.get("X-Copernica-ID", "").strip() != f"account_{account}":
        raise Rejected(
            f"X-Copernica-ID is {headers.get('X-Copernica-ID')!r}, not account_{account}: "
            "signed for another account"
        )
    return sig["keyId"]


class Handler(BaseHTTPRequestHandler):
    keys = None
    max_skew = 60.0
    account = None

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or -1)
        if not 0 <= length <= MAX_BODY:
            return self.answer(411 if length < 0 else 413, "need a Content-Length up to 5 MB")
        body = self.rfile.read(length)  # the raw bytes: verify these, parse only afterwards
        try:
            key_id = verify(
                "POST", self.path, self.headers, body, self.keys, self.max_skew, self.account
            )
        except Rejected as e:
            print(f"rejected {self.path}: {e}", file=sys.stderr, flush=True)
            return self.answer(401, str(e))

        if not self.headers.get("Content-Type", "").startswith("application/json"):
            return self.answer(415, "this receiver reads JSON: set the subscription's format to json")
        try:
            event = json.loads(body)
        except ValueError:
            return self.answer(400, "the body is not JSON")
        # Your code goes here. Deliveries are at least once: drop one whose
        # X-Hookline-Delivery you have already handled.
        print(
            json.dumps(
                {
                    "verified": True,
                    "key_id": key_id,
                    "delivery": self.headers.get("X-Hookline-Delivery"),
                    "event": event.get("id") if isinstance(event, dict) else None,
                }
            ),
            flush=True,  # stdout may be a pipe: do not let the line sit in a buffer
        )
        self.answer(200, "ok")

    def answer(self, status, text):
        data = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    listen = (sys.argv[1:2] or [os.environ.get("LISTEN", "127.0.0.1:8080")])[0]
    source = (sys.argv[2:3] or [os.environ.get("PUBLIC_KEY_FILE") or ""])[0]
    source = source or os.environ.get("HOOKLINE_ADMIN_URL", "http://127.0.0.1:9400")
    host, _, port = listen.rpartition(":")
    Handler.keys = Keys(source)
    Handler.max_skew = float(os.environ.get("MAX_DATE_SKEW", "60"))
    Handler.account = os.environ.get("EXPECTED_ACCOUNT") or None
    if not Handler.account:
        print("warning: EXPECTED_ACCOUNT is not set, so requests signed for any account verify",
              file=sys.stderr, flush=True)
    host = host.strip("[]")
    if ":" in host:  # an IPv6 address such as ::1
        ThreadingHTTPServer.address_family = socket.AF_INET6
    server = ThreadingHTTPServer((host, int(port)), Handler)
    print(f"verifying webhooks on http://{listen}/ with keys from {source}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
