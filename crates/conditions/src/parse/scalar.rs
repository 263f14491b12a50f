//! The operand rules of a scalar leaf (`field`, `subprofile_field`, `event`): operators
//! without an operand, regular expressions, dates, numbers, and text and order comparisons
//! against a value or another field.

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use super::messages::{child, kind_of};
use super::vocabulary::Op;
use super::{Flags, Parser, MAX_PATTERN_CHARS, REGEX_DFA_LIMIT, REGEX_SIZE_LIMIT};
use crate::dates::{parse_date_literal, DateLiteral};
use crate::error::ConditionError;
use crate::tree::{DateRhs, FieldPath, NumOp, Operand, Rhs, ScalarTest};

impl Parser {
    pub(super) fn scalar_test(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        op: Op,
        flags: Flags,
    ) -> Result<ScalarTest, ConditionError> {
        let value = obj.get("value");
        let other = obj.get("other_field");
        if !op.needs_operand() {
            return no_operand(path, op, value, other);
        }
        if op == Op::Regexp {
            return self.regex_test(path, value, other, flags.case_sensitive);
        }
        let rhs_other = other_field(path, op, value, other)?;
        if matches!(op, Op::Before | Op::After) {
            return date_test(path, op, rhs_other, value, flags.ignore_year);
        }
        let rhs = match rhs_other {
            Some(p) => Rhs::Other(p),
            None => Rhs::Value(value_operand(
                path,
                value.expect("value is present when other_field is not"),
                flags.numeric,
            )?),
        };
        Ok(comparison(op, rhs, flags))
    }

    /// `regexp`: the pattern in `value`, compiled now.
    fn regex_test(
        &mut self,
        path: &str,
        value: Option<&Value>,
        other: Option<&Value>,
        case_sensitive: bool,
    ) -> Result<ScalarTest, ConditionError> {
        let value_path = child(path, "value");
        if other.is_some() {
            return Err(ConditionError::new(
                &child(path, "other_field"),
                "operator \"regexp\" takes its pattern from \"value\"; \"other_field\" is not supported",
            ));
        }
        let pattern = match value {
            Some(Value::String(p)) => p,
            Some(v) => {
                return Err(ConditionError::new(
                    &value_path,
                    format!(
                        "a regular expression must be a string, found {}",
                        kind_of(v)
                    ),
                ))
            }
            None => {
                return Err(ConditionError::new(
                    path,
                    "operator \"regexp\" needs a pattern in \"value\"",
                ))
            }
        };
        Ok(ScalarTest::Regex(self.regex(
            pattern,
            case_sensitive,
            &value_path,
        )?))
    }
}

/// The operators without an operand (`is_email`, `is_numeric`, `is_empty`, `changed`).
fn no_operand(
    path: &str,
    op: Op,
    value: Option<&Value>,
    other: Option<&Value>,
) -> Result<ScalarTest, ConditionError> {
    for (key, v) in [("value", value), ("other_field", other)] {
        if v.is_some() {
            return Err(ConditionError::new(
                &child(path, key),
                format!("operator {:?} takes no {key:?}; remove it", op.name()),
            ));
        }
    }
    Ok(match op {
        Op::IsEmail => ScalarTest::IsEmail,
        Op::IsNumeric => ScalarTest::IsNumeric,
        Op::IsEmpty => ScalarTest::IsEmpty,
        Op::Changed => ScalarTest::Changed,
        _ => unreachable!("operators without operand are listed above"),
    })
}

/// Exactly one of `value` and `other_field`: the other field's path, or `None` for a value.
fn other_field(
    path: &str,
    op: Op,
    value: Option<&Value>,
    other: Option<&Value>,
) -> Result<Option<FieldPath>, ConditionError> {
    match (value, other) {
        (Some(_), Some(_)) => Err(ConditionError::new(
            path,
            "give either \"value\" or \"other_field\", not both",
        )),
        (None, None) => Err(ConditionError::new(
            path,
            format!(
                "operator {:?} needs \"value\" or \"other_field\"",
                op.name()
            ),
        )),
        (None, Some(Value::String(name))) if !name.is_empty() => Ok(Some(FieldPath::new(name))),
        (None, Some(v)) => Err(ConditionError::new(
            &child(path, "other_field"),
            format!(
                "\"other_field\" must be a non-empty field name, found {}",
                kind_of(v)
            ),
        )),
        (Some(_), None) => Ok(None),
    }
}

/// `before` / `after`: against another field, an absolute date or a relative one.
fn date_test(
    path: &str,
    op: Op,
    rhs_other: Option<FieldPath>,
    value: Option<&Value>,
    ignore_year: bool,
) -> Result<ScalarTest, ConditionError> {
    let value_path = child(path, "value");
    let rhs = match (rhs_other, value) {
        (Some(p), _) => DateRhs::Other(p),
        (None, Some(Value::String(s))) => match parse_date_literal(s) {
            Ok(DateLiteral::Absolute(t)) => DateRhs::Absolute(t),
            Ok(DateLiteral::Relative(r)) => DateRhs::Relative(r),
            Err(message) => return Err(ConditionError::new(&value_path, message)),
        },
        (None, v) => {
            return Err(ConditionError::new(
                &value_path,
                format!(
                    "a date must be a string like \"2026-01-01\" or \"-30d\", found {}",
                    v.map_or("nothing", kind_of)
                ),
            ))
        }
    };
    Ok(ScalarTest::Date {
        after: op == Op::After,
        rhs,
        ignore_year,
    })
}

/// A `value` operand: a string, number or boolean, read as text (and as a number if it is one).
fn value_operand(path: &str, v: &Value, numeric: bool) -> Result<Operand, ConditionError> {
    let value_path = child(path, "value");
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => {
            return Err(ConditionError::new(
                &value_path,
                format!(
                    "\"value\" must be a string, number or boolean, found {}",
                    kind_of(other)
                ),
            ))
        }
    };
    let operand = Operand::new(&text);
    if numeric && operand.number.is_none() {
        return Err(ConditionError::new(
            &value_path,
            format!("{text:?} is not a number, but \"numeric\" is true"),
        ));
    }
    Ok(operand)
}

/// A numeric, order or text comparison with its right-hand side.
fn comparison(op: Op, rhs: Rhs, flags: Flags) -> ScalarTest {
    let case_sensitive = flags.case_sensitive;
    if flags.numeric {
        let num_op = match op {
            Op::Equals => NumOp::Equals,
            Op::NotEquals => NumOp::NotEquals,
            Op::Less => NumOp::Less,
            _ => NumOp::More,
        };
        return ScalarTest::Numeric { op: num_op, rhs };
    }
    if let Op::Less | Op::More = op {
        return ScalarTest::Order {
            more: op == Op::More,
            rhs,
            case_sensitive,
        };
    }
    let (text_op, negate) = op.text().expect("remaining operators are text operators");
    ScalarTest::Text {
        op: text_op,
        negate,
        rhs,
        case_sensitive,
    }
}

pub(super) fn compile_regex(
    pattern: &str,
    case_sensitive: bool,
    path: &str,
) -> Result<Regex, ConditionError> {
    let chars = pattern.chars().count();
    if chars > MAX_PATTERN_CHARS {
        return Err(ConditionError::new(
            path,
            format!("regular expression is {chars} characters long; at most {MAX_PATTERN_CHARS} are allowed"),
        ));
    }
    RegexBuilder::new(pattern)
        .case_insensitive(!case_sensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_LIMIT)
        .build()
        .map_err(|e| {
            ConditionError::new(
                path,
                format!("invalid regular expression: {}", regex_error_text(&e)),
            )
        })
}

/// The regex crate's syntax errors span several lines (pattern, caret, message); keep the
/// message so the error stays on one line.
fn regex_error_text(e: &regex::Error) -> String {
    let text = e.to_string();
    match text.lines().find_map(|l| l.strip_prefix("error: ")) {
        Some(message) => message.to_owned(),
        None => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}
