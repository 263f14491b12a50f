//! The input records of the join stages, `tracking` and `profile-changes`, through what the
//! stages do with them (`crates/tracking`, `crates/profiles`): the schema check and decode,
//! the join with no stored row, with the profile's own row and with another account's row,
//! the new table row (profiles), and routing to deliveries.

use hookline_join::bound::{bound_subprofiles, encode_row, RowError, RowLimits};
use hookline_model::Enriched;
use hookline_model::{Delivery, ProfileChange, ProfileState, SourcePosition, TrackingEvent};
use hookline_schemas::{decode_input, validators, SchemaKind};
use serde_json::Value;

use crate::{ensure, sample, Broken, Verdict};

/// The stages' default `--max-record-bytes`.
const MAX_RECORD_BYTES: usize = 1_048_576;
/// The stages' default `--email-field`.
const EMAIL_FIELD: &str = "email";

/// The key a producer gives the record: `<database>:<profile>` of the value when it names both
/// as strings (so the fuzzer reaches past the key check), else empty.
fn record_key(value: &[u8]) -> Vec<u8> {
    let Ok(Value::Object(v)) = serde_json::from_slice::<Value>(value) else {
        return Vec::new();
    };
    match (v.get("database"), v.get("profile")) {
        (Some(Value::String(d)), Some(Value::String(p))) => format!("{d}:{p}").into_bytes(),
        _ => Vec::new(),
    }
}

/// A `tracking` record value, as the tracking stage processes it.
pub(crate) fn tracking_event(value: &[u8]) -> Result<Verdict, Broken> {
    let key = record_key(value);
    let event = match decode_input(
        SchemaKind::TrackingEvent,
        Some(&key),
        Some(value),
        MAX_RECORD_BYTES,
        |e: &TrackingEvent| e.key().to_string(),
    ) {
        Ok(event) => event,
        Err(reason) => return Ok(Verdict::Refused(reason.text)),
    };
    let row = sample::profile_row(&event.account, &event.database, &event.profile);
    for stored in [None, Some(&row)] {
        let enriched = hookline_join::tracking::join(&event, stored, EMAIL_FIELD)
            .map_err(|e| Broken(format!("the event's own account's row was refused: {e}")))?;
        ensure(enriched.joined == stored.is_some(), || {
            format!(
                "joined is {} with a row present: {}",
                enriched.joined,
                stored.is_some()
            )
        })?;
        route(&enriched, "tracking")?;
    }
    let foreign = ProfileState {
        account: sample::other_account(&event.account),
        ..row
    };
    ensure(
        hookline_join::tracking::join(&event, Some(&foreign), EMAIL_FIELD).is_err(),
        || "the event was joined with another account's profile row".into(),
    )?;
    Ok(Verdict::Accepted)
}

/// A `profile-changes` record value, as the profiles stage processes it.
pub(crate) fn profile_change(value: &[u8]) -> Result<Verdict, Broken> {
    let key = record_key(value);
    let change = match decode_input(
        SchemaKind::ProfileChange,
        Some(&key),
        Some(value),
        MAX_RECORD_BYTES,
        |c: &ProfileChange| c.key().to_string(),
    ) {
        Ok(change) => change,
        Err(reason) => return Ok(Verdict::Refused(reason.text)),
    };
    let row = sample::profile_row(&change.account, &change.database, &change.profile);
    for before in [None, Some(&row)] {
        let applied = hookline_join::profile::join(&change, before)
            .map_err(|e| Broken(format!("the change's own account's row was refused: {e}")))?;
        if let Some(mut state) = applied.new_state {
            new_row(&change, &mut state)?;
        }
        route(&applied.enriched, "profile-changes")?;
    }
    let foreign = ProfileState {
        account: sample::other_account(&change.account),
        ..row
    };
    ensure(
        hookline_join::profile::join(&change, Some(&foreign)).is_err(),
        || "the change was applied to another account's profile row".into(),
    )?;
    Ok(Verdict::Accepted)
}

/// The profiles stage's new table row (`ProfilesProcessor::bounded_row`): bounded, encoded, and
/// then read back as the store and the tracking stage read it. A row refused as too large is
/// quarantined by the stage; any other failure, or a row that reads back differently, loses the
/// profile's join.
fn new_row(change: &ProfileChange, state: &mut ProfileState) -> Result<(), Broken> {
    let key = change.key().to_string();
    let limits = RowLimits::default();
    let keep = change.subprofile_key();
    bound_subprofiles(state, &key, keep.as_deref(), &limits);
    let bytes = match encode_row(&key, state, &limits) {
        Ok(bytes) => bytes,
        Err(RowError::TooLarge { .. }) => return Ok(()),
        Err(e) => return Err(Broken(format!("the new row does not encode: {e}"))),
    };
    let back: ProfileState = serde_json::from_slice(&bytes)
        .map_err(|e| Broken(format!("the new row of {key} does not read back: {e}")))?;
    ensure(&back == state, || {
        format!("the new row of {key} reads back differently")
    })?;
    if let (Some(c), Some(s)) = (&change.collection, &change.subprofile) {
        let held = back.subprofile(c, s).is_some();
        let deleted = change.action == hookline_model::ProfileAction::Delete;
        ensure(held != deleted, || {
            format!(
                "after a {} of subprofile {c}:{s} the row holds it: {held}",
                change.action.as_str()
            )
        })?;
    }
    Ok(())
}

/// Routes `event` through the sample table, as `BatchContext::route` does, and checks every
/// delivery as the sender will read it.
fn route(event: &Enriched, topic: &str) -> Result<(), Broken> {
    let source = SourcePosition {
        topic: topic.into(),
        partition: 0,
        offset: 0,
        timestamp_ms: None,
        traceparent: None,
    };
    for sub in sample::table().matching(event, sample::now()) {
        let delivery = hookline_routing::build_delivery(event, &sub.sub, Some(source.clone()));
        check_delivery(&delivery)?;
    }
    Ok(())
}

/// The sender's intake of a `deliveries` record (`decode` in `crates/sender/src/worker.rs`):
/// JSON, the delivery schema, the contract type. A delivery it refuses is lost to its receiver.
pub(crate) fn check_delivery(delivery: &Delivery) -> Result<(), Broken> {
    let to = &delivery.subscription_id;
    let bytes = serde_json::to_vec(delivery)
        .map_err(|e| Broken(format!("the delivery to {to} does not encode: {e}")))?;
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Broken(format!("the delivery to {to} is not JSON: {e}")))?;
    validators()
        .validate(SchemaKind::Delivery, &value)
        .map_err(|v| Broken(format!("the sender would refuse the delivery to {to}: {v}")))?;
    let back: Delivery = serde_json::from_value(value)
        .map_err(|e| Broken(format!("the delivery to {to} does not decode: {e}")))?;
    ensure(&back == delivery, || {
        format!("the delivery to {to} reads back differently")
    })
}
