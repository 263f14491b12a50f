<?php
/**
 * A Hookline webhook receiver that verifies every POST before it trusts it. PHP 7.4 or newer
 * with the openssl extension (built into most PHP packages).
 *
 *     HOOKLINE_ADMIN_URL=http://127.0.0.1:9400 php -S 127.0.0.1:8080 verify.php
 *
 * The built-in server sends every request to this script. Under Apache or PHP-FPM, copy it
 * as your callback script (hook.php) and set the same variables in the server's environment.
 *
 * The public keys come from <HOOKLINE_ADMIN_URL>/v1/keys (default http://127.0.0.1:9400),
 * cached in the temp folder for an hour and fetched again when a request names a keyId not
 * seen yet (key rotation), or from a PEM file (PUBLIC_KEY_FILE). MAX_DATE_SKEW (seconds,
 * default 60) bounds how far Date may be from now. EXPECTED_ACCOUNT is your Hookline account
 * id: the signed X-Copernica-ID must then be account_<EXPECTED_ACCOUNT>, so a request Hookline
 * signed for another account is rejected.
 *
 * Each verified POST is answered 200 and printed as one JSON line on the server's stdout;
 * anything else is answered 401 with the reason. Bodies in the subscription formats form
 * (the default, what $_POST reads) and json are understood.
 */

declare(strict_types=1);

// Without these in the signed list, the Digest or Date checks below would prove nothing.
const REQUIRED_SIGNED = ['(request-target)', 'host', 'date', 'digest'];

final class Rejected extends Exception {}

/** keyId => public key PEM. A single key from a file is used whatever keyId is named. */
function public_keys(bool $refresh): array
{
    $file = getenv('PUBLIC_KEY_FILE');
    if ($file) {
        return ['*' => file_get_contents($file)];
    }
    $url = rtrim(getenv('HOOKLINE_ADMIN_URL') ?: 'http://127.0.0.1:9400', '/') . '/v1/keys';
    // PHP starts afresh for every request: keep the keys in a file instead of fetching each time.
    $cache = sys_get_temp_dir() . '/hookline-keys-' . md5($url) . '.json';
    $json = false;
    if (!$refresh && is_file($cache) && filemtime($cache) > time() - 3600) {
        $json = file_get_contents($cache);
    }
    if ($json === false) {
        $json = @file_get_contents($url, false, stream_context_create(['http' => ['timeout' => 10]]));
        if ($json === false) {
            throw new RuntimeException("cannot fetch the public keys from $url");
        }
        $tmp = $cache . '.' . bin2hex(random_bytes(4));
        file_put_contents($tmp, $json);
        rename($tmp, $cache); // atomic, so a concurrent request never reads half a file
    }
    $keys = [];
    foreach (json_decode($json, true) ?: [] as $k) {
        if (($k['algorithm'] ?? '') === 'rsa-sha256') {
            $keys[$k['key_id']] = $k['public_key_pem'];
        }
    }
    return $keys;
}

function key_for(string $keyId): ?string
{
    $keys = public_keys(false);
    if (!isset($keys[$keyId]) && !isset($keys['*'])) {
        $keys = public_keys(true); // a new keyId: the keys may have rotated
    }
    return $keys[$keyId] ?? $keys['*'] ?? null;
}

/** keyId="…",algorithm="…",headers="…",signature="…" => array. */
function parse_signature(string $value): array
{
    if ($value === '') {
        throw new Rejected('no Signature header');
    }
    preg_match_all('/(\w+)="([^"]*)"/', $value, $m, PREG_SET_ORDER);
    $params = ['algorithm' => 'rsa-sha256', 'headers' => 'date'];
    foreach ($m as [, $name, $v]) {
        $params[$name] = $v;
    }
    foreach (['keyId', 'signature'] as $name) {
        if (!isset($params[$name])) {
            throw new Rejected("Signature header has no $name");
        }
    }
    return $params;
}

/** The request headers with lower-case names. */
function request_headers(): array
{
    if (function_exists('getallheaders')) {
        return array_change_key_case(getallheaders(), CASE_LOWER);
    }
    $headers = [];
    foreach ($_SERVER as $name => $value) {
        if (strncmp($name, 'HTTP_', 5) === 0) {
            $headers[str_replace('_', '-', strtolower(substr($name, 5)))] = $value;
        }
    }
    $headers['content-type'] = $_SERVER['CONTENT_TYPE'] ?? '';
    return $headers;
}

/** Checks the request; returns the keyId it was signed with, or throws Rejected. */
function verify_request(string $method, string $target, array $headers, string $body): string
{
    $sig = parse_signature($headers['signature'] ?? '');
    if (strtolower($sig['algorithm']) !== 'rsa-sha256') {
        throw new Rejected("unsupported algorithm {$sig['algorithm']}");
    }
    $signed = preg_split('/\s+/', strtolower(trim($sig['headers'])));
    // Hookline signs for every account with the same RSA key: the signed X-Copernica-ID says
    // which account a request is for.
    $account = (string) getenv('EXPECTED_ACCOUNT');
    $required = $account !== '' ? array_merge(REQUIRED_SIGNED, ['x-copernica-id']) : REQUIRED_SIGNED;
    $missing = array_diff($required, $signed);
    if ($missing) {
        throw new Rejected('signature does not cover ' . implode(' ', $missing));
    }

    // 1. The signing string: one "name: value" line per listed header, joined by "\n".
    $lines = [];
    foreach ($signed as $name) {
        if ($name === '(request-target)') {
            $lines[] = '(request-target): ' . strtolower($method) . ' ' . $target;
        } elseif (isset($headers[$name])) {
            $lines[] = $name . ': ' . trim($headers[$name]);
        } else {
            throw new Rejected("signed header $name is missing");
        }
    }

    // 2. The signature, with the key the request names.
    $key = key_for($sig['keyId']);
    if ($key === null) {
        throw new Rejected("unknown keyId {$sig['keyId']}");
    }
    $signature = base64_decode($sig['signature'], true);
    if ($signature === false
        || openssl_verify(implode("\n", $lines), $signature, $key, OPENSSL_ALGO_SHA256) !== 1) {
        throw new Rejected('signature does not verify');
    }

    // 3. The body: Digest (now known to be authentic) must match the raw bytes received.
    [$token, $value] = explode('=', $headers['digest'] ?? '', 2) + ['', ''];
    $expected = base64_encode(hash('sha256', $body, true));
    if (strtolower(trim($token)) !== 'sha-256' || !hash_equals($expected, trim($value))) {
        throw new Rejected('Digest does not match the body');
    }

    // 4. Freshness: a captured request cannot be replayed later.
    $date = DateTimeImmutable::createFromFormat(DATE_RFC7231, $headers['date'] ?? '', new DateTimeZone('UTC'));
    if ($date === false) {
        throw new Rejected('Date is not a valid HTTP date');
    }
    $skew = (float) (getenv('MAX_DATE_SKEW') ?: 60);
    if (abs(time() - $date->getTimestamp()) > $skew) {
        throw new Rejected("Date is more than $skew s from now");
    }

    // 5. The account: the signed X-Copernica-ID must be ours, else the request was signed for
    //    another account (and replayed to us).
    $copernicaId = trim($headers['x-copernica-id'] ?? '');
    if ($account !== '' && $copernicaId !== "account_$account") {
        throw new Rejected("X-Copernica-ID is \"$copernicaId\", not account_$account: signed for another account");
    }
    return $sig['keyId'];
}

function answer(int $status, string $text): void
{
    http_response_code($status);
    header('Content-Type: text/plain; charset=utf-8');
    echo $text, "\n";
}

if ($_SERVER['REQUEST_METHOD'] !== 'POST') {
    answer(405, 'POST only');
    return;
}
$body = file_get_contents('php://input'); // the raw bytes: verify these, parse only afterwards
$headers = request_headers();
try {
    $keyId = verify_request('POST', $_SERVER['REQUEST_URI'], $headers, $body);
} catch (Rejected $e) {
    file_put_contents('php://stderr', "rejected {$_SERVER['REQUEST_URI']}: {$e->getMessage()}\n");
    answer(401, $e->getMessage());
    return;
} catch (RuntimeException $e) {
    file_put_contents('php://stderr', $e->getMessage() . "\n");
    answer(503, 'cannot verify now'); // Hookline retries later
    return;
}

$type = strtolower($headers['content-type'] ?? '');
if (strpos($type, 'application/x-www-form-urlencoded') === 0) {
    parse_str($body, $event); // the same as $_POST, now that the bytes are known to be genuine
} elseif (strpos($type, 'application/json') === 0) {
    $event = json_decode($body, true);
} else {
    answer(415, 'this receiver reads form and json: set the subscription\'s format to one of them');
    return;
}
// Your code goes here. Deliveries are at least once: drop one whose X-Hookline-Delivery you
// have already handled.
file_put_contents('php://stdout', json_encode([
    'verified' => true,
    'key_id' => $keyId,
    'delivery' => $headers['x-hookline-delivery'] ?? null,
    'event' => is_array($event) ? ($event['id'] ?? null) : null,
], JSON_UNESCAPED_SLASHES) . "\n");
answer(200, 'ok');
