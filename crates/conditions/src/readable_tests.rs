//! Unit tests of the text form's parser ([`crate::readable`]).

use crate::readable::*;
use serde_json::json;
use serde_json::Value;

#[test]
fn the_issue_example_parses_into_the_tree() {
    let t =
        r#"name contains "Mike" and (interest vip or signup after -30d) and not email is_email"#;
    assert_eq!(
        parse_text(t).unwrap(),
        json!({"all": [
            {"field": "name", "op": "contains", "value": "Mike"},
            {"any": [{"interest": "vip", "op": "has"},
                     {"field": "signup", "op": "after", "value": "-30d"}]},
            {"not": {"field": "email", "op": "is_email"}}]})
    );
}

#[test]
fn nesting_is_kept_and_and_binds_tighter() {
    let v = parse_text("a is_empty or b is_empty and c is_empty").unwrap();
    assert_eq!(v["any"][1]["all"][1]["field"], "c");
    let v = parse_text("(a is_empty and b is_empty) and c is_empty").unwrap();
    assert_eq!(v["all"][0]["all"][1]["field"], "b");
    let v = parse_text("all(a is_empty)").unwrap();
    assert_eq!(v, json!({"all": [{"field": "a", "op": "is_empty"}]}));
    assert_eq!(parse_text("  \n").unwrap(), Value::Null);
}

#[test]
fn operands_and_options() {
    let v = parse_text(
        r#"age less 18 and x equals "18" and city equals field home_city case_sensitive
           and subprofile ordered after 2026-01-01 ignore_year and event trigger not_equals import
           and tag "^bf-\\d{4}$" regexp and interest vip gained and new_profile and n equals 7.5 numeric"#,
    )
    .unwrap();
    let all = v["all"].as_array().unwrap();
    assert_eq!(all[0]["value"], json!(18));
    assert_eq!(all[1]["value"], json!("18"));
    assert_eq!(
        all[2],
        json!({"field": "city", "op": "equals", "other_field": "home_city", "case_sensitive": true})
    );
    assert_eq!(all[3]["subprofile_field"], "ordered");
    assert_eq!(all[4]["value"], "import");
    assert_eq!(all[5], json!({"tag": "^bf-\\d{4}$", "op": "regexp"}));
    assert_eq!(all[6]["op"], "gained");
    assert_eq!(all[7], json!({"op": "new_profile"}));
    assert_eq!(all[8]["numeric"], true);
}

#[test]
fn errors_point_at_the_column() {
    let e = parse_text(r#"name contians "Mike""#).unwrap_err();
    assert_eq!((e.line, e.column), (1, 6), "{e}");
    assert!(e.message.contains("did you mean \"contains\""), "{e}");
    let e = parse_text("a is_empty and (b is_empty").unwrap_err();
    assert_eq!(e.column, 16, "{e}");
    assert!(e.message.contains("never closed"), "{e}");
    let e = parse_text("signup after -30x").unwrap_err();
    assert_eq!(e.column, 14, "a validation error at its operand: {e}");
    let e = parse_text("a is_empty and\n  name has").unwrap_err();
    assert_eq!((e.line, e.column), (2, 8), "{e}");
    assert!(e.message.contains("does not apply"), "{e}");
    let e = parse_text(r#"name equals "Mike"#).unwrap_err();
    assert!(e.message.contains("no closing quote"), "{e}");
    let e = parse_text("name equals and").unwrap_err();
    assert_eq!(e.column, 13, "{e}");
    let e = parse_text("a is_empty b is_empty").unwrap_err();
    assert_eq!(e.column, 12, "{e}");
    assert_eq!(
        e.to_string(),
        "line 1, column 12: expected `and`, `or` or the end after a condition, found `b`"
    );
}

#[test]
fn hostile_nesting_is_refused_not_overflowed() {
    let deep = format!("{}a is_empty{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse_text(&deep).is_err());
    let nots = format!("{}a is_empty", "not ".repeat(10_000));
    assert!(parse_text(&nots).is_err());
}
