//! Evaluation of a parsed tree. Runs per event per subscription, so it borrows everything from
//! the [`EvalContext`], short-circuits groups, and allocates only when it must (lowercasing
//! non-ASCII text, the text form of a number, a field compared as text against a number).

use std::cmp::Ordering;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::dates::{cmp_ignoring_year, parse_absolute};
use crate::text::{is_email, number_of, text_cmp, text_match, text_of, TextOp};
use crate::tree::{
    DateRhs, FieldPath, Node, NumOp, Operand, Rhs, ScalarLeaf, ScalarTest, SetLeaf, SetSource,
    SetTest, Source,
};
use crate::EvalContext;

impl Node {
    pub(crate) fn eval(&self, ctx: &EvalContext<'_>) -> bool {
        match self {
            Node::Always => true,
            Node::All(children) => children.iter().all(|c| c.eval(ctx)),
            Node::Any(children) => children.iter().any(|c| c.eval(ctx)),
            Node::Not(inner) => !inner.eval(ctx),
            Node::Scalar(leaf) => leaf.eval(ctx),
            Node::Set(leaf) => leaf.eval(ctx),
            Node::NewProfile => ctx.is_new_profile,
        }
    }
}

/// Applies `f` to the value, or to each element when it is an array: a positive test holds when
/// any element passes it. A missing field is passed on as `None`.
fn any_item(v: Option<&Value>, mut f: impl FnMut(Option<&Value>) -> bool) -> bool {
    match v {
        Some(Value::Array(items)) => items.iter().any(|item| f(Some(item))),
        other => f(other),
    }
}

fn date_of(v: Option<&Value>) -> Option<OffsetDateTime> {
    match v? {
        Value::String(s) => parse_absolute(s),
        _ => None,
    }
}

impl ScalarLeaf {
    fn map<'a>(&self, ctx: &EvalContext<'a>) -> Option<&'a Map<String, Value>> {
        match self.source {
            Source::Profile => Some(ctx.profile_fields),
            Source::Subprofile => ctx.subprofile_fields,
            Source::Event => Some(ctx.event),
        }
    }

    fn eval(&self, ctx: &EvalContext<'_>) -> bool {
        let map = self.map(ctx);
        let lookup = |p: &FieldPath| map.and_then(|m| p.lookup(m));
        let subject = lookup(&self.subject);
        match &self.test {
            ScalarTest::Text {
                op,
                negate,
                rhs,
                case_sensitive,
            } => text_test(subject, *op, rhs, lookup, *case_sensitive) != *negate,
            ScalarTest::Numeric { op, rhs } => {
                let r = match rhs {
                    Rhs::Value(o) => o.number,
                    Rhs::Other(p) => number_of(lookup(p)),
                };
                let Some(r) = r else { return false };
                numeric(*op, subject, r)
            }
            ScalarTest::Order {
                more,
                rhs,
                case_sensitive,
            } => order_test(subject, *more, rhs, lookup, *case_sensitive),
            ScalarTest::Regex(re) => any_item(subject, |v| re.is_match(&text_of(v))),
            ScalarTest::IsEmail => any_item(subject, |v| is_email(&text_of(v))),
            ScalarTest::IsNumeric => any_item(subject, |v| number_of(v).is_some()),
            ScalarTest::IsEmpty => match subject {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Object(o)) => o.is_empty(),
                Some(Value::Number(_) | Value::Bool(_)) => false,
            },
            ScalarTest::Date {
                after,
                rhs,
                ignore_year,
            } => {
                let reference = match rhs {
                    DateRhs::Absolute(t) => Some(*t),
                    DateRhs::Relative(r) => r.apply(ctx.now),
                    DateRhs::Other(p) => date_of(lookup(p)),
                };
                reference.is_some_and(|r| date_test(subject, *after, r, *ignore_year))
            }
            ScalarTest::Changed => {
                if ctx.is_new_profile {
                    return true;
                }
                let Some(previous) = ctx.previous_fields.and_then(|m| self.subject.lookup(m))
                else {
                    return false;
                };
                text_of(Some(previous)) != text_of(subject)
            }
        }
    }
}

/// A text operator against a value, or against another field (`lookup` reads it).
fn text_test<'a>(
    subject: Option<&Value>,
    op: TextOp,
    rhs: &Rhs,
    lookup: impl Fn(&FieldPath) -> Option<&'a Value>,
    case_sensitive: bool,
) -> bool {
    match rhs {
        Rhs::Value(o) => any_item(subject, |v| {
            text_match(op, &text_of(v), &o.raw, Some(&o.lower), case_sensitive)
        }),
        Rhs::Other(p) => {
            let other = text_of(lookup(p));
            any_item(subject, |v| {
                text_match(op, &text_of(v), &other, None, case_sensitive)
            })
        }
    }
}

/// `less` / `more`: numbers as numbers, anything else as text.
fn order_test<'a>(
    subject: Option<&Value>,
    more: bool,
    rhs: &Rhs,
    lookup: impl Fn(&FieldPath) -> Option<&'a Value>,
    case_sensitive: bool,
) -> bool {
    let wanted = Some(if more {
        Ordering::Greater
    } else {
        Ordering::Less
    });
    match rhs {
        Rhs::Value(o) => any_item(subject, |v| {
            order(v, &o.raw, Some(&o.lower), o.number, case_sensitive) == wanted
        }),
        Rhs::Other(p) => {
            let other = lookup(p);
            if is_absent(other) {
                return false;
            }
            let (text, number) = (text_of(other), number_of(other));
            any_item(subject, |v| {
                order(v, &text, None, number, case_sensitive) == wanted
            })
        }
    }
}

/// `before` / `after` the reference date, optionally on the calendar of any year.
fn date_test(
    subject: Option<&Value>,
    after: bool,
    reference: OffsetDateTime,
    ignore_year: bool,
) -> bool {
    let wanted = if after {
        Ordering::Greater
    } else {
        Ordering::Less
    };
    any_item(subject, |v| {
        date_of(v).is_some_and(|d| {
            let ord = if ignore_year {
                cmp_ignoring_year(d, reference)
            } else {
                Some(d.cmp(&reference))
            };
            ord == Some(wanted)
        })
    })
}

fn is_absent(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null))
}

/// Numeric comparison; every side that is not a number makes the test false. `not_equals` on an
/// array needs at least one number and no element equal to `r`.
fn numeric(op: NumOp, subject: Option<&Value>, r: f64) -> bool {
    match op {
        NumOp::Equals => any_item(subject, |v| number_of(v) == Some(r)),
        NumOp::Less => any_item(subject, |v| number_of(v).is_some_and(|x| x < r)),
        NumOp::More => any_item(subject, |v| number_of(v).is_some_and(|x| x > r)),
        NumOp::NotEquals => {
            let (mut saw_number, mut saw_equal) = (false, false);
            any_item(subject, |v| {
                if let Some(x) = number_of(v) {
                    saw_number = true;
                    saw_equal |= x == r;
                }
                false
            });
            saw_number && !saw_equal
        }
    }
}

/// `less` / `more` without `numeric`: numbers when both sides are numbers, else text. A missing
/// or null side has no order.
fn order(
    v: Option<&Value>,
    rhs: &str,
    rhs_lower: Option<&str>,
    rhs_number: Option<f64>,
    case_sensitive: bool,
) -> Option<Ordering> {
    if is_absent(v) {
        return None;
    }
    if let (Some(a), Some(b)) = (number_of(v), rhs_number) {
        return a.partial_cmp(&b);
    }
    Some(text_cmp(&text_of(v), rhs, rhs_lower, case_sensitive))
}

impl SetLeaf {
    fn eval(&self, ctx: &EvalContext<'_>) -> bool {
        let list = match self.source {
            SetSource::Interests => ctx.interests,
            SetSource::Tags => ctx.tags,
        };
        match &self.test {
            SetTest::Text {
                op,
                negate,
                operand,
                case_sensitive,
            } => {
                let hit = list.iter().any(|s| {
                    text_match(*op, s, &operand.raw, Some(&operand.lower), *case_sensitive)
                });
                hit != *negate
            }
            SetTest::Regex(re) => list.iter().any(|s| re.is_match(s)),
            SetTest::Gained {
                operand,
                case_sensitive,
            } => {
                if !member(list, operand, *case_sensitive) {
                    return false;
                }
                match ctx.previous_interests {
                    Some(previous) => !member(previous, operand, *case_sensitive),
                    // A new profile gains every interest it is created with.
                    None => ctx.is_new_profile,
                }
            }
            SetTest::Lost {
                operand,
                case_sensitive,
            } => match ctx.previous_interests {
                Some(previous) => {
                    member(previous, operand, *case_sensitive)
                        && !member(list, operand, *case_sensitive)
                }
                None => false,
            },
        }
    }
}

fn member(list: &[String], name: &Operand, case_sensitive: bool) -> bool {
    list.iter().any(|s| {
        text_match(
            TextOp::Equals,
            s,
            &name.raw,
            Some(&name.lower),
            case_sensitive,
        )
    })
}
