//! Bounds on a profile's table row.
//!
//! A profile's row holds all its subprofiles and is rewritten whole on every change, so a
//! profile with very many subprofiles would grow its `profiles` record past the producer's
//! `message.max.bytes` and stop the profiles stage. The row is a join cache, not the system of
//! record (Copernica is), so it is bounded:
//!
//! 1. **Per collection** at most [`RowLimits::max_subprofiles_per_collection`] subprofiles
//!    (default 1,000); beyond that the least recently modified ones leave the row.
//! 2. **Bytes**: if the row would still not fit in one table record, the least recently
//!    modified subprofiles of any collection leave it until it fits.
//!
//! The subprofile the change concerns always stays. A subprofile that left the row is no longer
//! joined: its tracking events carry empty `subprofile_fields`, and an update of it carries no
//! previous values, as for a subprofile the table never saw. When the row does not fit even
//! so (the profile's own fields, or the changed subprofile, are that large), [`encode_row`]
//! refuses it with [`RowError::TooLarge`] and the stage quarantines the change (reason
//! `too-large`), keeping the previous row.

use std::collections::BTreeMap;

use hookline_model::{ProfileState, QuarantineReason, ReasonClass};
use serde_json::Value;

/// The quarantine reason (and metric label) of a change whose row does not fit in a record.
pub const TOO_LARGE: &str = "too-large";

/// Default of [`RowLimits::max_subprofiles_per_collection`].
pub const DEFAULT_MAX_SUBPROFILES_PER_COLLECTION: usize = 1_000;

/// Default of [`RowLimits::max_record_bytes`]: librdkafka's default `message.max.bytes`.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1_000_000;

/// Room kept beside key and value for the record's framing and headers, which librdkafka
/// counts against `message.max.bytes` as well.
pub const RECORD_OVERHEAD_BYTES: usize = 512;

/// How large a profile's table row may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowLimits {
    /// Subprofiles kept per collection (at least the changed one is always kept).
    pub max_subprofiles_per_collection: usize,
    /// The largest record the producer accepts (its `message.max.bytes`): key, value and
    /// [`RECORD_OVERHEAD_BYTES`] together.
    pub max_record_bytes: usize,
}

impl Default for RowLimits {
    fn default() -> Self {
        Self {
            max_subprofiles_per_collection: DEFAULT_MAX_SUBPROFILES_PER_COLLECTION,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

impl RowLimits {
    /// The most bytes the row's value may take under `key`.
    pub fn value_budget(&self, key: &str) -> usize {
        self.max_record_bytes
            .saturating_sub(key.len() + RECORD_OVERHEAD_BYTES)
    }
}

/// The subprofile keys (`<collection>:<subprofile>`) that left a row, by which bound.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evicted {
    pub by_count: Vec<String>,
    pub by_size: Vec<String>,
}

impl Evicted {
    pub fn is_empty(&self) -> bool {
        self.by_count.is_empty() && self.by_size.is_empty()
    }
}

/// Applies both bounds to `state`, the new row under `key`; `keep` is the subprofile the change
/// concerns, which stays whatever the bounds say.
pub fn bound_subprofiles(
    state: &mut ProfileState,
    key: &str,
    keep: Option<&str>,
    limits: &RowLimits,
) -> Evicted {
    let mut evicted = Evicted::default();
    // 1. Per collection.
    let mut by_collection: BTreeMap<&str, Vec<(i64, &String)>> = BTreeMap::new();
    for (k, v) in &state.subprofiles {
        let collection = k.split_once(':').map_or(k.as_str(), |(c, _)| c);
        by_collection
            .entry(collection)
            .or_default()
            .push((modified_at(v), k));
    }
    let max = limits.max_subprofiles_per_collection;
    for mut entries in by_collection.into_values().filter(|e| e.len() > max) {
        entries.sort();
        let excess = entries.len() - max;
        evicted.by_count.extend(
            entries
                .into_iter()
                .map(|(_, k)| k)
                .filter(|k| Some(k.as_str()) != keep)
                .take(excess)
                .cloned(),
        );
    }
    for k in &evicted.by_count {
        state.subprofiles.remove(k);
    }

    // 2. Bytes: drop the least recently modified until the row fits.
    let budget = limits.value_budget(key);
    let mut size = serde_json::to_vec(state).map_or(usize::MAX, |b| b.len());
    if size > budget {
        let mut oldest: Vec<(i64, &String)> = state
            .subprofiles
            .iter()
            .filter(|(k, _)| Some(k.as_str()) != keep)
            .map(|(k, v)| (modified_at(v), k))
            .collect();
        oldest.sort();
        for (_, k) in oldest {
            if size <= budget {
                break;
            }
            size = size.saturating_sub(entry_bytes(k, &state.subprofiles[k.as_str()]));
            evicted.by_size.push(k.clone());
        }
        for k in &evicted.by_size {
            state.subprofiles.remove(k);
        }
    }
    evicted
}

/// Why a row cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    #[error(
        "too-large: the new row of profile {key} takes {bytes} bytes, more than the {budget} \
         bytes a table record leaves for it (producer limit {limit} bytes), even with the \
         least recently modified subprofiles left out; the previous row is kept"
    )]
    TooLarge {
        key: String,
        bytes: usize,
        budget: usize,
        limit: usize,
    },
    #[error("the new row of profile {key} does not encode as JSON: {source}")]
    Encode {
        key: String,
        source: serde_json::Error,
    },
}

impl RowError {
    /// The quarantine reason: this message, counted as `too-large` for a row that does not fit.
    pub fn reason(&self) -> QuarantineReason {
        let class = match self {
            RowError::TooLarge { .. } => ReasonClass::TooLarge,
            _ => ReasonClass::Other,
        };
        QuarantineReason::new(class, self.to_string())
    }
}

/// The row's bytes for the table, refused when they would not fit in one record.
pub fn encode_row(
    key: &str,
    state: &ProfileState,
    limits: &RowLimits,
) -> Result<Vec<u8>, RowError> {
    let bytes = serde_json::to_vec(state).map_err(|source| RowError::Encode {
        key: key.to_owned(),
        source,
    })?;
    let budget = limits.value_budget(key);
    if bytes.len() > budget {
        return Err(RowError::TooLarge {
            key: key.to_owned(),
            bytes: bytes.len(),
            budget,
            limit: limits.max_record_bytes,
        });
    }
    Ok(bytes)
}

/// When a subprofile entry was last modified, in Unix seconds; entries without a readable time
/// count as oldest.
fn modified_at(entry: &Value) -> i64 {
    entry
        .get("modified")
        .and_then(Value::as_str)
        .and_then(hookline_model::timefmt::parse)
        .map_or(i64::MIN, |t| t.unix_timestamp())
}

/// The bytes one entry takes inside the encoded `subprofiles` object: `"key":value,`.
fn entry_bytes(key: &str, value: &Value) -> usize {
    let k = serde_json::to_string(key).map_or(key.len() + 2, |s| s.len());
    let v = serde_json::to_vec(value).map_or(0, |b| b.len());
    k + 1 + v + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(subs: &[(&str, u32, usize)]) -> ProfileState {
        let mut s: ProfileState = serde_json::from_value(json!({"account": "1001",
            "database": "12", "profile": "4711", "fields": {"email": "jane@example.com"}}))
        .unwrap();
        for (k, minute, pad) in subs {
            s.subprofiles.insert(
                (*k).to_owned(),
                json!({"created": "2026-11-25T10:00:00Z",
                       "modified": format!("2026-11-25T10:{minute:02}:00Z"),
                       "fields": {"order": "x".repeat(*pad)}}),
            );
        }
        s
    }

    fn limits(per_collection: usize, bytes: usize) -> RowLimits {
        RowLimits {
            max_subprofiles_per_collection: per_collection,
            max_record_bytes: bytes,
        }
    }

    #[test]
    fn each_collection_keeps_its_most_recently_modified_subprofiles() {
        let mut s = row(&[
            ("3:1", 5, 1),
            ("3:2", 1, 1),
            ("3:3", 9, 1),
            ("3:4", 2, 1),
            ("7:1", 0, 1),
        ]);
        let ev = bound_subprofiles(&mut s, "12:4711", Some("3:3"), &limits(2, 1_000_000));
        assert_eq!(
            ev.by_count,
            vec!["3:2", "3:4"],
            "the two oldest of collection 3"
        );
        assert!(ev.by_size.is_empty());
        let mut kept: Vec<&str> = s.subprofiles.keys().map(String::as_str).collect();
        kept.sort();
        assert_eq!(
            kept,
            vec!["3:1", "3:3", "7:1"],
            "collection 7 is under its bound"
        );
    }

    #[test]
    fn the_changed_subprofile_stays_even_when_it_is_the_oldest() {
        let mut s = row(&[("3:1", 1, 1), ("3:2", 2, 1), ("3:3", 3, 1)]);
        let ev = bound_subprofiles(&mut s, "12:4711", Some("3:1"), &limits(1, 1_000_000));
        assert_eq!(
            ev.by_count,
            vec!["3:2", "3:3"],
            "newer ones leave in its place"
        );
        let kept: Vec<&str> = s.subprofiles.keys().map(String::as_str).collect();
        assert_eq!(kept, vec!["3:1"]);
    }

    #[test]
    fn a_thousand_per_collection_by_default() {
        let subs: Vec<(String, u32, usize)> = (0..1_005)
            .map(|i| (format!("3:{i}"), (i % 60) as u32, 1))
            .collect();
        let refs: Vec<(&str, u32, usize)> =
            subs.iter().map(|(k, m, p)| (k.as_str(), *m, *p)).collect();
        let mut s = row(&refs);
        let ev = bound_subprofiles(&mut s, "12:4711", Some("3:1004"), &RowLimits::default());
        assert_eq!(ev.by_count.len(), 5);
        assert_eq!(s.subprofiles.len(), DEFAULT_MAX_SUBPROFILES_PER_COLLECTION);
        assert!(encode_row("12:4711", &s, &RowLimits::default()).is_ok());
    }

    #[test]
    fn the_byte_budget_drops_the_oldest_across_collections_until_the_row_fits() {
        // Four subprofiles of ~1,000 bytes; the record may take 3,000.
        let mut s = row(&[
            ("3:1", 4, 1_000),
            ("7:1", 1, 1_000),
            ("3:2", 3, 1_000),
            ("7:2", 2, 1_000),
        ]);
        let l = limits(1_000, 3_000);
        assert!(matches!(
            encode_row("12:4711", &s, &l),
            Err(RowError::TooLarge { .. })
        ));
        let ev = bound_subprofiles(&mut s, "12:4711", Some("7:1"), &l);
        assert!(ev.by_count.is_empty());
        assert_eq!(
            ev.by_size,
            vec!["7:2", "3:2"],
            "oldest first, the changed one skipped"
        );
        let bytes = encode_row("12:4711", &s, &l).unwrap();
        assert!(bytes.len() + "12:4711".len() + RECORD_OVERHEAD_BYTES <= 3_000);
        assert!(s.subprofiles.contains_key("7:1") && s.subprofiles.contains_key("3:1"));
    }

    #[test]
    fn a_row_too_large_on_its_own_is_refused_naming_sizes_not_data() {
        let mut s = row(&[("3:1", 1, 5_000)]);
        let l = limits(1_000, 4_000);
        let ev = bound_subprofiles(&mut s, "12:4711", Some("3:1"), &l);
        assert!(ev.is_empty(), "the changed subprofile is never dropped");
        let err = encode_row("12:4711", &s, &l).unwrap_err();
        let reason = err.to_string();
        assert!(reason.starts_with(TOO_LARGE), "{reason}");
        assert!(
            reason.contains("12:4711") && reason.contains("4000"),
            "{reason}"
        );
        assert!(!reason.contains("jane@example.com"), "{reason}");
    }

    #[test]
    fn entries_without_a_readable_time_leave_first() {
        let mut s = row(&[("3:1", 1, 1), ("3:2", 2, 1)]);
        s.subprofiles.insert(
            "3:0".into(),
            json!({"created": null, "modified": null, "fields": {}}),
        );
        let ev = bound_subprofiles(&mut s, "12:4711", None, &limits(2, 1_000_000));
        assert_eq!(ev.by_count, vec!["3:0"]);
    }
}
