//! Where an input record came from, as the deliveries it causes record it: topic, partition,
//! offset, the record's timestamp (the sender measures event-to-delivery latency from it) and
//! the W3C `traceparent` header, if the producer sent a well-formed one. With trace export on,
//! the deliveries carry the record span's own `traceparent` instead (a child of the header's),
//! so the sender's attempt spans hang under the stage's record span.

use hookline_model::trace::is_valid_traceparent;
use hookline_model::SourcePosition;
use rdkafka::message::{BorrowedMessage, Headers, Message};

/// The record header a platform puts its trace context in.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The source position of `msg`.
pub fn source_of(msg: &BorrowedMessage<'_>) -> SourcePosition {
    SourcePosition {
        topic: msg.topic().to_owned(),
        partition: msg.partition(),
        offset: msg.offset(),
        timestamp_ms: msg.timestamp().to_millis().filter(|ms| *ms >= 0),
        traceparent: hookline_telemetry::trace::traceparent_of(&tracing::Span::current())
            .or_else(|| traceparent_of(msg)),
    }
}

/// The span of processing `msg` in `stage` (nothing without trace export).
pub fn span_of(stage: &str, msg: &BorrowedMessage<'_>) -> tracing::Span {
    hookline_telemetry::trace::record_span(
        stage,
        msg.topic(),
        msg.partition(),
        msg.offset(),
        traceparent_of(msg).as_deref(),
    )
}

/// The record's `traceparent` header when it is well-formed (a malformed one is ignored: the
/// event itself is fine).
fn traceparent_of(msg: &BorrowedMessage<'_>) -> Option<String> {
    let headers = msg.headers()?;
    headers
        .iter()
        .filter(|h| h.key.eq_ignore_ascii_case(TRACEPARENT_HEADER))
        .find_map(|h| std::str::from_utf8(h.value?).ok())
        .map(str::trim)
        .filter(|v| is_valid_traceparent(v))
        .map(str::to_owned)
}
