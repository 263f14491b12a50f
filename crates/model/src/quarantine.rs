//! The record written to the `quarantine` topic for input that a stage cannot process.
//!
//! A quarantine record carries the original bytes (base64, a third larger), so a large input
//! would make a quarantine record too large to produce. [`QuarantineRecord::fit_within`] cuts
//! such a record down to a truncated copy that always fits, marked `truncated` and carrying the
//! original sizes, so quarantining can never be what stops a stage.

use base64::Engine;
use serde::{Deserialize, Serialize};

/// The longest reason kept in a truncated record, in characters.
pub const TRUNCATED_REASON_CHARS: usize = 2_048;
/// The most base64 characters of the key kept in a truncated record (768 key bytes).
pub const TRUNCATED_KEY_BASE64_CHARS: usize = 1_024;

/// The class of a quarantine reason: the `reason` label of
/// `hookline_stage_quarantined_records_total` (bounded; dashboards and alerts use it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasonClass {
    /// A tombstone on a stream topic.
    Null,
    /// The input is larger than `--max-record-bytes`.
    Oversized,
    Utf8,
    Json,
    /// Not valid against its schema, or not of the contract's types.
    Schema,
    /// No key, or a key that does not match the value.
    Key,
    /// An output of the input (or the profile row it leads to) is larger than the producer may
    /// send.
    TooLarge,
    /// The input's account differs from the stored profile row's.
    AccountMismatch,
    Other,
}

impl ReasonClass {
    /// The label value; stable, dashboards and alerts use it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonClass::Null => "null",
            ReasonClass::Oversized => "oversized",
            ReasonClass::Utf8 => "utf8",
            ReasonClass::Json => "json",
            ReasonClass::Schema => "schema",
            ReasonClass::Key => "key",
            ReasonClass::TooLarge => "too-large",
            ReasonClass::AccountMismatch => "account-mismatch",
            ReasonClass::Other => "other",
        }
    }
}

/// Why an input is quarantined: its class (the metric's label) and the text the quarantine
/// record carries (what is wrong and what to fix, never data of another account).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineReason {
    pub class: ReasonClass,
    pub text: String,
}

impl QuarantineReason {
    pub fn new(class: ReasonClass, text: impl Into<String>) -> Self {
        QuarantineReason {
            class,
            text: text.into(),
        }
    }
}

impl std::fmt::Display for QuarantineReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Input that could not be processed, with enough to find, understand and replay it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    pub stage: String,
    pub source_topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The key as UTF-8, when it is valid UTF-8.
    #[serde(default)]
    pub key: Option<String>,
    pub key_base64: Option<String>,
    /// The original value bytes, base64 (standard alphabet, padded); when `truncated`, only a
    /// prefix of them.
    pub value_base64: Option<String>,
    pub reason: String,
    pub quarantined_at: String,
    /// True when the key, the value or the reason were cut to make the record fit the topic's
    /// record size; `key_size` and `value_size` then still give the original sizes.
    #[serde(default)]
    pub truncated: bool,
    /// The original key's size in bytes; `None` when the record had no key.
    #[serde(default)]
    pub key_size: Option<u64>,
    /// The original value's size in bytes; `None` when the record had no value (a tombstone).
    #[serde(default)]
    pub value_size: Option<u64>,
}

impl QuarantineRecord {
    pub fn new(
        stage: &str,
        topic: &str,
        partition: i32,
        offset: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        reason: impl Into<String>,
    ) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        Self {
            stage: stage.to_owned(),
            source_topic: topic.to_owned(),
            partition,
            offset,
            key: key
                .and_then(|k| std::str::from_utf8(k).ok())
                .map(str::to_owned),
            key_base64: key.map(|k| b64.encode(k)),
            value_base64: value.map(|v| b64.encode(v)),
            reason: reason.into(),
            quarantined_at: crate::timefmt::now_rfc3339(),
            truncated: false,
            key_size: key.map(|k| k.len() as u64),
            value_size: value.map(|v| v.len() as u64),
        }
    }

    /// The record as JSON in at most `max_bytes`: whole if it fits; otherwise a truncated copy
    /// whose reason and key are shortened (to [`TRUNCATED_REASON_CHARS`] and
    /// [`TRUNCATED_KEY_BASE64_CHARS`]) and whose value keeps the longest prefix that fits.
    /// `None` only when not even the record without any value fits (a `max_bytes` of a few
    /// kilobytes or less).
    pub fn to_json_within(&mut self, max_bytes: usize) -> Option<Vec<u8>> {
        let json = self.to_json();
        if json.len() <= max_bytes {
            return Some(json);
        }
        self.truncated = true;
        cut_chars(&mut self.reason, TRUNCATED_REASON_CHARS);
        if let Some(k) = &mut self.key_base64 {
            if k.len() > TRUNCATED_KEY_BASE64_CHARS {
                k.truncate(TRUNCATED_KEY_BASE64_CHARS);
                // The text form would no longer match the bytes; the prefix says enough.
                if let Some(text) = &mut self.key {
                    cut_chars(text, TRUNCATED_KEY_BASE64_CHARS / 2);
                }
            }
        }
        let json = self.to_json();
        let excess = json.len().saturating_sub(max_bytes);
        if let Some(v) = &mut self.value_base64 {
            // Base64 needs no escaping in JSON, so every character cut is one byte less; whole
            // groups of four keep it valid base64 of a prefix of the original bytes.
            let keep = v.len().saturating_sub(excess.next_multiple_of(4));
            v.truncate(keep - keep % 4);
        }
        let json = self.to_json();
        (json.len() <= max_bytes).then_some(json)
    }

    /// The size of the record's JSON as it stands.
    pub fn to_json_len(&self) -> usize {
        self.to_json().len()
    }

    fn to_json(&self) -> Vec<u8> {
        // Strings, integers and booleans only: serializing cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Shortens `s` to at most `max` characters, on a character boundary.
fn cut_chars(s: &mut String, max: usize) {
    if let Some((i, _)) = s.char_indices().nth(max) {
        s.truncate(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64_decode(s: &str) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .expect("valid base64")
    }

    #[test]
    fn a_small_record_is_kept_whole() {
        let mut r = QuarantineRecord::new("tracking", "t", 0, 7, Some(b"12:3"), Some(b"{x"), "bad");
        let json = r.to_json_within(1_000).expect("fits");
        let back: QuarantineRecord = serde_json::from_slice(&json).expect("parses");
        assert!(!back.truncated);
        assert_eq!(back.value_size, Some(2));
        assert_eq!(back.key_size, Some(4));
        assert_eq!(b64_decode(back.value_base64.as_deref().unwrap()), b"{x");
    }

    #[test]
    fn a_large_record_becomes_a_truncated_prefix_that_fits() {
        let value: Vec<u8> = (0..800_000u32).map(|i| (i % 251) as u8).collect();
        let key = "k".repeat(5_000);
        let reason = "日".repeat(10_000);
        for max in [1_000_000, 100_000, 10_000] {
            let mut r = QuarantineRecord::new(
                "tracking",
                "hookline.tracking",
                2,
                41,
                Some(key.as_bytes()),
                Some(&value),
                reason.clone(),
            );
            let json = r.to_json_within(max).expect("fits");
            assert!(json.len() <= max, "{} > {max}", json.len());
            // Nearly all of the room is used for the value.
            assert!(json.len() + 8 >= max, "{} much below {max}", json.len());
            let back: QuarantineRecord = serde_json::from_slice(&json).expect("parses");
            assert!(back.truncated);
            assert_eq!(
                (back.partition, back.offset, back.source_topic.as_str()),
                (2, 41, "hookline.tracking")
            );
            assert_eq!(back.value_size, Some(800_000));
            assert_eq!(back.key_size, Some(5_000));
            let prefix = b64_decode(back.value_base64.as_deref().unwrap());
            assert!(!prefix.is_empty() && prefix.len() < value.len());
            assert_eq!(prefix, value[..prefix.len()]);
            assert!(back.reason.chars().count() <= TRUNCATED_REASON_CHARS);
            assert!(key
                .as_bytes()
                .starts_with(&b64_decode(back.key_base64.as_deref().unwrap())));
        }
    }

    #[test]
    fn no_room_at_all_is_none() {
        let mut r = QuarantineRecord::new("tracking", "t", 0, 7, None, Some(&[0; 100]), "bad");
        assert_eq!(r.to_json_within(50), None);
    }

    #[test]
    fn records_without_the_new_fields_still_parse() {
        let old = r#"{"stage":"tracking","source_topic":"t","partition":0,"offset":1,"key":null,
            "key_base64":null,"value_base64":null,"reason":"r","quarantined_at":"2026-01-01T00:00:00Z"}"#;
        let r: QuarantineRecord = serde_json::from_str(old).expect("parses");
        assert!(!r.truncated);
        assert_eq!(r.value_size, None);
    }
}
