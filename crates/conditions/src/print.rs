//! Prints a condition's JSON wire form as text ([`crate::readable`] reads it back).
//!
//! The text is canonical: the same tree always prints the same way, and reading it gives the
//! same tree back, so `parse_text(&to_text(t)?) == t` for every valid `t` whose options are all
//! `true` (an option set to `false` means nothing and is not printed), and printing a parsed
//! text again gives the same text. Groups inside groups are parenthesised; a group of one is
//! `all(...)` / `any(...)`; names that are not plain words are quoted, and so are strings,
//! except relative times, `now` and dates.

use serde_json::{Map, Value};

use crate::error::ConditionError;
use crate::readable::{is_keyword, OPTIONS};

/// The text form of a condition, after checking it is valid; `null` prints as empty text.
pub fn to_text(condition: &Value) -> Result<String, ConditionError> {
    crate::Condition::parse(condition)?;
    let mut out = String::new();
    if !condition.is_null() {
        node(condition, &mut out);
    }
    Ok(out)
}

/// A valid condition node. Anything unexpected is printed as what it holds (validation ran
/// first, so that does not happen).
fn node(v: &Value, out: &mut String) {
    let Value::Object(obj) = v else {
        out.push_str(&v.to_string());
        return;
    };
    for key in ["all", "any"] {
        if let Some(Value::Array(items)) = obj.get(key) {
            if items.len() == 1 {
                out.push_str(key);
                out.push('(');
                node(&items[0], out);
                out.push(')');
            } else {
                let joiner = if key == "all" { " and " } else { " or " };
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(joiner);
                    }
                    operand_of_group(item, out);
                }
            }
            return;
        }
    }
    if let Some(inner) = obj.get("not") {
        out.push_str("not ");
        operand_of_group(inner, out);
        return;
    }
    leaf(obj, out);
}

/// A group of two or more inside another group (or under `not`) is parenthesised.
fn operand_of_group(v: &Value, out: &mut String) {
    let multi = ["all", "any"].iter().any(|k| {
        v.get(k)
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 1)
    });
    if multi {
        out.push('(');
        node(v, out);
        out.push(')');
    } else {
        node(v, out);
    }
}

fn leaf(obj: &Map<String, Value>, out: &mut String) {
    let op = obj.get("op").and_then(Value::as_str).unwrap_or_default();
    let text = |k: &str| obj.get(k).and_then(Value::as_str);
    if op == "new_profile" {
        out.push_str("new_profile");
    } else if let Some((key, name)) = ["interest", "tag"]
        .into_iter()
        .find_map(|k| text(k).map(|n| (k, n)))
    {
        out.push_str(key);
        out.push(' ');
        push_name(name, out);
        if op != "has" {
            out.push(' ');
            out.push_str(op);
        }
    } else {
        if let Some(name) = text("field") {
            push_name(name, out);
        } else if let Some(name) = text("subprofile_field") {
            out.push_str("subprofile ");
            push_name(name, out);
        } else if let Some(name) = text("event") {
            out.push_str("event ");
            push_name(name, out);
        }
        out.push(' ');
        out.push_str(op);
        if let Some(v) = obj.get("value") {
            out.push(' ');
            push_value(v, out);
        } else if let Some(other) = text("other_field") {
            out.push_str(" field ");
            push_name(other, out);
        }
    }
    for option in OPTIONS {
        if obj.get(option) == Some(&Value::Bool(true)) {
            out.push(' ');
            out.push_str(option);
        }
    }
}

/// A plain word: letters, digits, `_`, `.`, `-`, starting with a letter or `_`.
fn is_plain(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !is_keyword(name)
        && !OPTIONS.contains(&name)
}

fn push_name(name: &str, out: &mut String) {
    if is_plain(name) {
        out.push_str(name);
    } else {
        out.push_str(&Value::String(name.to_owned()).to_string());
    }
}

/// Strings that read as what they are without quotes: `now`, `-30d`, `2026-01-01`.
fn is_bare_date(s: &str) -> bool {
    let b = s.as_bytes();
    let relative = b.len() >= 3
        && matches!(b[0], b'+' | b'-')
        && b[1..b.len() - 1].iter().all(u8::is_ascii_digit)
        && b"smhdwMy".contains(&b[b.len() - 1]);
    let date = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    s == "now" || relative || date
}

fn push_value(v: &Value, out: &mut String) {
    match v {
        Value::String(s) if is_bare_date(s) => out.push_str(s),
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readable::parse_text;
    use serde_json::json;

    #[test]
    fn prints_the_issue_example_back() {
        let t = r#"name contains "Mike" and (interest vip or signup after -30d) and not email is_email"#;
        assert_eq!(to_text(&parse_text(t).unwrap()).unwrap(), t);
    }

    #[test]
    fn quotes_what_would_read_otherwise() {
        let v = json!({"all": [
            {"field": "first name", "op": "equals", "value": "and"},
            {"field": "and", "op": "equals", "value": "18"},
            {"event": "headers.User-Agent", "op": "contains", "value": 18},
            {"interest": "numeric", "op": "lost", "case_sensitive": true},
            {"field": "x", "op": "equals", "value": true, "numeric": false},
            {"any": [{"not": {"all": [{"op": "new_profile"}]}}]}]});
        let text = to_text(&v).unwrap();
        assert_eq!(
            text,
            r#""first name" equals "and" and "and" equals "18" and event headers.User-Agent contains 18 and interest "numeric" lost case_sensitive and x equals true and any(not all(new_profile))"#
        );
        let mut without_false = v.clone();
        without_false["all"][4]
            .as_object_mut()
            .unwrap()
            .remove("numeric");
        assert_eq!(parse_text(&text).unwrap(), without_false);
        assert_eq!(to_text(&Value::Null).unwrap(), "");
        assert!(to_text(&json!({"op": "bogus"})).is_err());
    }
}
