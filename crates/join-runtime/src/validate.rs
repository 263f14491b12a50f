//! Input validation. Each failure is a [`QuarantineReason`]: the text of the quarantine record
//! and its class, the quarantine metric's label.

/// The input check, shared with the bench and the fuzz targets (`hookline_schemas::decode_input`).
pub use hookline_schemas::decode_input;

/// Why an input is quarantined, and its class (the quarantine metric's label); the types live
/// in the model, next to the quarantine record.
pub use hookline_model::{QuarantineReason, ReasonClass};

/// The prefix of the reason of an input whose output was too large.
const TOO_LARGE: &str = "too-large";

/// The quarantine reason for an error that means "an output of this input is too large to
/// produce" (`too-large: ...`, naming the output and its size); `None` for any other error.
pub fn too_large_reason(e: &crate::StageError) -> Option<QuarantineReason> {
    use hookline_kafka::KafkaError;
    let (output, size, max) = match e {
        crate::StageError::OutputTooLarge { output, size, max } => (output.clone(), *size, *max),
        crate::StageError::Kafka(KafkaError::TooLarge { topic, size, max }) => {
            (format!("an output to {topic}"), *size, *max)
        }
        _ => return None,
    };
    Some(QuarantineReason::new(ReasonClass::TooLarge, format!(
        "{TOO_LARGE}: {output} would be {size} bytes, over the limit of {max} bytes (the producer's message.max.bytes less framing, and for a delivery less room for the sender's retry record)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline_model::TrackingEvent;
    use hookline_schemas::SchemaKind;

    fn decode(
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
    ) -> Result<TrackingEvent, QuarantineReason> {
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
            assert_eq!(reason.class.as_str(), class, "{reason}");
        }
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
        assert!(reason.text.starts_with("too-large: the delivery to hookline.deliveries for subscription sub-1 would be 1200000 bytes"), "{reason}");
        assert_eq!(reason.class, ReasonClass::TooLarge);
        assert_eq!(reason.class.as_str(), "too-large");
        let e = crate::StageError::Kafka(KafkaError::TooLarge {
            topic: "hookline.profiles".into(),
            size: 2_000_000,
            max: 999_744,
        });
        assert!(too_large_reason(&e)
            .unwrap()
            .text
            .contains("an output to hookline.profiles would be 2000000 bytes"));
        let other = crate::StageError::Kafka(KafkaError::TableStopped { topic: "t".into() });
        assert_eq!(too_large_reason(&other), None);
    }
}
