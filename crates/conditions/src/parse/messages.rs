//! How validation errors name things: unknown keys with a suggestion, operator lists, the
//! JSON-pointer path to the mistake and the kind of value found.

use serde_json::Value;

use super::vocabulary::{Op, GROUP_KEYS, LEAF_KEYS};

pub(super) fn unknown_key_message(key: &str) -> String {
    let known: Vec<&str> = GROUP_KEYS.iter().chain(LEAF_KEYS.iter()).copied().collect();
    format!(
        "unknown key {key:?}{}; expected one of {}",
        suggestion(key, &known),
        known.join(", ")
    )
}

pub(super) fn op_list(ops: &[Op]) -> String {
    ops.iter().map(|o| o.name()).collect::<Vec<_>>().join(", ")
}

/// ` (did you mean "contains"?)` when a known name is within edit distance 2.
pub(crate) fn suggestion(given: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (edit_distance(given, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| format!(" (did you mean {k:?}?)"))
        .unwrap_or_default()
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// `path` extended by one JSON-pointer segment (`~` and `/` escaped as in RFC 6901).
pub(super) fn child(path: &str, key: &str) -> String {
    format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"))
}

pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
