//! The parsed condition tree. Everything here is precomputed by `parse` so that `eval` never
//! has to re-read JSON, lowercase an operand, parse a literal or compile a pattern.

use regex::Regex;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::dates::Relative;
use crate::text::TextOp;

/// One node of a parsed condition.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    /// `null`: no condition.
    Always,
    All(Box<[Node]>),
    Any(Box<[Node]>),
    Not(Box<Node>),
    /// A leaf on a single value: a profile, subprofile or event field.
    Scalar(ScalarLeaf),
    /// A leaf on a list of names: interests or tags.
    Set(SetLeaf),
    /// `{"op": "new_profile"}`.
    NewProfile,
}

/// Which map a field name is looked up in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Profile,
    Subprofile,
    Event,
}

/// Which list a set leaf reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetSource {
    Interests,
    Tags,
}

/// A field name, with its dotted segments precomputed for nested lookups (`headers.User-Agent`).
#[derive(Clone, Debug)]
pub(crate) struct FieldPath {
    name: Box<str>,
    /// `Some` when the name contains dots and every segment is non-empty.
    segments: Option<Box<[Box<str>]>>,
}

impl FieldPath {
    pub(crate) fn new(name: &str) -> Self {
        let segments = if name.contains('.') && name.split('.').all(|s| !s.is_empty()) {
            Some(name.split('.').map(Box::from).collect())
        } else {
            None
        };
        FieldPath {
            name: name.into(),
            segments,
        }
    }

    /// The value under this name: the literal key first (field names may contain dots), then
    /// the dotted path through nested objects.
    pub(crate) fn lookup<'m>(&self, map: &'m Map<String, Value>) -> Option<&'m Value> {
        if let Some(v) = map.get(&*self.name) {
            return Some(v);
        }
        let segments = self.segments.as_deref()?;
        let (first, rest) = segments.split_first()?;
        let mut current = map.get(&**first)?;
        for segment in rest {
            current = current.as_object()?.get(&**segment)?;
        }
        Some(current)
    }
}

/// A literal operand, in every form evaluation may need.
#[derive(Clone, Debug)]
pub(crate) struct Operand {
    pub(crate) raw: Box<str>,
    pub(crate) lower: Box<str>,
    pub(crate) number: Option<f64>,
}

impl Operand {
    pub(crate) fn new(raw: &str) -> Self {
        Operand {
            raw: raw.into(),
            lower: raw.to_lowercase().into(),
            number: crate::text::parse_number(raw),
        }
    }
}

/// The right-hand side of a comparison: a literal, or another field of the same source.
#[derive(Clone, Debug)]
pub(crate) enum Rhs {
    Value(Operand),
    Other(FieldPath),
}

/// The right-hand side of a date comparison.
#[derive(Clone, Debug)]
pub(crate) enum DateRhs {
    Absolute(OffsetDateTime),
    Relative(Relative),
    Other(FieldPath),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumOp {
    Equals,
    NotEquals,
    Less,
    More,
}

#[derive(Clone, Debug)]
pub(crate) struct ScalarLeaf {
    pub(crate) source: Source,
    pub(crate) subject: FieldPath,
    pub(crate) test: ScalarTest,
}

#[derive(Clone, Debug)]
pub(crate) enum ScalarTest {
    /// equals / contains / starts_with / ends_with, `negate` for not_equals / not_contains.
    Text {
        op: TextOp,
        negate: bool,
        rhs: Rhs,
        case_sensitive: bool,
    },
    /// `"numeric": true` comparisons.
    Numeric {
        op: NumOp,
        rhs: Rhs,
    },
    /// less / more without `numeric`: numbers when both sides are numbers, text otherwise.
    Order {
        more: bool,
        rhs: Rhs,
        case_sensitive: bool,
    },
    Regex(Regex),
    IsEmail,
    IsNumeric,
    IsEmpty,
    Date {
        after: bool,
        rhs: DateRhs,
        ignore_year: bool,
    },
    Changed,
}

#[derive(Clone, Debug)]
pub(crate) struct SetLeaf {
    pub(crate) source: SetSource,
    pub(crate) test: SetTest,
}

#[derive(Clone, Debug)]
pub(crate) enum SetTest {
    /// Some element matches (`negate`: no element matches). `has` is `Equals`, `has_not` is
    /// negated `Equals`.
    Text {
        op: TextOp,
        negate: bool,
        operand: Operand,
        case_sensitive: bool,
    },
    Regex(Regex),
    Gained {
        operand: Operand,
        case_sensitive: bool,
    },
    Lost {
        operand: Operand,
        case_sensitive: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn literal_key_wins_over_dotted_path() {
        let m = map(json!({"a.b": 1, "a": {"b": 2}}));
        assert_eq!(FieldPath::new("a.b").lookup(&m), Some(&json!(1)));
    }

    #[test]
    fn dotted_path_walks_nested_objects() {
        let m = map(json!({"headers": {"User-Agent": "curl"}, "x": 5}));
        assert_eq!(
            FieldPath::new("headers.User-Agent").lookup(&m),
            Some(&json!("curl"))
        );
        assert_eq!(FieldPath::new("headers.Accept").lookup(&m), None);
        assert_eq!(FieldPath::new("x.y").lookup(&m), None);
        assert_eq!(FieldPath::new("headers.").lookup(&m), None);
    }

    #[test]
    fn operand_precomputes_lowercase_and_number() {
        let o = Operand::new("MIKE");
        assert_eq!(&*o.lower, "mike");
        assert_eq!(o.number, None);
        assert_eq!(Operand::new(" 42.5 ").number, Some(42.5));
    }
}
