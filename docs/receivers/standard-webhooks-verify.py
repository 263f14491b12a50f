#!/usr/bin/env python3
"""A receiver for Hookline subscriptions with "signature": "standard-webhooks".

    pip install cryptography
    python3 standard-webhooks-verify.py [LISTEN] [ADMIN_URL | whpk_...]

Standard Webhooks (https://www.standardwebhooks.com), asymmetric variant: every POST carries

    webhook-id: dlv_...            (the delivery id: the same for every attempt)
    webhook-timestamp: 1764065700  (unix seconds of this attempt)
    webhook-signature: v1a,<base64 Ed25519 signature of "{webhook-id}.{webhook-timestamp}.{body}">

and is checked against your account's Ed25519 public key, which needs no shared secret: the
`standard_webhooks` value ("whpk_<base64 of the 32-byte key>") of the entry with algorithm
"ed25519" in <ADMIN_URL>/v1/keys?account=<EXPECTED_ACCOUNT> (env HOOKLINE_ADMIN_URL, default
http://127.0.0.1:9400; EXPECTED_ACCOUNT is your Hookline account id), or given directly
(argument or env WEBHOOK_PUBLIC_KEY). Every account has its own key, so a request Hookline
signed for another account does not verify here. LISTEN is host:port (env LISTEN, default
127.0.0.1:8080). TOLERANCE (seconds, default 300, as the specification's libraries use) bounds
how far webhook-timestamp may be from now.

Each verified POST is answered 200 and printed as one JSON line on stdout; anything else is
answered 401 with the reason. This example reads JSON bodies (subscription format "json").
"""

import base64
import binascii
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MAX_BODY = 5 * 1024 * 1024


class Rejected(Exception):
    """Why a request is not accepted: the text goes back in the 401 answer."""


def parse_whpk(value):
    """whpk_<base64> -> Ed25519PublicKey."""
    value = value.strip()
    if value.startswith("whpk_"):
        value = value[len("whpk_"):]
    raw = base64.b64decode(value, validate=True)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


class Keys:
    """The trusted Ed25519 public keys: from the admin API, or one whpk_ value."""

    def __init__(self, source, account=None):
        self.source = source
        self.account = account
        self.keys = []
        self.fetched_at = 0.0
        self.lock = threading.Lock()
        if source.startswith(("http://", "https://")):
            self.fetch()
        else:
            self.keys = [parse_whpk(source)]

    def fetch(self):
        if not self.account:
            raise SystemExit("set EXPECTED_ACCOUNT to your Hookline account id: every account "
                             "has its own Standard Webhooks key")
        query = urllib.parse.urlencode({"account": self.account})
        url = self.source.rstrip("/") + "/v1/keys?" + query
        with urllib.request.urlopen(url, timeout=10) as resp:
            listed = json.load(resp)
        # Only the ed25519 entry has a `standard_webhooks` value; the rsa-sha256 keys are for
        # the draft-cavage `Signature` of the "copernica" profile. Take only our account's key.
        self.keys = [
            parse_whpk(k["standard_webhooks"])
            for k in listed
            if k.get("algorithm") == "ed25519" and k.get("standard_webhooks")
            and k.get("account") == self.account
        ]
        self.fetched_at = time.monotonic()

    def current(self, refresh=False):
        with self.lock:
            # A signature that no known key verifies may come from a new key: fetch again, at
            # most once per 10 s, so that forgeries cannot make us hammer the admin API.
            if refresh and self.source.startswith("http") and time.monotonic() - self.fetched_at > 10:
                try:
                    self.fetch()
                except OSError as e:
                    print(f"fetching keys failed: {e}", file=sys.stderr, flush=True)
            return list(self.keys)


def verify(headers, body, keys, tolerance, now=None):
    """Checks the request; returns (webhook-id, timestamp), or raises Rejected."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    for name, value in (("webhook-id", msg_id), ("webhook-timestamp", timestamp),
                        ("webhook-signature", signatures)):
        if not value:
            raise Rejected(f"no {name} header")

    # 1. Freshness first: a captured request cannot be replayed later.
    try:
        sent = int(timestamp.strip())
    except ValueError:
        raise Rejected("webhook-timestamp is not integer unix seconds") from None
    now = time.time() if now is None else now
    if abs(now - sent) > tolerance:
        raise Rejected(f"webhook-timestamp is more than {tolerance:g} s from now")

    # 2. The signed content: id, timestamp and the raw body bytes, joined by full stops.
    content = f"{msg_id.strip()}.{sent}.".encode() + body

    # 3. Any v1a signature in the space-separated list that a trusted key verifies. Other
    #    versions (v1 is the symmetric HMAC variant) are not ours to check.
    candidates = []
    for entry in signatures.split():
        version, _, b64 = entry.partition(",")
        if version == "v1a":
            try:
                candidates.append(base64.b64decode(b64, validate=True))
            except (ValueError, binascii.Error):
                continue
    if not candidates:
        raise Rejected("webhook-signature has no v1a signature")
    for refresh in (False, True):
        for key in keys.current(refresh):
            for sig in candidates:
                try:
                    key.verify(sig, content)
                    return msg_id.strip(), sent
                except InvalidSignature:
                    pass
    raise Rejected("signature does not verify")


class Handler(BaseHTTPRequestHandler):
    keys = None
    tolerance = 300.0

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or -1)
        if not 0 <= length <= MAX_BODY:
            return self.answer(411 if length < 0 else 413, "need a Content-Length up to 5 MB")
        body = self.rfile.read(length)  # the raw bytes: verify these, parse only afterwards
        try:
            msg_id, sent = verify(self.headers, body, self.keys, self.tolerance)
        except Rejected as e:
            print(f"rejected {self.path}: {e}", file=sys.stderr, flush=True)
            return self.answer(401, str(e))

        if not self.headers.get("Content-Type", "").startswith("application/json"):
            return self.answer(415, "this receiver reads JSON: set the subscription's format to json")
        try:
            event = json.loads(body)
        except ValueError:
            return self.answer(400, "the body is not JSON")
        # Your code goes here. Deliveries are at least once: webhook-id is the idempotency key;
        # answer 200 again, without acting twice, for an id you have already handled.
        print(
            json.dumps(
                {
                    "verified": True,
                    "webhook_id": msg_id,
                    "timestamp": sent,
                    "delivery": self.headers.get("X-Hookline-Delivery"),
                    "attempt": self.headers.get("X-Hookline-Attempt"),
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
    source = (sys.argv[2:3] or [os.environ.get("WEBHOOK_PUBLIC_KEY") or ""])[0]
    source = source or os.environ.get("HOOKLINE_ADMIN_URL", "http://127.0.0.1:9400")
    host, _, port = listen.rpartition(":")
    account = os.environ.get("EXPECTED_ACCOUNT") or None
    Handler.keys = Keys(source, account)
    if not Handler.keys.keys:
        sys.exit(f"no ed25519 key of account {account} at {source}/v1/keys")
    Handler.tolerance = float(os.environ.get("TOLERANCE", "300"))
    host = host.strip("[]")
    if ":" in host:  # an IPv6 address such as ::1
        ThreadingHTTPServer.address_family = socket.AF_INET6
    server = ThreadingHTTPServer((host, int(port)), Handler)
    shown = source if source.startswith("http") else "the given whpk_ key"
    print(f"verifying Standard Webhooks on http://{listen}/ with {shown}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
