//! Input validation. Each failure is a reason string for the quarantine record; [`reason_class`]
//! sorts reasons into the quarantine metric's classes.

/// The input check, shared with the bench and the fuzz targets (`hookline_schemas::decode_input`).
pub use hookline_schemas::decode_input;

/// The class of a quarantine reason: the `reason` label of the quarantine metric (bounded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReasonClass {
    /// A tombstone on a stream topic.
    Null,
    /// The input is larger than `--max-record-bytes`.
    Oversized,
    Utf8,
    Json,
    Schema,
    Key,
    /// An output of the input is larger than the producer may send.
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
            ReasonClass::TooLarge => TOO_LARGE,
            ReasonClass::AccountMismatch => "account-mismatch",
            ReasonClass::Other => "other",
        }
    }
}

/// The prefix of the reason (and the metric's class) of an input whose output was too large.
const TOO_LARGE: &str = "too-large";

/// The class of a quarantine reason.
pub fn reason_class(reason: &str) -> ReasonClass {
    if reason.starts_with(TOO_LARGE) {
        ReasonClass::TooLarge
    } else if reason.starts_with("account-mismatch") {
        ReasonClass::AccountMismatch
    } else if reason.starts_with("null value") {
        ReasonClass::Null
    } else if reason.contains("exceeds the limit") {
        ReasonClass::Oversized
    } else if reason.contains("UTF-8") {
        ReasonClass::Utf8
    } else if reason.contains("not JSON") {
        ReasonClass::Json
    } else if reason.starts_with("schema") || reason.contains("contract") {
        ReasonClass::Schema
    } else if reason.contains("key") {
        ReasonClass::Key
    } else {
        ReasonClass::Other
    }
}

/// The quarantine reason for an error that means "an output of this input is too large to
/// produce" (`too-large: ...`, naming the output and its size); `None` for any other error.
pub fn too_large_reason(e: &crate::StageError) -> Option<String> {
    use hookline_kafka::KafkaError;
    let (output, size, max) = match e {
        crate::StageError::OutputTooLarge { output, size, max } => (output.clone(), *size, *max),
        crate::StageError::Kafka(KafkaError::TooLarge { topic, size, max }) => {
            (format!("an output to {topic}"), *size, *max)
        }
        _ => return None,
    };
    Some(format!(
        "{TOO_LARGE}: {output} would be {size} bytes, over the limit of {max} bytes (the producer's message.max.bytes less framing, and for a delivery less room for the sender's retry record)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_model::TrackingEvent;
    use hookline_schemas::SchemaKind;

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
            assert_eq!(reason_class(&reason).as_str(), class, "{reason}");
        }
        // Refusals of the join stages themselves, not of the input's form.
        let mismatch = "account-mismatch: input of account 2002 for profile 4711 of database 12, \
                        but the stored row belongs to account 1001";
        assert_eq!(reason_class(mismatch).as_str(), "account-mismatch");
        let row = "too-large: the new row of profile 12:4711 takes 1200000 bytes, more than ...";
        assert_eq!(reason_class(row).as_str(), "too-large");
    }
}

#[cfg(test)]
mod too_large_tests {
    use super::*;
    use hookline_kafka::KafkaError;

    #[test]
    fn too_large_outputs_get_a_reason_naming_the_output_and_its_size() {
        let e = crate::StageError::OutputTooLarge {
            output: "the delivery to hookline.deliveries for subscription sub-1".into(),
            size: 1_200_000,
            max: 999_744,
        };
        let reason = too_large_reason(&e).expect("a too-large reason");
        assert!(reason.starts_with("too-large: the delivery to hookline.deliveries for subscription sub-1 would be 1200000 bytes"), "{reason}");
        assert_eq!(reason_class(&reason), ReasonClass::TooLarge);
        assert_eq!(reason_class(&reason).as_str(), "too-large");
        let e = crate::StageError::Kafka(KafkaError::TooLarge {
            topic: "hookline.profiles".into(),
            size: 2_000_000,
            max: 999_744,
        });
        assert!(too_large_reason(&e)
            .unwrap()
            .contains("an output to hookline.profiles would be 2000000 bytes"));
        let other = crate::StageError::Kafka(KafkaError::TableStopped { topic: "t".into() });
        assert_eq!(too_large_reason(&other), None);
    }
}
