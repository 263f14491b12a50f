//! The input check of the join stages: one record's bytes, checked against its schema and
//! decoded into its contract type. It lives here, free of Kafka, so the stages, the bench and
//! the fuzz targets run the very same code.

use hookline_model::{QuarantineReason, ReasonClass};
use serde::de::DeserializeOwned;

use crate::{validators, SchemaKind};

/// Checks one input record and decodes it. The key must be `<database>:<profile>` of the value
/// (checked by `key_of`). The error is the quarantine reason, with its class.
pub fn decode_input<T: DeserializeOwned>(
    kind: SchemaKind,
    key: Option<&[u8]>,
    payload: Option<&[u8]>,
    max_bytes: usize,
    key_of: impl Fn(&T) -> String,
) -> Result<T, QuarantineReason> {
    let refused = |class, text: String| QuarantineReason::new(class, text);
    let bytes = payload.ok_or_else(|| {
        refused(
            ReasonClass::Null,
            "null value: a tombstone is not allowed on this topic".to_owned(),
        )
    })?;
    if bytes.len() > max_bytes {
        return Err(refused(
            ReasonClass::Oversized,
            format!(
                "record of {} bytes exceeds the limit of {max_bytes} bytes",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| refused(ReasonClass::Utf8, format!("value is not valid UTF-8: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| refused(ReasonClass::Json, format!("value is not JSON: {e}")))?;
    validators().validate(kind, &value).map_err(|v| {
        refused(
            ReasonClass::Schema,
            format!("schema {}: {v}", kind.file_name()),
        )
    })?;
    let typed: T = serde_json::from_value(value).map_err(|e| {
        refused(
            ReasonClass::Schema,
            format!("value does not match the contract: {e}"),
        )
    })?;
    let expected = key_of(&typed);
    match key {
        None => Err(refused(
            ReasonClass::Key,
            format!("record has no key; expected {expected:?}"),
        )),
        Some(k) if k != expected.as_bytes() => Err(refused(
            ReasonClass::Key,
            format!(
                "key {:?} does not match the value; expected {expected:?}",
                String::from_utf8_lossy(k)
            ),
        )),
        Some(_) => Ok(typed),
    }
}
