//! Input validation. Each failure is a reason string for the quarantine record.

use hookline_schemas::{validators, SchemaKind};
use serde::de::DeserializeOwned;

/// Checks one input record and decodes it. The key must be `<database>:<profile>` of the value
/// (checked by `key_of`).
pub fn decode_input<T: DeserializeOwned>(
    kind: SchemaKind,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    max_bytes: usize,
    key_of: impl Fn(&T) -> String,
) -> Result<T, String> {
    let bytes =
        payload.ok_or_else(|| "null value: a tombstone is not allowed on this topic".to_owned())?;
    if bytes.len() > max_bytes {
        return Err(format!(
            "record of {} bytes exceeds the limit of {max_bytes} bytes",
            bytes.len()
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| format!("value is not valid UTF-8: {e}"))?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("value is not JSON: {e}"))?;
    validators()
        .validate(kind, &value)
        .map_err(|v| format!("schema {}: {v}", kind.file_name()))?;
    let typed: T = serde_json::from_value(value)
        .map_err(|e| format!("value does not match the contract: {e}"))?;
    let expected = key_of(&typed);
    match key {
        None => Err(format!("record has no key; expected {expected:?}")),
        Some(k) if k != expected.as_bytes() => Err(format!(
            "key {:?} does not match the value; expected {expected:?}",
            String::from_utf8_lossy(k)
        )),
        Some(_) => Ok(typed),
    }
}

/// A short class of a reason, for the `reason` label of the quarantine metric (bounded).
pub fn reason_class(reason: &str) -> &'static str {
    if reason.starts_with("account-mismatch") {
        "account-mismatch"
    } else if reason.starts_with("too-large") {
        "too-large"
    } else if reason.starts_with("null value") {
        "null"
    } else if reason.contains("exceeds the limit") {
        "oversized"
    } else if reason.contains("UTF-8") {
        "utf8"
    } else if reason.contains("not JSON") {
        "json"
    } else if reason.starts_with("schema") || reason.contains("contract") {
        "schema"
    } else if reason.contains("key") {
        "key"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_model::TrackingEvent;

    fn decode(key: Option<&[u8]>, payload: Option<&[u8]>) -> Result<TrackingEvent, String> {
        decode_input(
            SchemaKind::TrackingEvent,
            key,
            payload,
            1024,
            |e: &TrackingEvent| e.key().to_string(),
        )
    }

    #[test]
    fn every_kind_of_bad_input_gets_a_reason() {
        let good = br#"{"id":"e","type":"open","account":"1","database":"12","profile":"3","timestamp":"2026-11-25T10:15:00Z"}"#;
        assert!(decode(Some(b"12:3"), Some(good)).is_ok());
        type Case<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, &'a str);
        let cases: Vec<Case<'_>> = vec![
            (Some(b"12:3"), None, "null"),
            (Some(b"12:3"), Some(&[b'{'; 2000]), "oversized"),
            (Some(b"12:3"), Some(b"\xff\xfe"), "utf8"),
            (Some(b"12:3"), Some(b"{not json"), "json"),
            (Some(b"12:3"), Some(br#"{"id":"e","type":"klik","account":"1","database":"12","profile":"3","timestamp":"2026-11-25T10:15:00Z"}"#), "schema"),
            (Some(b"12:3"), Some(br#"{"id":"e","type":"open","account":"1","database":"12","timestamp":"2026-11-25T10:15:00Z"}"#), "schema"),
            (Some(b"12:3"), Some(br#"{"id":"e","type":"open","account":"1","database":12,"profile":"3","timestamp":"2026-11-25T10:15:00Z"}"#), "schema"),
            (Some(b"12:4"), Some(good), "key"),
            (None, Some(good), "key"),
        ];
        for (k, v, class) in cases {
            let reason = decode(k, v).unwrap_err();
            assert_eq!(reason_class(&reason), class, "{reason}");
        }
        // Refusals of the join stages themselves, not of the input's form.
        let mismatch = "account-mismatch: input of account 2002 for profile 4711 of database 12, \
                        but the stored row belongs to account 1001";
        assert_eq!(reason_class(mismatch), "account-mismatch");
        let row = "too-large: the new row of profile 12:4711 takes 1200000 bytes, more than ...";
        assert_eq!(reason_class(row), "too-large");
    }
}
