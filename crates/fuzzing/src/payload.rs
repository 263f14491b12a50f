//! The payload encoders (`crates/payload`): an event body in every format, and the receivers'
//! decoders on any bytes.
//!
//! Beyond "no panic": the form body holds only the bytes PHP's `urlencode` leaves or produces,
//! the JSON body reads back as the event, and the XML body decodes back to the event with only
//! the characters XML 1.0 forbids replaced, as the `xml` module promises.

use hookline_payload::{decode_form, decode_xml, encode, Format};
use serde_json::{Map, Value};

use crate::{ensure, Broken, Verdict};

pub(crate) fn check(data: &[u8]) -> Result<Verdict, Broken> {
    // What a receiver (the project's own, the CLI) does with whatever arrives.
    let _ = decode_form(data);
    let _ = decode_xml(data);
    let event = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(event)) => event,
        Ok(_) => return Ok(Verdict::Refused("not a JSON object".into())),
        Err(e) => return Ok(Verdict::Refused(format!("not JSON: {e}"))),
    };
    form(&event)?;
    json(&event)?;
    xml(&event)?;
    Ok(Verdict::Accepted)
}

fn form(event: &Map<String, Value>) -> Result<(), Broken> {
    let body = encode(Format::Form, event);
    let stray = body
        .iter()
        .find(|&&b| !(b.is_ascii_alphanumeric() || b"-_.%+=&".contains(&b)));
    ensure(stray.is_none(), || {
        format!("form body holds the byte {stray:?}, which urlencode never writes")
    })?;
    let _ = decode_form(&body);
    Ok(())
}

fn json(event: &Map<String, Value>) -> Result<(), Broken> {
    let body = encode(Format::Json, event);
    let back: Value = serde_json::from_slice(&body)
        .map_err(|e| Broken(format!("json body does not parse: {e}")))?;
    ensure(back.as_object() == Some(event), || {
        "json body reads back differently".into()
    })
}

fn xml(event: &Map<String, Value>) -> Result<(), Broken> {
    let body = encode(Format::Xml, event);
    let text =
        std::str::from_utf8(&body).map_err(|e| Broken(format!("xml body is not UTF-8: {e}")))?;
    let back =
        decode_xml(&body).map_err(|e| Broken(format!("xml body does not decode: {e}\n{text}")))?;
    // Two keys that differ only in forbidden characters become one; nothing to compare then.
    if let Some(expected) = xml_visible(&Value::Object(event.clone())) {
        ensure(back == expected, || {
            format!("xml body decodes differently:\n{text}\n{back}\nexpected\n{expected}")
        })?;
    }
    Ok(())
}

/// `v` as the XML body carries it: characters XML 1.0 forbids replaced by U+FFFD, in keys and
/// in strings. `None` when that makes two keys of one object equal.
fn xml_visible(v: &Value) -> Option<Value> {
    Some(match v {
        Value::String(s) => Value::String(xml_text(s)),
        Value::Array(items) => Value::Array(items.iter().map(xml_visible).collect::<Option<_>>()?),
        Value::Object(map) => {
            let mut out = Map::with_capacity(map.len());
            for (k, v) in map {
                if out.insert(xml_text(k), xml_visible(v)?).is_some() {
                    return None;
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

fn xml_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => '\u{fffd}',
            c => c,
        })
        .collect()
}
