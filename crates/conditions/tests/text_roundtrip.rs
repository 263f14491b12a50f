//! The text form round-trips, property-tested: for generated valid condition trees,
//! `parse_text(to_text(t)) == t` and printing the parsed text gives the same text; for
//! generated token soup, whatever parses prints to text that parses to the same tree, and
//! nothing panics.

use hookline_conditions::{parse_text, to_text, Condition};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const OPERAND_OPS: [&str; 8] = [
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "less",
    "more",
];
const BARE_OPS: [&str; 3] = ["is_email", "is_numeric", "is_empty"];
const SET_OPS: [&str; 9] = [
    "has",
    "has_not",
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "regexp",
];
const DATES: [&str; 7] = [
    "-30d",
    "+2w",
    "now",
    "2026-01-01",
    "2026-01-01 10:00:00",
    "2026-01-01T10:00:00+01:00",
    "-6M",
];
const PATTERNS: [&str; 4] = ["^\\d{4} ?[a-z]{2}$", "mike", "^bf-", "a|b"];

/// Names people use, and names that need quoting.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_][a-z0-9_.-]{0,10}",
        ".{1,10}",
        prop::sample::select(vec![
            "and",
            "or",
            "NOT",
            "all",
            "field",
            "interest",
            "numeric",
            "true",
            "first name",
            "a\"b\\c",
            "é",
            "2fa",
            "-30d",
        ])
        .prop_map(str::to_owned),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        ".{0,10}".prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        (-1.0e9f64..1.0e9).prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(DATES.to_vec()).prop_map(Value::from),
        prop::sample::select(vec!["and", "field", "true", "18", "1e3", "+5", "now "])
            .prop_map(Value::from),
    ]
}

/// A leaf; invalid combinations lose their options, and fall back to a plain leaf.
fn leaf() -> impl Strategy<Value = Value> {
    let subject = prop::sample::select(vec!["field", "subprofile_field", "event"]);
    let scalar = (
        subject,
        name(),
        0usize..OPERAND_OPS.len() + BARE_OPS.len() + 4,
        value(),
        name(),
        any::<bool>(),
        any::<[bool; 3]>(),
    )
        .prop_map(|(key, subj, op, value, other, use_other, opts)| {
            let mut m = Map::new();
            m.insert(key.into(), Value::String(subj));
            let all_ops: Vec<&str> = OPERAND_OPS
                .iter()
                .chain(&BARE_OPS)
                .chain(&["before", "after", "regexp", "changed"])
                .copied()
                .collect();
            let op = all_ops[op];
            m.insert("op".into(), op.into());
            match op {
                "before" | "after" if !use_other => {
                    m.insert(
                        "value".into(),
                        Value::from(DATES[subj_len(&m) % DATES.len()]),
                    );
                }
                "regexp" => {
                    m.insert(
                        "value".into(),
                        Value::from(PATTERNS[subj_len(&m) % PATTERNS.len()]),
                    );
                }
                o if OPERAND_OPS.contains(&o) || o == "before" || o == "after" => {
                    if use_other {
                        m.insert("other_field".into(), Value::String(other));
                    } else {
                        m.insert("value".into(), value);
                    }
                }
                _ => {}
            }
            for (i, on) in opts.iter().enumerate() {
                if *on {
                    m.insert(
                        ["case_sensitive", "numeric", "ignore_year"][i].into(),
                        true.into(),
                    );
                }
            }
            Value::Object(m)
        });
    let set = (
        prop::sample::select(vec!["interest", "tag"]),
        name(),
        0usize..SET_OPS.len() + 2,
        any::<bool>(),
    )
        .prop_map(|(key, subj, op, cs)| {
            let ops: Vec<&str> = SET_OPS.iter().chain(&["gained", "lost"]).copied().collect();
            let op = ops[op];
            let subj = if op == "regexp" {
                PATTERNS[subj.len() % 4].to_owned()
            } else {
                subj
            };
            let mut m = Map::new();
            m.insert(key.into(), Value::String(subj));
            m.insert("op".into(), op.into());
            if cs {
                m.insert("case_sensitive".into(), true.into());
            }
            Value::Object(m)
        });
    prop_oneof![4 => scalar, 2 => set, 1 => Just(json!({"op": "new_profile"}))].prop_map(valid)
}

fn subj_len(m: &Map<String, Value>) -> usize {
    m.values()
        .next()
        .and_then(Value::as_str)
        .map_or(0, str::len)
}

fn valid(mut v: Value) -> Value {
    if Condition::parse(&v).is_ok() {
        return v;
    }
    if let Value::Object(m) = &mut v {
        for o in ["case_sensitive", "numeric", "ignore_year"] {
            m.remove(o);
        }
    }
    if Condition::parse(&v).is_ok() {
        v
    } else {
        json!({"field": "email", "op": "is_email"})
    }
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| json!({"all": v})),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| json!({"any": v})),
            inner.prop_map(|c| json!({"not": c})),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn a_tree_prints_to_text_that_parses_back_to_it(t in tree()) {
        prop_assert!(Condition::parse(&t).is_ok());
        let text = to_text(&t).unwrap();
        let back = parse_text(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&back, &t, "text: {}", text);
        prop_assert_eq!(to_text(&back).unwrap(), text);
    }

    #[test]
    fn whatever_text_parses_prints_stably(
        words in prop::collection::vec(prop::sample::select(vec![
            "name", "contains", "\"Mike\"", "and", "or", "not", "(", ")", "interest", "vip",
            "signup", "after", "-30d", "email", "is_email", "tag", "gained", "all(", "any(",
            "field", "city", "equals", "18", "case_sensitive", "new_profile", "subprofile",
            "event", "\"a b\"", "numeric", "ignore_year", "before", "now", "\"",
        ]), 0..24)
    ) {
        let text = words.join(" ");
        if let Ok(v) = parse_text(&text) {
            let printed = to_text(&v).unwrap();
            prop_assert_eq!(parse_text(&printed).unwrap(), v);
            prop_assert_eq!(to_text(&parse_text(&printed).unwrap()).unwrap(), printed);
        }
    }
}
