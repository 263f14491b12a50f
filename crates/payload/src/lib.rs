//! Webhook body encoding: one enriched event in, one HTTP request body out.
//!
//! Every Hookline delivery is a single `POST` whose body is the enriched event
//! (an insertion-ordered `serde_json::Map`) in the payload format that the
//! subscription chose. Copernica's webhooks offer three formats and so does
//! Hookline; see `docs/payload-formats.md` for the contract and samples.
//!
//! | module   | what it holds | why it is separate |
//! |----------|---------------|--------------------|
//! | [`form`] | `application/x-www-form-urlencoded` encoder (PHP `http_build_query` style) and a decoder with PHP `parse_str` semantics | the default format and by far the subtlest: receivers are mostly PHP scripts reading `$_POST`, so both directions must match PHP byte for byte |
//! | [`json`] | `application/json` encoder | trivially `serde_json`, kept apart so every format has one home |
//! | [`xml`]  | `application/xml` encoder (hand-written, typed `<event>` document) and a `quick-xml` based decoder | escaping, name sanitising and type hints are XML-specific rules |
//!
//! This file holds what routing code uses: [`Format`] (the subscription's
//! choice, with its `Content-Type`), [`encode`] / [`encode_into`] and a
//! [`decode`] convenience for receivers and CLI tools.
//!
//! Encoders run once per delivery, so they write straight into one `Vec<u8>`
//! sized from a cheap pre-walk of the event, without per-key allocations.
//! Decoders exist for tests, the project's receiver and its debugging tools;
//! they favour fidelity to what real receivers see over speed.

use serde_json::{Map, Value};

pub mod form;
pub mod json;
pub mod xml;

pub use form::decode_form;
pub use xml::{decode_xml, DecodeError};

/// The payload format lives in the model (a subscription holds one); re-exported here, where
/// the encoders are.
pub use hookline_model::{Format, UnknownFormat};

/// Encodes `event` as a request body in `format`.
///
/// Never fails: every JSON value has a representation in every format (see
/// the module docs of [`form`] and [`xml`] for the lossy corners).
pub fn encode(format: Format, event: &Map<String, Value>) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_hint(format, event));
    encode_into(format, event, &mut out);
    out
}

/// A cheap estimate of the encoded size of `event` in `format`, meant for
/// `Vec::reserve` before [`encode_into`]. Usually a little above the real
/// size; text needing much escaping (e.g. non-ASCII in `form`) can exceed it.
pub fn size_hint(format: Format, event: &Map<String, Value>) -> usize {
    match format {
        Format::Form => form::estimate(event),
        Format::Json => json::estimate(event),
        Format::Xml => xml::estimate(event),
    }
}

/// Appends the encoding of `event` in `format` to `out`.
///
/// Lets a caller reuse one buffer across deliveries; [`encode`] is this plus
/// a capacity estimate.
pub fn encode_into(format: Format, event: &Map<String, Value>, out: &mut Vec<u8>) {
    match format {
        Format::Form => form::encode_into(event, out),
        Format::Json => json::encode_into(event, out),
        Format::Xml => xml::encode_into(event, out),
    }
}

/// Decodes a body in `format` back into JSON, as the receiving side sees it.
///
/// `form` follows PHP's `parse_str` (all leaves become strings, see
/// [`decode_form`]), `json` is parsed as is, `xml` goes through
/// [`decode_xml`]. Meant for the receiver and CLI debugging tools.
pub fn decode(format: Format, body: &[u8]) -> Result<Value, DecodeError> {
    match format {
        Format::Form => Ok(decode_form(body)),
        Format::Json => Ok(serde_json::from_slice(body)?),
        Format::Xml => decode_xml(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_content_types() {
        assert_eq!(Format::default(), Format::Form);
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>().unwrap(), f);
            assert_eq!(f.to_string(), f.as_str());
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(json, format!("\"{}\"", f.as_str()));
            assert_eq!(serde_json::from_str::<Format>(&json).unwrap(), f);
        }
        assert_eq!(" XML ".parse::<Format>().unwrap(), Format::Xml);
        assert_eq!(
            Format::Form.content_type(),
            "application/x-www-form-urlencoded"
        );
        assert_eq!(Format::Json.content_type(), "application/json");
        assert_eq!(Format::Xml.content_type(), "application/xml; charset=utf-8");
    }

    #[test]
    fn unknown_format_lists_valid_names() {
        let err = "yaml".parse::<Format>().unwrap_err();
        assert_eq!(err.input(), "yaml");
        assert_eq!(
            err.to_string(),
            "unknown payload format \"yaml\": expected one of form, json, xml"
        );
        assert!(serde_json::from_str::<Format>("\"Form\"").is_err());
    }

    #[test]
    fn encode_into_appends() {
        let mut event = Map::new();
        event.insert("a".into(), Value::from(1));
        let mut buf = b"x".to_vec();
        encode_into(Format::Json, &event, &mut buf);
        assert_eq!(buf, b"x{\"a\":1}");
        assert_eq!(encode(Format::Json, &event), b"{\"a\":1}");
    }

    #[test]
    fn decode_dispatches() {
        let v = decode(Format::Json, b"{\"a\":[1]}").unwrap();
        assert_eq!(v, serde_json::json!({"a": [1]}));
        assert_eq!(
            decode(Format::Form, b"a[]=1").unwrap(),
            serde_json::json!({"a": ["1"]})
        );
        assert!(decode(Format::Json, b"{").is_err());
        assert!(decode(Format::Xml, b"<event>").is_err());
    }
}
