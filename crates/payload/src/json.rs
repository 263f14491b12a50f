//! `application/json`: the event map as is, compact, UTF-8.
//!
//! Key order is the event's insertion order (the workspace enables
//! `serde_json/preserve_order`); non-ASCII text is written as UTF-8, not as
//! `\u` escapes; numbers are printed the way `serde_json` prints them.

use serde_json::{Map, Value};

/// Appends the compact JSON text of `event` to `out`.
pub(crate) fn encode_into(event: &Map<String, Value>, out: &mut Vec<u8>) {
    // Writing a `Map<String, Value>` into a `Vec` cannot fail: keys are
    // strings and the writer is infallible.
    if let Err(err) = serde_json::to_writer(&mut *out, event) {
        unreachable!("serialising a JSON map into a Vec failed: {err}");
    }
}

/// A capacity estimate for the JSON body of `event`.
pub(crate) fn estimate(event: &Map<String, Value>) -> usize {
    fn value(v: &Value) -> usize {
        match v {
            Value::Null => 4,
            Value::Bool(_) => 5,
            Value::Number(_) => 12,
            Value::String(s) => s.len() + s.len() / 16 + 2,
            Value::Array(a) => 2 + a.iter().map(|v| value(v) + 1).sum::<usize>(),
            Value::Object(m) => map(m),
        }
    }
    fn map(m: &Map<String, Value>) -> usize {
        2 + m.iter().map(|(k, v)| k.len() + 4 + value(v)).sum::<usize>()
    }
    map(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compact_ordered_utf8() {
        let Value::Object(event) = json!({"z": "é\n\"", "a": [1, 2.5, null, true], "m": {}})
        else {
            unreachable!()
        };
        let mut out = Vec::new();
        encode_into(&event, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"z\":\"é\\n\\\"\",\"a\":[1,2.5,null,true],\"m\":{}}"
        );
    }
}
