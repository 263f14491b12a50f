//! The record written to the `quarantine` topic for input that a stage cannot process.

use base64::Engine;
use serde::{Deserialize, Serialize};

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
    /// The original value bytes, base64 (standard alphabet, padded).
    pub value_base64: Option<String>,
    pub reason: String,
    pub quarantined_at: String,
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
        }
    }
}
