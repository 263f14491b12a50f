//! JSON Schemas (draft 2020-12) of the value of every Hookline topic, embedded in the binary,
//! and a validator that checks a [`serde_json::Value`] against them without any network access.
//!
//! The schema files live in the workspace's `schemas/` directory (one per topic value, see
//! [`SchemaKind`]) and are the authority on what a record must contain; `docs/schemas.md` explains
//! each. [`Validators`] compiles all of them once (the delivery schema is registered as an
//! in-memory resource, so the `$ref`s of the retry and dead-letter schemas resolve offline) and
//! asserts `format` (`date-time`, `uri`), which draft 2020-12 otherwise treats as an annotation.
//!
//! A failed validation yields one [`SchemaViolation`]: the JSON pointer of the offending part of
//! the value and a short human message, fit for a quarantine record's `reason`.
//!
//! ```
//! use hookline_schemas::{validators, SchemaKind};
//! let event = serde_json::json!({"id": "e1", "type": "klik", "account": "1", "database": "12",
//!     "profile": "4711", "timestamp": "2026-11-25T10:15:00Z"});
//! let err = validators().validate(SchemaKind::TrackingEvent, &event).unwrap_err();
//! assert_eq!(err.path, "/type");
//! assert!(err.message.starts_with("\"type\" must be one of click, open, bounce"));
//! ```

mod decode;

pub use decode::decode_input;

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{Draft, JsonType, Resource, ValidationError, Validator};
use serde_json::Value;

/// One schema per topic value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchemaKind {
    /// `tracking`: a click, open, bounce, failure or delivery.
    TrackingEvent,
    /// `profile-changes`: a create, update or delete of a profile or subprofile.
    ProfileChange,
    /// `profiles`: the compacted profile table.
    ProfileState,
    /// `subscriptions`: the compacted subscription table.
    Subscription,
    /// `deliveries`: a built webhook request awaiting sending.
    Delivery,
    /// `retries`: a delivery scheduled for another attempt.
    Retry,
    /// `outcomes`: the result of one attempt.
    Outcome,
    /// `dead-letter`: a delivery that exhausted its retries.
    DeadLetter,
    /// `quarantine`: an input record that could not be processed.
    Quarantine,
    /// `tokens`: the compacted table of the admin API's bearer tokens.
    Token,
    /// `domains`: the compacted table of DNS-validated domains.
    Domain,
    /// `endpoint-health`: the compacted table of the sender's circuit state per endpoint.
    EndpointHealth,
    /// `databases`: the compacted table of per-database settings (display name, e-mail field).
    Database,
}

impl SchemaKind {
    /// Every kind, in topic order.
    pub const ALL: [SchemaKind; 13] = [
        SchemaKind::TrackingEvent,
        SchemaKind::ProfileChange,
        SchemaKind::ProfileState,
        SchemaKind::Subscription,
        SchemaKind::Delivery,
        SchemaKind::Retry,
        SchemaKind::Outcome,
        SchemaKind::DeadLetter,
        SchemaKind::Quarantine,
        SchemaKind::Token,
        SchemaKind::Domain,
        SchemaKind::EndpointHealth,
        SchemaKind::Database,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The schema's file name in the `schemas/` directory, e.g. `tracking-event.schema.json`.
    pub fn file_name(self) -> &'static str {
        match self {
            SchemaKind::TrackingEvent => "tracking-event.schema.json",
            SchemaKind::ProfileChange => "profile-change.schema.json",
            SchemaKind::ProfileState => "profile-state.schema.json",
            SchemaKind::Subscription => "subscription.schema.json",
            SchemaKind::Delivery => "delivery.schema.json",
            SchemaKind::Retry => "retry.schema.json",
            SchemaKind::Outcome => "outcome.schema.json",
            SchemaKind::DeadLetter => "dead-letter.schema.json",
            SchemaKind::Quarantine => "quarantine.schema.json",
            SchemaKind::Token => "token.schema.json",
            SchemaKind::Domain => "domain.schema.json",
            SchemaKind::EndpointHealth => "endpoint-health.schema.json",
            SchemaKind::Database => "database.schema.json",
        }
    }

    /// The schema's text, as embedded at build time.
    pub fn schema_json(self) -> &'static str {
        match self {
            SchemaKind::TrackingEvent => {
                include_str!("../../../schemas/tracking-event.schema.json")
            }
            SchemaKind::ProfileChange => {
                include_str!("../../../schemas/profile-change.schema.json")
            }
            SchemaKind::ProfileState => include_str!("../../../schemas/profile-state.schema.json"),
            SchemaKind::Subscription => include_str!("../../../schemas/subscription.schema.json"),
            SchemaKind::Delivery => include_str!("../../../schemas/delivery.schema.json"),
            SchemaKind::Retry => include_str!("../../../schemas/retry.schema.json"),
            SchemaKind::Outcome => include_str!("../../../schemas/outcome.schema.json"),
            SchemaKind::DeadLetter => include_str!("../../../schemas/dead-letter.schema.json"),
            SchemaKind::Quarantine => include_str!("../../../schemas/quarantine.schema.json"),
            SchemaKind::Token => include_str!("../../../schemas/token.schema.json"),
            SchemaKind::Domain => include_str!("../../../schemas/domain.schema.json"),
            SchemaKind::EndpointHealth => {
                include_str!("../../../schemas/endpoint-health.schema.json")
            }
            SchemaKind::Database => include_str!("../../../schemas/database.schema.json"),
        }
    }

    /// The schema's `$id`: `https://hookline.dev/schemas/<file name>`.
    pub fn schema_id(self) -> String {
        format!("https://hookline.dev/schemas/{}", self.file_name())
    }

    /// The topic whose values the schema describes, without the prefix (`hookline.` by default).
    pub fn topic(self) -> &'static str {
        match self {
            SchemaKind::TrackingEvent => "tracking",
            SchemaKind::ProfileChange => "profile-changes",
            SchemaKind::ProfileState => "profiles",
            SchemaKind::Subscription => "subscriptions",
            SchemaKind::Delivery => "deliveries",
            SchemaKind::Retry => "retries",
            SchemaKind::Outcome => "outcomes",
            SchemaKind::DeadLetter => "dead-letter",
            SchemaKind::Quarantine => "quarantine",
            SchemaKind::Token => "tokens",
            SchemaKind::Domain => "domains",
            SchemaKind::EndpointHealth => "endpoint-health",
            SchemaKind::Database => "databases",
        }
    }
}

/// Why a value does not match its schema: the most relevant error only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct SchemaViolation {
    /// JSON pointer of the offending part of the value (`/` for the value itself; for a missing
    /// field, the object that lacks it).
    pub path: String,
    /// A short human message, e.g. `missing required field "profile"`.
    pub message: String,
}

/// All schemas, compiled once. Cheap to share: `Send + Sync`, validation takes `&self`.
pub struct Validators {
    compiled: Vec<Validator>,
    /// The parsed schemas, to find the explanation (`description`) of an `if`/`then` rule.
    schemas: Vec<Value>,
}

impl std::fmt::Debug for Validators {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validators")
            .field("schemas", &SchemaKind::ALL)
            .finish()
    }
}

impl Default for Validators {
    fn default() -> Self {
        Self::new()
    }
}

impl Validators {
    /// Compiles every embedded schema. Panics only if an embedded schema is broken, which the
    /// crate's tests rule out.
    pub fn new() -> Self {
        let mut compiled = Vec::with_capacity(SchemaKind::ALL.len());
        let mut schemas = Vec::with_capacity(SchemaKind::ALL.len());
        for kind in SchemaKind::ALL {
            let schema = parse_schema(kind);
            let validator = compile(&schema).unwrap_or_else(|e| {
                panic!("embedded schema {} does not compile: {e}", kind.file_name())
            });
            compiled.push(validator);
            schemas.push(schema);
        }
        Self { compiled, schemas }
    }

    /// Whether `value` matches the schema of `kind` (no error is built).
    pub fn is_valid(&self, kind: SchemaKind, value: &Value) -> bool {
        self.compiled[kind.index()].is_valid(value)
    }

    /// Checks `value` against the schema of `kind`; on failure returns the most relevant error.
    pub fn validate(&self, kind: SchemaKind, value: &Value) -> Result<(), SchemaViolation> {
        let validator = &self.compiled[kind.index()];
        if validator.is_valid(value) {
            return Ok(());
        }
        let best = validator
            .iter_errors(value)
            .enumerate()
            .min_by_key(|(i, e)| (depth(e.instance_path().as_str()), rank(e.kind()), *i))
            .map(|(_, e)| e);
        match best {
            Some(err) => Err(violation(&err, value, &self.schemas[kind.index()])),
            // Not reachable (is_valid said no), but never report success for an invalid value.
            None => Err(SchemaViolation {
                path: "/".into(),
                message: "does not match the schema".into(),
            }),
        }
    }
}

/// The lazily built global set of validators.
pub fn validators() -> &'static Validators {
    static VALIDATORS: OnceLock<Validators> = OnceLock::new();
    VALIDATORS.get_or_init(Validators::new)
}

/// Whether `text` may stand as a delivery's `url`: the delivery schema's own rule for that field
/// (an absolute URI as RFC 3986 writes it, so ASCII only with a non-ASCII host in punycode,
/// starting with `http://` or `https://` in lower case). A delivery carries its subscription's
/// URL, so routing refuses a subscription URL that fails this
/// (`hookline_routing::validate_subscription`): the sender would refuse every delivery to it.
pub fn is_delivery_url(text: &str) -> bool {
    static URL: OnceLock<Validator> = OnceLock::new();
    URL.get_or_init(|| {
        let rule = parse_schema(SchemaKind::Delivery)["properties"]["url"].clone();
        compile(&rule).unwrap_or_else(|e| panic!("the delivery schema's url rule: {e}"))
    })
    .is_valid(&Value::String(text.to_owned()))
}

fn parse_schema(kind: SchemaKind) -> Value {
    serde_json::from_str(kind.schema_json())
        .unwrap_or_else(|e| panic!("embedded schema {} is not JSON: {e}", kind.file_name()))
}

/// Compiles one schema with format assertion on and the delivery schema available by its `$id`.
fn compile(schema: &Value) -> Result<Validator, ValidationError<'static>> {
    let delivery = parse_schema(SchemaKind::Delivery);
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .with_resource(
            SchemaKind::Delivery.schema_id(),
            Resource::from_contents(delivery),
        )
        .build(schema)
}

fn depth(pointer: &str) -> usize {
    pointer.matches('/').count()
}

/// Lower is more relevant: a wrong type explains more than a violated constraint, a missing
/// field more than an extra one, and a failed combinator least.
fn rank(kind: &ValidationErrorKind) -> u8 {
    match kind {
        ValidationErrorKind::Type { .. } => 0,
        ValidationErrorKind::Required { .. } => 1,
        ValidationErrorKind::AdditionalProperties { .. }
        | ValidationErrorKind::UnevaluatedProperties { .. }
        | ValidationErrorKind::UnevaluatedItems { .. }
        | ValidationErrorKind::AdditionalItems { .. }
        | ValidationErrorKind::FalseSchema => 3,
        ValidationErrorKind::AnyOf { .. }
        | ValidationErrorKind::OneOfNotValid { .. }
        | ValidationErrorKind::OneOfMultipleValid { .. }
        | ValidationErrorKind::Not { .. } => 4,
        _ => 2,
    }
}

fn violation(err: &ValidationError<'_>, root: &Value, schema: &Value) -> SchemaViolation {
    let pointer = err.instance_path().as_str();
    let subject = subject(root, pointer);
    let mut message = describe(err.kind(), &subject, err.instance(), pointer);
    if let Some(hint) = conditional_hint(schema, err.schema_path().as_str()) {
        message.push_str(&format!(" ({hint})"));
    }
    SchemaViolation {
        path: if pointer.is_empty() {
            "/".to_owned()
        } else {
            pointer.to_owned()
        },
        message,
    }
}

/// If the failed keyword sits inside a `then` branch that carries a `description`, that
/// description says why the field is needed here (e.g. "collection and subprofile are set
/// together").
fn conditional_hint<'s>(schema: &'s Value, schema_path: &str) -> Option<&'s str> {
    let mut node = schema;
    let mut hint = None;
    for segment in schema_path.split('/').skip(1) {
        let segment = unescape(segment);
        node = match node {
            Value::Object(map) => map.get(segment.as_str())?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return hint,
        };
        if segment == "then" {
            hint = node.get("description").and_then(Value::as_str);
        }
    }
    hint
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// How the part of the value at `pointer` is named in a message: `the value` for the root,
/// `"name"` for a field, `"tags[0]"` for an array item.
fn subject(root: &Value, pointer: &str) -> String {
    match name(root, pointer) {
        Some(name) => format!("\"{name}\""),
        None => "the value".to_owned(),
    }
}

fn name(root: &Value, pointer: &str) -> Option<String> {
    let (parent, last) = pointer.rsplit_once('/')?;
    let last = unescape(last);
    if let Some(Value::Array(_)) = root.pointer(parent) {
        let parent_name = name(root, parent).unwrap_or_default();
        return Some(format!("{parent_name}[{last}]"));
    }
    Some(last)
}

// size: one arm per kind of validation error, each a message
fn describe(kind: &ValidationErrorKind, subject: &str, instance: &Value, pointer: &str) -> String {
    use ValidationErrorKind as K;
    match kind {
        K::Required { property } => match property {
            Value::String(p) => format!("missing required field \"{p}\""),
            other => format!("missing required field {other}"),
        },
        K::Type { kind } => {
            let mut expected: Vec<JsonType> = match kind {
                TypeKind::Single(t) => vec![*t],
                TypeKind::Multiple(set) => set.iter().collect(),
            };
            // "a string or null" reads better than "null or a string".
            expected.sort_by_key(|t| type_order(*t));
            let expected: Vec<&str> = expected.into_iter().map(type_phrase).collect();
            format!(
                "{subject} must be {}, not {}",
                join_or(&expected),
                value_type_phrase(instance)
            )
        }
        K::Enum { options } => {
            let options: Vec<String> = match options {
                Value::Array(items) => items.iter().map(plain).collect(),
                other => vec![plain(other)],
            };
            format!(
                "{subject} must be one of {} (got {})",
                options.join(", "),
                short(instance)
            )
        }
        K::Constant { expected_value } => {
            format!(
                "{subject} must be {} (got {})",
                plain(expected_value),
                short(instance)
            )
        }
        K::Pattern { pattern } => format!("{subject} {}", pattern_phrase(pattern)),
        K::Format { format } => match format.as_str() {
            "date-time" => format!(
                "{subject} must be an RFC 3339 date-time such as 2026-11-25T10:15:00Z (got {})",
                short(instance)
            ),
            "uri" => format!(
                "{subject} must be an absolute URI (got {})",
                short(instance)
            ),
            other => format!(
                "{subject} must be a valid {other} (got {})",
                short(instance)
            ),
        },
        K::MinLength { limit: 1 } => format!("{subject} must not be empty"),
        K::MinLength { limit } => format!("{subject} must be at least {limit} characters long"),
        K::MaxLength { limit } => format!("{subject} must be at most {limit} characters long"),
        K::Minimum { limit } => format!("{subject} must be at least {limit} (got {instance})"),
        K::ExclusiveMinimum { limit } => {
            format!("{subject} must be greater than {limit} (got {instance})")
        }
        K::Maximum { limit } => format!("{subject} must be at most {limit} (got {instance})"),
        K::ExclusiveMaximum { limit } => {
            format!("{subject} must be less than {limit} (got {instance})")
        }
        K::MinItems { limit } => format!("{subject} must have at least {limit} item(s)"),
        K::MaxItems { limit } => format!("{subject} must have at most {limit} item(s)"),
        K::MinProperties { limit } => format!("{subject} must have at least {limit} field(s)"),
        K::MaxProperties { limit } => format!("{subject} must have at most {limit} field(s)"),
        K::UniqueItems => format!("{subject} must not contain duplicates"),
        K::AdditionalProperties { unexpected } | K::UnevaluatedProperties { unexpected } => {
            let fields: Vec<String> = unexpected.iter().map(|f| format!("\"{f}\"")).collect();
            let noun = if fields.len() == 1 { "field" } else { "fields" };
            if pointer.is_empty() {
                format!("unknown {noun} {}", fields.join(", "))
            } else {
                format!("unknown {noun} {} in {subject}", fields.join(", "))
            }
        }
        K::PropertyNames { error } => {
            let key = short(error.instance());
            let key_subject = format!("key {key} of {subject}");
            describe(error.kind(), &key_subject, error.instance(), pointer)
        }
        K::FalseSchema => format!("{subject} is not allowed"),
        K::AnyOf { .. } | K::OneOfNotValid { .. } => {
            format!("{subject} does not match any of the allowed forms")
        }
        K::OneOfMultipleValid { .. } => {
            format!("{subject} matches more than one of the allowed forms")
        }
        K::Not { .. } => format!("{subject} has a form that is not allowed"),
        K::MultipleOf { multiple_of } => format!("{subject} must be a multiple of {multiple_of}"),
        other => format!("{subject} is invalid ({})", keyword_name(other)),
    }
}

fn keyword_name(kind: &ValidationErrorKind) -> &'static str {
    use ValidationErrorKind as K;
    match kind {
        K::Contains => "contains",
        K::ContentEncoding { .. } | K::FromUtf8 { .. } => "contentEncoding",
        K::ContentMediaType { .. } => "contentMediaType",
        K::UnevaluatedItems { .. } => "unevaluatedItems",
        K::AdditionalItems { .. } => "additionalItems",
        K::BacktrackLimitExceeded { .. } => "pattern too complex",
        K::Referencing(_) => "unresolvable $ref",
        K::Custom { .. } => "custom keyword",
        _ => "schema",
    }
}

/// Messages for the patterns the schemas use, so a reader never has to decode a regex.
fn pattern_phrase(pattern: &str) -> String {
    match pattern {
        "^[^:]*$" => "must not contain ':'".to_owned(),
        "^https?://" => "must be an http:// or https:// URL".to_owned(),
        "^[^:]{1,128}:[^:]{1,128}$" => "must have the form <collection>:<subprofile>".to_owned(),
        "^[0-9a-f]{16}$" => "must be 16 lower-case hex digits".to_owned(),
        "^[0-9a-f]{64}$" => "must be 64 lower-case hex digits (a SHA-256)".to_owned(),
        "^[A-Za-z0-9_-]*$" => "must contain only A-Z, a-z, 0-9, '-' and '_'".to_owned(),
        p if p.starts_with("^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}") => {
            "must be a lower-case domain name (ASCII labels of a-z, 0-9, '-' and '_', at least two, no trailing dot)"
                .to_owned()
        }
        p if p.starts_with("^(?:[A-Za-z0-9+/]{4})*") => {
            "must be standard base64 (with padding)".to_owned()
        }
        p => format!("must match the pattern {p}"),
    }
}

fn type_phrase(t: JsonType) -> &'static str {
    match t {
        JsonType::Array => "an array",
        JsonType::Boolean => "a boolean",
        JsonType::Integer => "an integer",
        JsonType::Null => "null",
        JsonType::Number => "a number",
        JsonType::Object => "an object",
        JsonType::String => "a string",
    }
}

fn type_order(t: JsonType) -> u8 {
    match t {
        JsonType::String => 0,
        JsonType::Integer => 1,
        JsonType::Number => 2,
        JsonType::Boolean => 3,
        JsonType::Object => 4,
        JsonType::Array => 5,
        JsonType::Null => 6,
    }
}

fn value_type_phrase(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `a`, `a or b`, `a, b or c`.
fn join_or(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// An enum option as a reader would write it: strings bare, everything else as JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The offending value as JSON, cut short so that a message stays one readable line.
fn short(v: &Value) -> String {
    const MAX: usize = 60;
    let text = v.to_string();
    if text.chars().count() <= MAX {
        text
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_fields_items_and_the_root() {
        let v = json!({"tags": ["a", 1], "headers": {"a/b": 2}});
        assert_eq!(subject(&v, ""), "the value");
        assert_eq!(subject(&v, "/tags"), "\"tags\"");
        assert_eq!(subject(&v, "/tags/1"), "\"tags[1]\"");
        assert_eq!(subject(&v, "/headers/a~1b"), "\"a/b\"");
    }

    #[test]
    fn joins_alternatives() {
        assert_eq!(join_or(&["a string"]), "a string");
        assert_eq!(join_or(&["a string", "null"]), "a string or null");
        assert_eq!(join_or(&["a", "b", "c"]), "a, b or c");
    }

    #[test]
    fn cuts_long_values() {
        let long = Value::String("x".repeat(200));
        let s = short(&long);
        assert!(s.ends_with('…'));
        assert_eq!(s.chars().count(), 61);
    }

    #[test]
    fn finds_the_hint_of_a_then_branch() {
        let schema = json!({"allOf": [{"then": {"description": "why", "required": ["a"]}}]});
        assert_eq!(
            conditional_hint(&schema, "/allOf/0/then/required"),
            Some("why")
        );
        assert_eq!(conditional_hint(&schema, "/allOf/0/if/required"), None);
        assert_eq!(conditional_hint(&schema, "/properties/x/type"), None);
    }
}
