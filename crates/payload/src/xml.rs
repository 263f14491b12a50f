//! `application/xml; charset=utf-8`: one `<event>` document per event.
//!
//! # Document
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <event><type>click</type><fields><name>Mike</name></fields><interests type="list"><item>vip</item></interests></event>
//! ```
//!
//! The declaration is followed by one newline, then the `<event>` root on a
//! single line with no whitespace between elements (so no text node is ever
//! ambiguous) and no trailing newline.
//!
//! * Each key of a map is an element; maps nest.
//! * A list repeats an `<item>` child per element.
//! * Values carry a `type` attribute whenever the text alone would not tell
//!   what the JSON value was: `type="number"`, `type="boolean"` (text `true`
//!   or `false`), `type="null"` (empty), `type="list"` (always, so a one-item
//!   list or a list of maps is never mistaken for a map) and `type="map"` for an
//!   empty map only. Strings and non-empty maps have no attribute. This makes
//!   [`decode_xml`] an exact inverse of the encoder.
//! * Empty content is written as a self-closing element (`<name/>`).
//! * A key is used as the element name when it is a conservative ASCII XML
//!   name: `[A-Za-z_][A-Za-z0-9_.-]*`, not starting with `xml` in any case.
//!   (HTTP header names such as `User-Agent` qualify.) Any other key, e.g.
//!   `2nd field`, `a:b`, `straße` or the empty string, is written as
//!   `<field name="2nd field">…</field>`.
//! * Text and attribute values escape `&`, `<`, `>`, `"` and `'`; a carriage
//!   return is written `&#13;` (parsers would turn a literal one into `\n`);
//!   in attributes tab and newline are written `&#9;` and `&#10;` too.
//! * Characters that XML 1.0 forbids (U+0000–U+0008, U+000B, U+000C,
//!   U+000E–U+001F, U+FFFE, U+FFFF) are replaced by U+FFFD, the only lossy
//!   step of this format.

use std::borrow::Cow;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use serde_json::{Map, Number, Value};

const DECLARATION: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
const ROOT: &str = "event";
const ITEM: &str = "item";
const FIELD: &str = "field";
const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Appends the XML document of `event` to `out`.
pub(crate) fn encode_into(event: &Map<String, Value>, out: &mut Vec<u8>) {
    out.extend_from_slice(DECLARATION);
    out.push(b'<');
    out.extend_from_slice(ROOT.as_bytes());
    if event.is_empty() {
        out.extend_from_slice(b"/>");
        return;
    }
    out.push(b'>');
    for (key, value) in event {
        element(out, key, value);
    }
    out.extend_from_slice(b"</");
    out.extend_from_slice(ROOT.as_bytes());
    out.push(b'>');
}

/// Writes `<key …>value</key>` (or the `<field name="key">` form).
fn element(out: &mut Vec<u8>, key: &str, value: &Value) {
    let named = is_plain_name(key);
    out.push(b'<');
    if named {
        out.extend_from_slice(key.as_bytes());
    } else {
        out.extend_from_slice(b"field name=\"");
        escape(out, key, true);
        out.push(b'"');
    }
    let type_attr: &[u8] = match value {
        Value::Null => b" type=\"null\"",
        Value::Bool(_) => b" type=\"boolean\"",
        Value::Number(_) => b" type=\"number\"",
        Value::Array(_) => b" type=\"list\"",
        Value::Object(m) if m.is_empty() => b" type=\"map\"",
        _ => b"",
    };
    out.extend_from_slice(type_attr);
    let empty = match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    };
    if empty {
        out.extend_from_slice(b"/>");
        return;
    }
    out.push(b'>');
    match value {
        Value::String(s) => escape(out, s, false),
        Value::Number(n) => {
            // JSON number text needs no escaping; writing into a Vec cannot fail.
            let _ = std::io::Write::write_fmt(out, format_args!("{n}"));
        }
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Array(list) => {
            for item in list {
                element(out, ITEM, item);
            }
        }
        Value::Object(map) => {
            for (key, value) in map {
                element(out, key, value);
            }
        }
        Value::Null => {}
    }
    out.extend_from_slice(b"</");
    out.extend_from_slice(if named { key } else { FIELD }.as_bytes());
    out.push(b'>');
}

/// Whether `key` can be written as an element name as is.
fn is_plain_name(key: &str) -> bool {
    let bytes = key.as_bytes();
    let Some(&first) = bytes.first() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == b'_')
        && bytes[1..]
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !bytes
            .get(..3)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"xml"))
}

/// Appends `text` escaped for XML content (`attr == false`) or a
/// double-quoted attribute value (`attr == true`).
fn escape(out: &mut Vec<u8>, text: &str, attr: bool) {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let replacement: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'"' => b"&quot;",
            b'\'' => b"&apos;",
            b'\r' => b"&#13;",
            b'\n' if attr => b"&#10;",
            b'\t' if attr => b"&#9;",
            b'\n' | b'\t' => {
                i += 1;
                continue;
            }
            0..=0x1F => REPLACEMENT,
            // U+FFFE and U+FFFF are EF BF BE / EF BF BF in UTF-8.
            0xEF if bytes.get(i + 1) == Some(&0xBF)
                && matches!(bytes.get(i + 2), Some(0xBE | 0xBF)) =>
            {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(REPLACEMENT);
                i += 3;
                start = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(replacement);
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// A capacity estimate for the XML document of `event`.
pub(crate) fn estimate(event: &Map<String, Value>) -> usize {
    fn value(v: &Value) -> usize {
        match v {
            Value::String(s) => s.len() + s.len() / 8,
            Value::Number(_) => 24,
            Value::Bool(_) => 20,
            Value::Null => 12,
            Value::Array(a) => 12 + a.iter().map(|v| 13 + value(v)).sum::<usize>(),
            Value::Object(m) => map(m),
        }
    }
    fn map(m: &Map<String, Value>) -> usize {
        m.iter().map(|(k, v)| 2 * k.len() + 5 + value(v)).sum()
    }
    DECLARATION.len() + 15 + map(event)
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Error from [`decode_xml`] (or from [`crate::decode`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body is not well-formed XML.
    #[error("malformed XML at byte {position}: {message}")]
    Xml {
        /// Byte offset in the body where the problem was noticed.
        position: u64,
        /// What the XML parser reported.
        message: String,
    },
    /// Well-formed XML that does not follow the event document rules
    /// (e.g. `type="number"` with text that is not a number).
    #[error("unexpected XML content at byte {position}: {message}")]
    Structure {
        /// Byte offset in the body where the problem was noticed.
        position: u64,
        /// What was wrong.
        message: String,
    },
    /// The body is not valid JSON (from [`crate::decode`] with `Format::Json`).
    #[error("malformed JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The `type` attribute of an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// No attribute: a string, or a map if the element has child elements.
    Plain,
    Number,
    Boolean,
    Null,
    List,
    Map,
}

struct Frame {
    key: String,
    kind: Kind,
    text: String,
    children: Vec<(String, Value)>,
}

/// Parses a document written by the XML encoder back into JSON.
///
/// The result is exactly the encoded event, except for characters XML cannot
/// carry (replaced by U+FFFD when encoding). The root element's name is not
/// checked and its content is always read as a map. Documents from other
/// producers are accepted as far as they follow the same rules: comments,
/// processing instructions and a DOCTYPE are skipped, CDATA counts as text,
/// whitespace-only text between child elements is ignored, only the five
/// predefined entities and character references are known, and a repeated
/// key keeps the last value. Element names in lists are not checked.
pub fn decode_xml(body: &[u8]) -> Result<Value, DecodeError> {
    let mut reader = Reader::from_reader(body);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Value> = None;
    loop {
        let position = reader.buffer_position();
        let event = reader.read_event().map_err(|e| DecodeError::Xml {
            position: reader.error_position(),
            message: e.to_string(),
        })?;
        let structure = |message: String| DecodeError::Structure { position, message };
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(structure("content after the root element".into()));
                }
                stack.push(open(&reader, &start).map_err(structure)?);
            }
            Event::Empty(start) => {
                if root.is_some() {
                    return Err(structure("content after the root element".into()));
                }
                let frame = open(&reader, &start).map_err(structure)?;
                close(frame, &mut stack, &mut root).map_err(structure)?;
            }
            Event::End(_) => {
                // quick-xml checks that the end tag matches its start tag.
                let frame = stack
                    .pop()
                    .ok_or_else(|| structure("end tag without start tag".into()))?;
                close(frame, &mut stack, &mut root).map_err(structure)?;
            }
            Event::Text(text) => {
                let text = text.xml10_content().map_err(|e| DecodeError::Xml {
                    position,
                    message: e.to_string(),
                })?;
                push_text(&mut stack, &text).map_err(structure)?;
            }
            Event::CData(data) => {
                let text = data.decode().map_err(|e| DecodeError::Xml {
                    position,
                    message: e.to_string(),
                })?;
                push_text(&mut stack, &text).map_err(structure)?;
            }
            Event::GeneralRef(reference) => {
                let text = reference_text(&reference, position)?;
                push_text(&mut stack, &text).map_err(structure)?;
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(DecodeError::Xml {
            position: reader.buffer_position(),
            message: format!("unclosed element <{}>", stack[stack.len() - 1].key),
        });
    }
    root.ok_or_else(|| DecodeError::Structure {
        position: reader.buffer_position(),
        message: "no root element".into(),
    })
}

/// The text a character reference (`&#233;`) or one of the five predefined entities stands for.
fn reference_text(
    reference: &BytesRef<'_>,
    position: u64,
) -> Result<Cow<'static, str>, DecodeError> {
    let xml = |e: &dyn std::fmt::Display| DecodeError::Xml {
        position,
        message: e.to_string(),
    };
    if let Some(ch) = reference.resolve_char_ref().map_err(|e| xml(&e))? {
        return Ok(ch.to_string().into());
    }
    let name = reference.decode().map_err(|e| xml(&e))?;
    match quick_xml::escape::resolve_predefined_entity(&name) {
        Some(s) => Ok(s.into()),
        None => Err(DecodeError::Structure {
            position,
            message: format!("unknown entity &{name};"),
        }),
    }
}

/// Starts a frame for an element: its key (element name or `name` attribute
/// of `<field>`) and its `type`.
fn open(reader: &Reader<&[u8]>, start: &BytesStart<'_>) -> Result<Frame, String> {
    let decoder = reader.decoder();
    let element = decoder
        .decode(start.name().as_ref())
        .map_err(|e| e.to_string())?
        .into_owned();
    let mut key = None;
    let mut kind = Kind::Plain;
    for attr in start.attributes() {
        let attr = attr.map_err(|e| e.to_string())?;
        // Normalized as XML 1.0 says (the encoder writes tab, newline and carriage return in
        // attributes as character references, which normalization keeps).
        let value = attr
            .decoded_and_normalized_value(XmlVersion::Explicit1_0, decoder)
            .map_err(|e| e.to_string())?;
        match attr.key.as_ref() {
            b"type" => {
                kind = match value.as_ref() {
                    "number" => Kind::Number,
                    "boolean" => Kind::Boolean,
                    "null" => Kind::Null,
                    "list" => Kind::List,
                    "map" => Kind::Map,
                    other => return Err(format!("<{element}> has unknown type=\"{other}\"")),
                }
            }
            b"name" if element == FIELD => key = Some(value.into_owned()),
            _ => {}
        }
    }
    Ok(Frame {
        key: key.unwrap_or(element),
        kind,
        text: String::new(),
        children: Vec::new(),
    })
}

fn push_text(stack: &mut [Frame], text: &str) -> Result<(), String> {
    match stack.last_mut() {
        Some(frame) => {
            frame.text.push_str(text);
            Ok(())
        }
        None if is_xml_whitespace(text) => Ok(()),
        None => Err("text outside the root element".into()),
    }
}

fn is_xml_whitespace(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// Turns a finished element into its value and hands it to its parent (or
/// makes it the root).
fn close(frame: Frame, stack: &mut [Frame], root: &mut Option<Value>) -> Result<(), String> {
    let Frame {
        key,
        kind,
        text,
        children,
    } = frame;
    let is_root = stack.is_empty();
    let kind = if is_root { Kind::Map } else { kind };
    let no_children = |what: &str| -> Result<(), String> {
        if children.is_empty() {
            Ok(())
        } else {
            Err(format!("<{key}> is a {what} but has child elements"))
        }
    };
    let no_text = |what: &str| -> Result<(), String> {
        if is_xml_whitespace(&text) {
            Ok(())
        } else {
            Err(format!("<{key}> is a {what} but has text"))
        }
    };
    let value = match kind {
        Kind::Plain if children.is_empty() => Value::String(text),
        Kind::Plain | Kind::Map => {
            no_text("map")?;
            Value::Object(children.into_iter().collect())
        }
        Kind::List => {
            no_text("list")?;
            Value::Array(children.into_iter().map(|(_, v)| v).collect())
        }
        Kind::Number => {
            no_children("number")?;
            let n: Number = text
                .trim()
                .parse()
                .map_err(|_| format!("<{key}> has type=\"number\" but text {text:?}"))?;
            Value::Number(n)
        }
        Kind::Boolean => {
            no_children("boolean")?;
            match text.trim() {
                "true" | "1" => Value::Bool(true),
                "false" | "0" => Value::Bool(false),
                _ => return Err(format!("<{key}> has type=\"boolean\" but text {text:?}")),
            }
        }
        Kind::Null => {
            no_children("null")?;
            no_text("null")?;
            Value::Null
        }
    };
    match stack.last_mut() {
        Some(parent) => parent.children.push((key, value)),
        None => *root = Some(value),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn enc(v: Value) -> String {
        let Value::Object(m) = v else { unreachable!() };
        let mut out = Vec::new();
        encode_into(&m, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn body(s: &str) -> String {
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<event>{s}</event>")
    }

    #[test]
    fn names() {
        for ok in ["a", "_x", "User-Agent", "a.b", "A9_-."] {
            assert!(is_plain_name(ok), "{ok}");
        }
        for bad in [
            "", "2nd", "a b", "a:b", "-a", ".a", "xml", "XmLfoo", "straße", "a/b",
        ] {
            assert!(!is_plain_name(bad), "{bad}");
        }
        assert_eq!(
            enc(json!({"2nd field": "x", "a:b": {"c\"d": 1}})),
            body(
                "<field name=\"2nd field\">x</field><field name=\"a:b\">\
                 <field name=\"c&quot;d\" type=\"number\">1</field></field>"
            )
        );
    }

    #[test]
    fn escaping() {
        let mut out = Vec::new();
        escape(
            &mut out,
            "a&<>\"'\r\n\t\u{0}\u{1F}\u{7F}\u{FFFE}\u{FFFF}\u{FFFD}é",
            false,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a&amp;&lt;&gt;&quot;&apos;&#13;\n\t\u{FFFD}\u{FFFD}\u{7F}\u{FFFD}\u{FFFD}\u{FFFD}é"
        );
        let mut out = Vec::new();
        escape(&mut out, "a\r\n\tb", true);
        assert_eq!(out, b"a&#13;&#10;&#9;b");
    }

    #[test]
    fn types_and_empties() {
        assert_eq!(
            enc(json!({"s": "", "n": null, "b": false, "i": 7, "l": [], "m": {}, "x": [[1]]})),
            body(
                "<s/><n type=\"null\"/><b type=\"boolean\">false</b><i type=\"number\">7</i>\
                 <l type=\"list\"/><m type=\"map\"/>\
                 <x type=\"list\"><item type=\"list\"><item type=\"number\">1</item></item></x>"
            )
        );
        assert_eq!(
            enc(json!({})),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<event/>"
        );
    }

    #[test]
    fn decodes_foreign_documents() {
        let doc = "<?xml version=\"1.0\"?>\n<!-- hi -->\n<root>\n  <a>x &amp; y&#x41;</a>\n  \
                   <b><![CDATA[<raw>]]></b>\n  <l type=\"list\">\n    <x>1</x>\n    <y>2</y>\n  </l>\n\
                   <c>\r\n</c><a>again</a>\n</root>\n";
        assert_eq!(
            decode_xml(doc.as_bytes()).unwrap(),
            json!({"a": "again", "b": "<raw>", "l": ["1", "2"], "c": "\n"})
        );
        assert_eq!(decode_xml(b"<event/>").unwrap(), json!({}));
    }

    #[test]
    fn decode_errors() {
        let cases: &[&[u8]] = &[
            b"",
            b"<event>",
            b"<event></other>",
            b"<event><a type=\"number\">x</a></event>",
            b"<event><a type=\"boolean\">yes</a></event>",
            b"<event><a type=\"date\">x</a></event>",
            b"<event>text</event>",
            b"<event><a>&nbsp;</a></event>",
            b"<event/><event/>",
            b"junk<event/>",
        ];
        for case in cases {
            assert!(
                decode_xml(case).is_err(),
                "{:?} should fail",
                String::from_utf8_lossy(case)
            );
        }
        let err = decode_xml(b"<event><a type=\"number\">x</a></event>").unwrap_err();
        assert!(matches!(err, DecodeError::Structure { .. }), "{err}");
        assert!(err.to_string().contains("type=\"number\""), "{err}");
    }
}
