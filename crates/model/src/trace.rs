//! W3C Trace Context (`traceparent`): a platform that puts one on the Kafka record of an event
//! finds the webhook that event caused in the same trace. Hookline checks the header it reads
//! and continues the trace with a span of its own in the request it sends.

/// Whether `value` is a `traceparent` of version `00` that may be continued: `00-` 32 hex
/// digits of trace id, `-` 16 of parent id, `-` 2 of flags, lower case, neither id all zeros.
pub fn is_valid_traceparent(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    matches!(parts.as_slice(),
        [version, trace, parent, flags]
            if *version == "00" && hex(trace, 32) && hex(parent, 16) && hex(flags, 2)
                && !zero(trace) && !zero(parent))
}

/// The `traceparent` of a child span `span_id` of `parent` (same trace id and flags), or `None`
/// when `parent` is not valid or `span_id` is 0.
pub fn child_traceparent(parent: &str, span_id: u64) -> Option<String> {
    if !is_valid_traceparent(parent) || span_id == 0 {
        return None;
    }
    let (trace, flags) = (&parent[3..35], &parent[53..55]);
    Some(format!("00-{trace}-{span_id:016x}-{flags}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn only_well_formed_version_00_headers_are_continued() {
        assert!(is_valid_traceparent(PARENT));
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        ] {
            assert!(!is_valid_traceparent(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_child_keeps_the_trace_and_flags_with_its_own_span() {
        assert_eq!(
            child_traceparent(PARENT, 0xabc).as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000abc-01")
        );
        assert_eq!(child_traceparent(PARENT, 0), None);
        assert_eq!(child_traceparent("garbage", 7), None);
    }
}
