//! Exact bytes for small events, and a check that the samples in
//! `docs/payload-formats.md` are what the encoder really produces.

mod common;

use common::object;
use hookline_payload::{decode, encode, Format};
use serde_json::{json, Map, Value};

fn small() -> Map<String, Value> {
    object(json!({
        "type": "click",
        "profile": 42,
        "fields": {"name": "Mike & Zoë"},
        "interests": ["vip", "news"],
        "optin": true,
        "note": null
    }))
}

fn text(format: Format, event: &Map<String, Value>) -> String {
    String::from_utf8(encode(format, event)).unwrap()
}

#[test]
fn golden_form() {
    assert_eq!(
        text(Format::Form, &small()),
        "type=click&profile=42&fields%5Bname%5D=Mike+%26+Zo%C3%AB\
         &interests%5B%5D=vip&interests%5B%5D=news&optin=1&note="
    );
}

#[test]
fn golden_json() {
    assert_eq!(
        text(Format::Json, &small()),
        r#"{"type":"click","profile":42,"fields":{"name":"Mike & Zoë"},"interests":["vip","news"],"optin":true,"note":null}"#
    );
}

#[test]
fn golden_xml() {
    assert_eq!(
        text(Format::Xml, &small()),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <event><type>click</type><profile type=\"number\">42</profile>\
         <fields><name>Mike &amp; Zoë</name></fields>\
         <interests type=\"list\"><item>vip</item><item>news</item></interests>\
         <optin type=\"boolean\">true</optin><note type=\"null\"/></event>"
    );
}

#[test]
fn golden_list_of_maps() {
    let event = object(json!({"x": [{"k": "v", "n": [1]}, {"k": "w"}], "e": []}));
    assert_eq!(
        text(Format::Form, &event),
        "x%5B0%5D%5Bk%5D=v&x%5B0%5D%5Bn%5D%5B%5D=1&x%5B1%5D%5Bk%5D=w&e="
    );
    assert_eq!(
        text(Format::Xml, &event),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <event><x type=\"list\"><item><k>v</k><n type=\"list\"><item type=\"number\">1</item></n></item>\
         <item><k>w</k></item></x><e type=\"list\"/></event>"
    );
}

/// The click sample used in `docs/payload-formats.md`.
fn doc_click() -> Map<String, Value> {
    object(json!({
        "type": "click",
        "timestamp": 1714566896,
        "database": 12,
        "profile": 4567,
        "mailing": 98765,
        "url": "https://example.com/offer?utm_source=mail",
        "headers": {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"},
        "fields": {"name": "Mike", "city": "Zoë's Town", "optin": true},
        "interests": ["vip", "news"],
        "tags": ["spring & summer"]
    }))
}

/// The profile update sample used in `docs/payload-formats.md`.
fn doc_update() -> Map<String, Value> {
    object(json!({
        "type": "update",
        "timestamp": 1714570000,
        "database": 12,
        "profile": 4567,
        "parameters": {"email": "new@example.com", "note": "2 < 3\nok"},
        "previous": {"email": "old@example.com", "note": null},
        "interests": [],
        "subprofiles": [{"id": 1, "fields": {"total": 19.95}}]
    }))
}

fn docs() -> String {
    let path = format!(
        "{}{}",
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned()),
        "/../../docs/payload-formats.md"
    );
    std::fs::read_to_string(path).expect("docs/payload-formats.md")
}

#[test]
fn docs_samples_are_current() {
    let docs = docs();
    let mut missing = Vec::new();
    for (name, event) in [("click", doc_click()), ("update", doc_update())] {
        for format in Format::ALL {
            let body = text(format, &event);
            if std::env::var_os("PRINT_DOC_SAMPLES").is_some() {
                eprintln!("--- {name} {format}\n{body}\n");
            }
            if !docs.contains(&format!("\n{body}\n```")) {
                missing.push(format!("{name} {format}"));
            }
            // Every sample decodes back to its event type.
            let back = decode(format, body.as_bytes()).unwrap();
            assert_eq!(back["type"], json!(name));
        }
    }
    assert!(
        missing.is_empty(),
        "docs/payload-formats.md lacks the current samples {missing:?}; run \
         PRINT_DOC_SAMPLES=1 cargo test -p hookline-payload --test golden -- --nocapture"
    );
}
