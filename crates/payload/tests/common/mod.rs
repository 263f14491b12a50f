//! Realistic Hookline events shared by the integration tests.
#![allow(dead_code)]

use serde_json::{json, Map, Value};

pub fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// A click on a link in a mailing, enriched with the profile's fields,
/// interests and the request's headers.
pub fn click() -> Map<String, Value> {
    object(json!({
        "type": "click",
        "id": "0b6f1c2e-5d7a-4c43-9a1f-2f0e8d3c4b5a",
        "time": "2024-05-01 12:34:56",
        "timestamp": 1714566896,
        "database": 12,
        "profile": 4567,
        "mailing": "98765",
        "url": "https://example.com/offer?utm_source=mail&q=a+b%20c#top",
        "ip": "192.0.2.10",
        "headers": {
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/125.0",
            "Accept-Language": "nl-NL,nl;q=0.9,en;q=0.8",
            "Referer": "https://mail.example.net/?view=msg&id=42"
        },
        "fields": {
            "name": "Mike",
            "email": "mike+news@example.com",
            "city": "Zoë's Town [NL]",
            "score": 12.5,
            "optin": true,
            "unsubscribed": false,
            "birthday": null
        },
        "interests": ["vip", "news"],
        "tags": ["spring & summer", "100%", "a=b"]
    }))
}

/// What PHP's `$_POST` holds for [`click`] (via `json_encode`).
pub fn click_as_php() -> Value {
    json!({
        "type": "click",
        "id": "0b6f1c2e-5d7a-4c43-9a1f-2f0e8d3c4b5a",
        "time": "2024-05-01 12:34:56",
        "timestamp": "1714566896",
        "database": "12",
        "profile": "4567",
        "mailing": "98765",
        "url": "https://example.com/offer?utm_source=mail&q=a+b%20c#top",
        "ip": "192.0.2.10",
        "headers": {
            "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/125.0",
            "Accept-Language": "nl-NL,nl;q=0.9,en;q=0.8",
            "Referer": "https://mail.example.net/?view=msg&id=42"
        },
        "fields": {
            "name": "Mike",
            "email": "mike+news@example.com",
            "city": "Zoë's Town [NL]",
            "score": "12.5",
            "optin": "1",
            "unsubscribed": "0",
            "birthday": ""
        },
        "interests": ["vip", "news"],
        "tags": ["spring & summer", "100%", "a=b"]
    })
}

/// A profile update: the new values in `parameters`, the old ones in
/// `previous`, with awkward text, an empty list and a list of maps.
pub fn profile_update() -> Map<String, Value> {
    object(json!({
        "type": "update",
        "id": "7d1e6f00-1111-4a2b-8c3d-000000000001",
        "timestamp": 1714570000,
        "database": 12,
        "profile": 4567,
        "parameters": {
            "email": "new@example.com",
            "note": "line 1\nline 2\r\nline 3\ttabbed",
            "discount": "a=b&c+d 50% [x] {y}",
            "greeting": "Grüße, 日本語, emoji 🎉, <b>bold</b> \"quoted\" 'single'"
        },
        "previous": {
            "email": "old@example.com",
            "note": null,
            "discount": ""
        },
        "interests": [],
        "extra": {},
        "subprofiles": [
            {"id": 1, "collection": "orders", "fields": {"total": 19.95, "items": ["a", "b"]}},
            {"id": 2, "collection": "orders", "fields": {"total": 5, "items": []}}
        ],
        "matrix": [[1, 2], [3]]
    }))
}

/// What PHP's `$_POST` holds for [`profile_update`] (via `json_encode`).
pub fn profile_update_as_php() -> Value {
    json!({
        "type": "update",
        "id": "7d1e6f00-1111-4a2b-8c3d-000000000001",
        "timestamp": "1714570000",
        "database": "12",
        "profile": "4567",
        "parameters": {
            "email": "new@example.com",
            "note": "line 1\nline 2\r\nline 3\ttabbed",
            "discount": "a=b&c+d 50% [x] {y}",
            "greeting": "Grüße, 日本語, emoji 🎉, <b>bold</b> \"quoted\" 'single'"
        },
        "previous": {
            "email": "old@example.com",
            "note": "",
            "discount": ""
        },
        "interests": "",
        "extra": "",
        "subprofiles": [
            {"id": "1", "collection": "orders", "fields": {"total": "19.95", "items": ["a", "b"]}},
            {"id": "2", "collection": "orders", "fields": {"total": "5", "items": ""}}
        ],
        "matrix": [["1", "2"], ["3"]]
    })
}

/// Keys and values chosen to hit every escaping path at once.
pub fn awkward() -> Map<String, Value> {
    object(json!({
        "amp&eq=plus+pct%": "&=+%#?;/ :",
        "fields": {
            "2nd field": "x",
            "a:b": "y",
            "straße": "z",
            "with space": "keeps its space when nested",
            "": "empty nested key",
            "brackets": "[]][[",
            "dots.in.name": "nested dots stay"
        },
        "headers": {"X-Weird": "tab\there", "Content-Type": "text/plain; charset=\"utf-8\""},
        "deep": {"a": {"b": {"c": {"d": [{"e": ["f", {"g": "h"}]}]}}}},
        "numbers": [0, -1, 1.5, 1e100, -2.5e-7, 18446744073709551615u64],
        "unicode": "\u{0}\u{1}\u{7f}\u{80}\u{2028}\u{FFFF}\u{10FFFF}",
        "crlf": "\r\n\r"
    }))
}

/// A PHP-`$_POST`-like view of an event as the form format carries it:
/// leaves become strings (`true` → "1", `false` → "0", `null`, `[]`, `{}` →
/// ""), keys are unchanged (valid for events without PHP-mangled names).
pub fn form_normalised(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.clone()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(if *b { "1" } else { "0" }.into()),
        Value::Null => Value::String(String::new()),
        Value::Array(a) if a.is_empty() => Value::String(String::new()),
        Value::Object(m) if m.is_empty() => Value::String(String::new()),
        Value::Array(a) => Value::Array(a.iter().map(form_normalised).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), form_normalised(v)))
                .collect(),
        ),
    }
}

/// Order-sensitive comparison (serde_json's map equality ignores order).
#[track_caller]
pub fn assert_same(actual: &Value, expected: &Value) {
    let a = serde_json::to_string_pretty(actual).unwrap();
    let e = serde_json::to_string_pretty(expected).unwrap();
    assert_eq!(a, e);
}
