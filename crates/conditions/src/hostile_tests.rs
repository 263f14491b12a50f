//! Hostile operands against every operator: a condition is read from a record anyone with
//! access to the `subscriptions` topic can write, so parsing must reject what it cannot use,
//! and evaluation must cope with any data, never panic. Every case runs under
//! `catch_unwind`, so one run reports every input that panics, not just the first.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde_json::{json, Map, Value};
use time::macros::datetime;
use time::OffsetDateTime;

use crate::{Condition, EvalContext};

const SUBJECTS: [&str; 5] = ["field", "subprofile_field", "event", "interest", "tag"];

/// Every operator name, plus names that are not operators (the suggestion code runs on them).
const OPS: [&str; 24] = [
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "less",
    "more",
    "regexp",
    "is_email",
    "is_numeric",
    "is_empty",
    "before",
    "after",
    "changed",
    "has",
    "has_not",
    "gained",
    "lost",
    "new_profile",
    "befor日",
    "日",
    "",
    "equalsequalsequalsequalsequalsequalsequalsequals",
];

/// Operand texts: multibyte where a byte index might be taken, empty, lone signs and units,
/// numbers and relative times far past every range, malformed dates and patterns.
fn hostile_strings() -> Vec<String> {
    let mut v: Vec<String> = [
        "5日",
        "日",
        "日日",
        "-5日",
        "+5日",
        "+日",
        "-日",
        "日d",
        "5d日",
        "é",
        "ß",
        "\u{0301}",
        "5\u{0301}",
        "d\u{0301}",
        "+5d\u{0301}",
        "🎉",
        "5🎉",
        "",
        " ",
        "\t",
        "+",
        "-",
        "+-",
        "--5d",
        "d",
        "M",
        "y",
        "s",
        "5",
        "0",
        "+0d",
        "-0s",
        "now",
        "NOW",
        "now日",
        "+d",
        "-M",
        "99999999999999999999999999d",
        "+99999999999999999999999999d",
        "-99999999999999999999999999y",
        "+9223372036854775807s",
        "-9223372036854775808s",
        "+999999999999M",
        "+1000y",
        "-1000y",
        "+1001y",
        "1e309",
        "-1e309",
        "1e-400",
        "1e",
        "1e+",
        ".",
        "-.",
        "+.5",
        "NaN",
        "inf",
        "-inf",
        "0x10",
        "1_000",
        "2026-01-01T10:00:00.999999999999999999999Z",
        "2026-01-01 10:00:00+99:99",
        "2026-01-01 10:00:00-23:59",
        "9999-12-31T23:59:59-23:59",
        "0000-01-01",
        "-9999-01-01",
        "2026-01-0日",
        "2026-日-01",
        "20日6-01-01",
        "2026-01-01T",
        "2026-01-01 10:0日",
        "2026-02-29",
        "(",
        ")",
        "[",
        "\\",
        "a{99999}",
        "\\w{500}",
        "[日-a]",
        "(?P<日>x)",
        "\u{0}",
        "\u{FFFF}",
        "a@b",
        "@",
        "@.",
        "a@日.日",
        "a@b..c",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    v.push("日".repeat(20_000));
    v.push(format!("+{}d", "9".repeat(10_000)));
    v.push("a".repeat(70_000));
    v
}

fn hostile_values() -> Vec<Value> {
    let mut v: Vec<Value> = hostile_strings().into_iter().map(Value::String).collect();
    v.extend([
        json!(u64::MAX),
        json!(i64::MIN),
        json!(f64::MAX),
        json!(-f64::MAX),
        json!(f64::MIN_POSITIVE),
        json!(0),
        json!(-0.0),
        json!(true),
        json!(null),
        json!([]),
        json!(["5日"]),
        json!({}),
        json!({"op": "before"}),
    ]);
    v
}

/// The flag combinations tried with every operator and operand.
const FLAGS: [(&str, bool); 4] = [
    ("case_sensitive", true),
    ("numeric", true),
    ("ignore_year", true),
    ("case_sensitive", false),
];

/// Extreme moments relative times are measured from.
const NOWS: [OffsetDateTime; 3] = [
    datetime!(2026-05-01 10:00 UTC),
    datetime!(-9999-01-01 0:00 UTC),
    datetime!(9999-12-31 23:59:59.999999999 UTC),
];

/// Runs `f`, recording `what` as a failure if it panics.
fn no_panic(failures: &mut Vec<String>, what: impl FnOnce() -> String, f: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        failures.push(format!("{}: {message}", what()));
    }
}

/// Evaluates `cond` against data made of hostile values, at extreme `now`s.
fn evaluate_everywhere(cond: &Condition, data: &[Value]) {
    let names: Vec<String> = hostile_strings().into_iter().take(8).collect();
    for d in data {
        let mut fields = Map::new();
        for key in ["f", "other", "5日", ""] {
            fields.insert(key.to_owned(), d.clone());
        }
        for now in NOWS {
            let ctx = EvalContext {
                profile_fields: &fields,
                subprofile_fields: Some(&fields),
                event: &fields,
                interests: &names,
                tags: &names,
                previous_fields: Some(&fields),
                previous_interests: Some(&names),
                is_new_profile: false,
                now,
            };
            cond.evaluate(&ctx);
        }
    }
}

#[test]
fn hostile_operands_are_rejected_or_evaluated_never_panic() {
    // Keep the panic hook quiet while collecting; the failures are listed at the end.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let values = hostile_values();
    // Evaluation runs against the short values only; the long ones are for parsing.
    let data: Vec<Value> = values
        .iter()
        .filter(|v| v.as_str().is_none_or(|s| s.len() < 64))
        .cloned()
        .collect();
    let mut failures = Vec::new();
    let mut parsed = 0usize;
    for subject in SUBJECTS {
        for op in OPS {
            for value in &values {
                for (flag, on) in FLAGS {
                    let leaf = |operand_key: &str| {
                        let mut leaf = json!({ subject: "f", "op": op, flag: on });
                        leaf[operand_key] = value.clone();
                        leaf
                    };
                    for cond in [leaf("value"), leaf("other_field"), leaf(subject)] {
                        let short = || {
                            let mut s = cond.to_string();
                            s.truncate(s.char_indices().nth(120).map_or(s.len(), |(i, _)| i));
                            s
                        };
                        no_panic(
                            &mut failures,
                            || format!("parse {}", short()),
                            || {
                                if let Ok(c) = Condition::parse(&cond) {
                                    parsed += 1;
                                    evaluate_everywhere(&c, &data);
                                }
                            },
                        );
                    }
                }
            }
        }
    }
    std::panic::set_hook(hook);
    assert!(
        failures.is_empty(),
        "{} hostile conditions panicked, e.g.:\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The set must not be rejected wholesale, or evaluation would go untested.
    assert!(parsed > 1_000, "only {parsed} hostile conditions parsed");
}

#[test]
fn multibyte_date_operand_is_an_error_naming_the_value() {
    for op in ["before", "after"] {
        for v in ["5日", "日", "+5日", "日d"] {
            let cond = json!({"field": "signup", "op": op, "value": v});
            let err = Condition::parse(&cond).expect_err(v);
            assert_eq!(err.path(), "/value", "{v}: {err}");
            assert!(err.message().contains("invalid"), "{v}: {err}");
        }
    }
}
