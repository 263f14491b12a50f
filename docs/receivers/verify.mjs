// A Hookline webhook receiver that verifies every POST before it trusts it. Node.js 18 or
// newer, built-in modules only.
//
//     node verify.mjs [LISTEN] [ADMIN_URL | PUBLIC_KEY.pem]
//
// LISTEN is host:port (env LISTEN, default 127.0.0.1:8080). The public keys come from
// <ADMIN_URL>/v1/keys (env HOOKLINE_ADMIN_URL, default http://127.0.0.1:9400), fetched at start
// and again when a request names a keyId not seen yet (key rotation), or from a PEM file (env
// PUBLIC_KEY_FILE). MAX_DATE_SKEW (seconds, default 60) bounds how far Date may be from now.
// EXPECTED_ACCOUNT is your Hookline account id: the signed X-Copernica-ID must then be
// account_<EXPECTED_ACCOUNT>, so a request Hookline signed for another account is rejected.
//
// Each verified POST is answered 200 and printed as one JSON line on stdout; anything else is
// answered 401 with the reason. This example reads JSON bodies (subscription format "json").

import { createHash, createPublicKey, timingSafeEqual, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

const MAX_BODY = 5 * 1024 * 1024;
// Without these in the signed list, the Digest or Date checks below would prove nothing.
const REQUIRED_SIGNED = ['(request-target)', 'host', 'date', 'digest'];

const listen = process.argv[2] || process.env.LISTEN || '127.0.0.1:8080';
const source = process.argv[3] || process.env.PUBLIC_KEY_FILE
  || process.env.HOOKLINE_ADMIN_URL || 'http://127.0.0.1:9400';
const maxSkew = Number(process.env.MAX_DATE_SKEW || 60);
const account = process.env.EXPECTED_ACCOUNT || '';
if (!account) {
  console.error('warning: EXPECTED_ACCOUNT is not set, so requests signed for any account verify');
}

class Rejected extends Error {}

// keyId -> public key. A single key from a file is used whatever keyId the request names.
let keys = new Map();
let fetchedAt = 0;

async function fetchKeys() {
  const url = `${source.replace(/\/+$/, '')}/v1/keys`;
  const lib = url.startsWith('https:') ? await import('node:https') : http;
  const text = await new Promise((resolve, reject) => {
    const req = lib.get(url, { timeout: 10_000 }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { data += chunk; });
      res.on('end', () => (res.statusCode === 200
        ? resolve(data)
        : reject(new Error(`GET ${url} answered ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
  keys = new Map(JSON.parse(text)
    .filter((k) => k.algorithm === 'rsa-sha256')
    .map((k) => [k.key_id, createPublicKey(k.public_key_pem)]));
  fetchedAt = Date.now();
}

async function keyFor(keyId) {
  if (!keys.has(keyId) && !keys.has('*') && Date.now() - fetchedAt > 10_000) {
    // A new keyId: the keys may have rotated. At most one fetch per 10 s, so that made-up
    // keyIds cannot make us hammer the admin API.
    await fetchKeys().catch((e) => console.error(`fetching keys failed: ${e.message}`));
  }
  return keys.get(keyId) || keys.get('*');
}

// keyId="…",algorithm="…",headers="…",signature="…" -> object.
function parseSignature(value) {
  if (!value) throw new Rejected('no Signature header');
  const params = { algorithm: 'rsa-sha256', headers: 'date' };
  for (const [, name, v] of value.matchAll(/(\w+)="([^"]*)"/g)) params[name] = v;
  for (const name of ['keyId', 'signature']) {
    if (!params[name]) throw new Rejected(`Signature header has no ${name}`);
  }
  return params;
}

// Checks the request; returns the keyId it was signed with, or throws Rejected.
// `headers` is Node's req.headers: names already lower-case.
async function verifyRequest(method, target, headers, body) {
  const sig = parseSignature(headers.signature);
  if (sig.algorithm.toLowerCase() !== 'rsa-sha256') {
    throw new Rejected(`unsupported algorithm ${sig.algorithm}`);
  }
  const signed = sig.headers.toLowerCase().split(/\s+/).filter(Boolean);
  // Hookline signs for every account with the same RSA key: the signed X-Copernica-ID says
  // which account a request is for.
  const required = account ? [...REQUIRED_SIGNED, 'x-copernica-id'] : REQUIRED_SIGNED;
  const missing = required.filter((h) => !signed.includes(h));
  if (missing.length) throw new Rejected(`signature does not cover ${missing.join(' ')}`);

  // 1. The signing string: one "name: value" line per listed header, joined by "\n".
  const lines = signed.map((name) => {
    if (name === '(request-target)') return `(request-target): ${method.toLowerCase()} ${target}`;
    const value = headers[name];
    if (value === undefined) throw new Rejected(`signed header ${name} is missing`);
    return `${name}: ${String(value).trim()}`;
  });

  // 2. The signature, with the key the request names.
  const key = await keyFor(sig.keyId);
  if (!key) throw new Rejected(`unknown keyId ${sig.keyId}`);
  // RSA keys verify with PKCS#1 v1.5 padding unless told otherwise.
  const ok = verify('sha256', Buffer.from(lines.join('\n')), key, Buffer.from(sig.signature, 'base64'));
  if (!ok) throw new Rejected('signature does not verify');

  // 3. The body: Digest (now known to be authentic) must match the raw bytes received.
  const digest = headers.digest || '';
  const eq = digest.indexOf('=');
  const expected = Buffer.from(createHash('sha256').update(body).digest('base64'));
  const got = Buffer.from(digest.slice(eq + 1).trim());
  if (eq < 0 || digest.slice(0, eq).trim().toLowerCase() !== 'sha-256'
      || got.length !== expected.length || !timingSafeEqual(got, expected)) {
    throw new Rejected('Digest does not match the body');
  }

  // 4. Freshness: a captured request cannot be replayed later.
  const sent = Date.parse(headers.date);
  if (Number.isNaN(sent)) throw new Rejected('Date is not a valid HTTP date');
  if (Math.abs(Date.now() - sent) > maxSkew * 1000) {
    throw new Rejected(`Date is more than ${maxSkew} s from now`);
  }

  // 5. The account: the signed X-Copernica-ID must be ours, else the request was signed for
  //    another account (and replayed to us).
  const copernicaId = String(headers['x-copernica-id'] ?? '').trim();
  if (account && copernicaId !== `account_${account}`) {
    throw new Rejected(`X-Copernica-ID is "${copernicaId}", not account_${account}: signed for another account`);
  }
  return sig.keyId;
}

function answer(res, status, text) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(`${text}\n`);
}

async function handle(req, res) {
  if (req.method !== 'POST') return answer(res, 405, 'POST only');
  // Collect the raw bytes: verify these, parse only afterwards.
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk); // keep reading, so the 413 below gets through
  }
  if (size > MAX_BODY) return answer(res, 413, 'body larger than 5 MB');
  const body = Buffer.concat(chunks);

  let keyId;
  try {
    keyId = await verifyRequest(req.method, req.url, req.headers, body);
  } catch (e) {
    if (!(e instanceof Rejected)) throw e;
    console.error(`rejected ${req.url}: ${e.message}`);
    return answer(res, 401, e.message);
  }

  if (!(req.headers['content-type'] || '').startsWith('application/json')) {
    return answer(res, 415, 'this receiver reads JSON: set the subscription\'s format to json');
  }
  let event;
  try {
    event = JSON.parse(body.toString('utf8'));
  } catch {
    return answer(res, 400, 'the body is not JSON');
  }
  // Your code goes here. Deliveries are at least once: drop one whose X-Hookline-Delivery you
  // have already handled.
  console.log(JSON.stringify({
    verified: true,
    key_id: keyId,
    delivery: req.headers['x-hookline-delivery'] ?? null,
    event: event?.id ?? null,
  }));
  return answer(res, 200, 'ok');
}

if (/^https?:\/\//.test(source)) {
  await fetchKeys();
} else {
  keys.set('*', createPublicKey(readFileSync(source)));
}
const at = listen.lastIndexOf(':');
const host = listen.slice(0, at).replace(/^\[|\]$/g, '');
http.createServer((req, res) => {
  handle(req, res).catch((e) => {
    console.error(e);
    if (!res.headersSent) answer(res, 500, 'internal error');
  });
}).listen(Number(listen.slice(at + 1)), host, () => {
  console.error(`verifying webhooks on http://${listen}/ with keys from ${source}`);
});
