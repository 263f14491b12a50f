//! Encode realistic events in every format, decode them again and compare
//! with what the receiving side should see.

mod common;

use common::*;
use hookline_payload::{decode, decode_form, decode_xml, encode, size_hint, Format};
use serde_json::{json, Map, Value};

#[test]
fn form_click_round_trip() {
    let body = encode(Format::Form, &click());
    assert_same(&decode_form(&body), &click_as_php());
    assert_same(&click_as_php(), &form_normalised(&Value::Object(click())));
}

#[test]
fn form_profile_update_round_trip() {
    let body = encode(Format::Form, &profile_update());
    assert_same(&decode_form(&body), &profile_update_as_php());
    // The list of maps is written with indices, the scalar lists with `[]`.
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("&subprofiles%5B1%5D%5Bfields%5D%5Btotal%5D=5&"),
        "{text}"
    );
    assert!(
        text.contains("&subprofiles%5B0%5D%5Bfields%5D%5Bitems%5D%5B%5D=a&"),
        "{text}"
    );
    assert!(text.contains("&interests=&extra=&"), "{text}");
}

#[test]
fn form_awkward_round_trip() {
    let event = awkward();
    let body = encode(Format::Form, &event);
    let text = std::str::from_utf8(&body).unwrap();
    // Only PHP-urlencode's safe bytes, `%XX`, `+`, `=` and `&` appear.
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.%+=&".contains(&b)),
        "{text}"
    );
    // serde_json prints 1e100 as `1e+100`; the `+` must be escaped.
    assert!(text.contains("&numbers%5B%5D=1e%2B100&"), "{text}");
    assert!(
        text.starts_with("amp%26eq%3Dplus%2Bpct%25=%26%3D%2B%25%23%3F%3B%2F+%3A&"),
        "{text}"
    );

    // An empty nested key is `fields[]`, which PHP reads as an append: it
    // becomes index 0 in place. Everything else survives as strings.
    let mut expected = form_normalised(&Value::Object(event));
    let fields = expected["fields"].as_object_mut().unwrap();
    *fields = std::mem::take(fields)
        .into_iter()
        .map(|(k, v)| (if k.is_empty() { "0".into() } else { k }, v))
        .collect();
    assert_eq!(
        expected["numbers"],
        json!([
            "0",
            "-1",
            "1.5",
            "1e+100",
            "-2.5e-7",
            "18446744073709551615"
        ])
    );
    assert_same(&decode_form(&body), &expected);
}

#[test]
fn json_round_trips_exactly() {
    for event in [click(), profile_update(), awkward()] {
        let body = encode(Format::Json, &event);
        let back: Value = serde_json::from_slice(&body).unwrap();
        assert_same(&back, &Value::Object(event.clone()));
        assert_same(&decode(Format::Json, &body).unwrap(), &Value::Object(event));
        assert!(!body.contains(&b'\n'), "compact");
    }
}

/// A number in an input record reaches the receiver as the same double. The stages read
/// records with `serde_json`; the receiver parses the body with a correctly rounding parser
/// (PHP, JavaScript, Rust's `str::parse`). Found by the `payload` fuzz target: without
/// `serde_json`'s `float_roundtrip` feature, numbers with 17 significant digits were read one
/// unit in the last place off, and the webhook carried another number than the producer sent.
#[test]
fn json_numbers_arrive_as_the_producer_sent_them() {
    for text in [
        "18446744073858407370324",
        "1.8446744073858407e22",
        "0.30000000000000004",
        "2.638344616030823e-256",
        "9007199254740993.5",
        "1.7976931348623157e308",
        "5e-324",
    ] {
        let sent: f64 = text.parse().unwrap();
        let event: Map<String, Value> = serde_json::from_str(&format!("{{\"n\":{text}}}")).unwrap();
        let body = String::from_utf8(encode(Format::Json, &event)).unwrap();
        let printed = body
            .strip_prefix("{\"n\":")
            .and_then(|b| b.strip_suffix('}'))
            .unwrap();
        let received: f64 = printed.parse().unwrap();
        assert_eq!(
            received.to_bits(),
            sent.to_bits(),
            "{text} was sent, {printed} arrived"
        );
    }
}

#[test]
fn xml_round_trips_exactly() {
    for event in [click(), profile_update()] {
        let body = encode(Format::Xml, &event);
        assert_same(&decode_xml(&body).unwrap(), &Value::Object(event));
    }
}

#[test]
fn xml_awkward_round_trip_replaces_only_illegal_characters() {
    let event = awkward();
    let body = encode(Format::Xml, &event);
    let text = std::str::from_utf8(&body).unwrap();
    assert!(text.contains("<field name=\"amp&amp;eq=plus+pct%\">&amp;=+%#?;/ :</field>"));
    assert!(text.contains("<field name=\"\">empty nested key</field>"));
    assert!(text.contains("<crlf>&#13;\n&#13;</crlf>"));

    let mut expected = Value::Object(event);
    expected["unicode"] = json!("\u{FFFD}\u{FFFD}\u{7f}\u{80}\u{2028}\u{FFFD}\u{10FFFF}");
    assert_same(&decode_xml(&body).unwrap(), &expected);
}

#[test]
fn empty_event() {
    let empty = Map::new();
    assert_eq!(encode(Format::Form, &empty), b"");
    assert_eq!(encode(Format::Json, &empty), b"{}");
    assert_eq!(decode_form(b""), json!({}));
    assert_eq!(decode_xml(&encode(Format::Xml, &empty)).unwrap(), json!({}));
}

#[test]
fn size_hint_covers_typical_events() {
    for format in Format::ALL {
        for event in [click(), profile_update()] {
            let len = encode(format, &event).len();
            let hint = size_hint(format, &event);
            assert!(
                hint >= len && hint < len * 2,
                "{format}: hint {hint} for {len} bytes"
            );
        }
    }
}
