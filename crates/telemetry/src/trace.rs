//! Traces: one span per input record in the join stages and one per delivery attempt in the
//! sender, exported by OpenTelemetry's OTLP/HTTP exporter when the standard `OTEL_*`
//! variables ask for it, and continued from a W3C `traceparent` on the Kafka record.
//!
//! Export is on when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is
//! set, or `OTEL_TRACES_EXPORTER=otlp`; `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`
//! turn it off. The endpoint is plain `http://` (a collector on the node or in the pod: the
//! exporter carries no TLS stack, which would be a second crypto library beside aws-lc-rs).
//! `OTEL_EXPORTER_OTLP_PROTOCOL` is `http/protobuf` (the default) or `http/json`;
//! `OTEL_SERVICE_NAME` defaults to the binary's name; sampling (`OTEL_TRACES_SAMPLER`), batching
//! (`OTEL_BSP_*`) and headers (`OTEL_EXPORTER_OTLP_HEADERS`) are the SDK's. Without export no
//! span is created at all: a record costs nothing extra.
//!
//! Spans carry positions and ids (topic, partition, offset, subscription, attempt), never
//! payloads, URLs or secrets.

use std::collections::HashMap;
use std::sync::OnceLock;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The `tracing` target of the spans made for export.
pub const TARGET: &str = "hookline::trace";

/// The exporting provider, kept for [`finish`].
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Why tracing could not be set up: said once at start, the process runs on without traces.
#[derive(Debug, thiserror::Error)]
pub enum TraceSetupError {
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL={0:?} is not supported: use http/protobuf or http/json (an OTLP/HTTP endpoint, usually port 4318)")]
    Protocol(String),
    #[error("{0}={1:?}: Hookline exports traces over plain http only (no second TLS stack); point it at an OpenTelemetry Collector on the node or in the pod (http://…:4318) and let that forward over TLS")]
    Https(&'static str, String),
    #[error("the OTLP exporter could not be built: {0}")]
    Exporter(String),
}

/// Refuses an `https://` collector endpoint at start, with what to do instead: the exporter
/// carries no TLS stack of its own.
pub fn check_endpoint(var: impl Fn(&str) -> Option<String>) -> Result<(), TraceSetupError> {
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ] {
        if let Some(v) = var(name).filter(|v| v.trim().to_ascii_lowercase().starts_with("https:")) {
            return Err(TraceSetupError::Https(name, v));
        }
    }
    Ok(())
}

/// Whether the `OTEL_*` variables (read through `var`) ask for trace export.
pub fn export_requested(var: impl Fn(&str) -> Option<String>) -> bool {
    let set = |k: &str| var(k).is_some_and(|v| !v.trim().is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return false;
    }
    match var("OTEL_TRACES_EXPORTER").map(|v| v.trim().to_ascii_lowercase()) {
        Some(v) if v == "none" => false,
        Some(v) if v == "otlp" => true,
        _ => set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
    }
}

/// The OTLP/HTTP encoding `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` or `OTEL_EXPORTER_OTLP_PROTOCOL`
/// names (`http/protobuf` when unset).
pub fn protocol(var: impl Fn(&str) -> Option<String>) -> Result<Protocol, TraceSetupError> {
    let value = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_default();
    match value.trim() {
        "" | "http/protobuf" => Ok(Protocol::HttpBinary),
        "http/json" => Ok(Protocol::HttpJson),
        other => Err(TraceSetupError::Protocol(other.to_owned())),
    }
}

/// The exporting layer when the environment asks for one (see the module's documentation).
pub fn layer<S>() -> Result<Option<impl tracing_subscriber::Layer<S>>, TraceSetupError>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let var = |k: &str| std::env::var(k).ok();
    if !export_requested(var) {
        return Ok(None);
    }
    check_endpoint(var)?;
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(protocol(var)?)
        .build()
        .map_err(|e| TraceSetupError::Exporter(e.to_string()))?;
    let mut resource = Resource::builder();
    if var("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(binary_name());
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("hookline");
    let _ = PROVIDER.set(provider);
    Ok(Some(tracing_opentelemetry::layer().with_tracer(tracer)))
}

fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "hookline".to_owned())
}

/// Whether spans are exported (and so created).
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// Sends the spans still buffered and stops the exporter: the last thing a binary does.
pub fn finish() {
    if let Some(p) = PROVIDER.get() {
        if let Err(e) = p.shutdown() {
            eprintln!("hookline: flushing traces failed: {e}");
        }
    }
}

/// The span of one input record of a join stage, a child of the record's `traceparent` when it
/// has one; [`Span::none`] without export.
pub fn record_span(
    stage: &str,
    topic: &str,
    partition: i32,
    offset: i64,
    parent: Option<&str>,
) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(target: TARGET, "record",
        otel.name = format!("{stage} record"), otel.kind = "consumer",
        messaging.system = "kafka", messaging.destination.name = topic,
        messaging.destination.partition.id = partition, messaging.kafka.offset = offset);
    continue_trace(&span, parent);
    span
}

/// The span of one delivery attempt, a child of the delivery's `traceparent` (the record span
/// of the stage that routed it, or the platform's); [`Span::none`] without export.
pub fn attempt_span(subscription: &str, attempt: u32, parent: Option<&str>) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(target: TARGET, "attempt",
        otel.name = "webhook attempt", otel.kind = "client",
        hookline.subscription = subscription, hookline.attempt = attempt,
        http.response.status_code = tracing::field::Empty,
        hookline.result = tracing::field::Empty);
    continue_trace(&span, parent);
    span
}

/// Makes `span` a child of the W3C `traceparent` value, if any.
fn continue_trace(span: &Span, parent: Option<&str>) {
    let Some(parent) = parent else { return };
    let carrier = HashMap::from([("traceparent".to_owned(), parent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(cx);
}

/// The W3C `traceparent` of `span` (its trace id and its own span id), `None` when it is not
/// exported.
pub fn traceparent_of(span: &Span) -> Option<String> {
    if !enabled() || span.is_none() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// The span id of `span` as a number, for a request that names it as its parent.
pub fn span_id_of(span: &Span) -> Option<u64> {
    let tp = traceparent_of(span)?;
    u64::from_str_radix(&tp[36..52], 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn export_follows_the_standard_variables() {
        assert!(!export_requested(env(&[])));
        assert!(export_requested(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4318"
        )])));
        assert!(export_requested(env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://127.0.0.1:4318/v1/traces"
        )])));
        assert!(export_requested(env(&[("OTEL_TRACES_EXPORTER", "otlp")])));
        assert!(!export_requested(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_TRACES_EXPORTER", "none")
        ])));
        assert!(!export_requested(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
            ("OTEL_SDK_DISABLED", "true")
        ])));
    }

    #[test]
    fn grpc_is_refused_with_what_to_use_instead() {
        assert!(matches!(protocol(env(&[])), Ok(Protocol::HttpBinary)));
        assert!(matches!(
            protocol(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")])),
            Ok(Protocol::HttpJson)
        ));
        let e = protocol(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])).unwrap_err();
        assert!(e.to_string().contains("http/protobuf or http/json"), "{e}");
    }

    #[test]
    fn an_https_collector_is_refused_with_what_to_do() {
        assert!(check_endpoint(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4318"
        )]))
        .is_ok());
        let e = check_endpoint(env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "https://collector.example/v1/traces",
        )]))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("OpenTelemetry Collector on the node"),
            "{e}"
        );
    }

    #[test]
    fn without_export_no_span_is_made() {
        assert!(record_span("tracking", "t", 0, 1, None).is_none());
        assert!(attempt_span("s", 1, None).is_none());
        assert_eq!(traceparent_of(&Span::current()), None);
    }
}
