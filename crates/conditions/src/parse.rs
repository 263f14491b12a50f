//! JSON to [`Node`] tree, with every validation rule. The first mistake found is reported with
//! the path to it; checks run in reading order (keys, subject, operator, flags, operand) so the
//! message names the most basic problem first.

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use crate::dates::{parse_date_literal, DateLiteral};
use crate::error::ConditionError;
use crate::text::TextOp;
use crate::tree::{
    DateRhs, FieldPath, Node, NumOp, Operand, Rhs, ScalarLeaf, ScalarTest, SetLeaf, SetSource,
    SetTest, Source,
};

/// How many groups may be nested inside each other.
pub(crate) const MAX_DEPTH: usize = 32;
/// How many leaves one condition may hold.
pub(crate) const MAX_LEAVES: usize = 1_000;
/// The longest regular expression accepted, in characters.
pub(crate) const MAX_PATTERN_CHARS: usize = 1_000;
/// The compiled size limit of one regular expression. 64 KiB would be too tight: with Unicode
/// on (names have accents) a single `\w` compiles to about 50 KB, so `^\w+@\w+\.\w+$` needs
/// about 150 KB. 256 KiB accepts such patterns and still rejects runaway repetitions
/// (`\w{500}` is about 25 MB).
pub(crate) const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// How many `regexp` leaves one condition may hold; with the size limit this bounds the
/// compiled patterns of one condition to about 25 MiB.
pub(crate) const MAX_REGEX_LEAVES: usize = 100;
/// The lazy DFA cache limit of one regular expression; bounds memory per pattern and thread.
const REGEX_DFA_LIMIT: usize = 256 * 1024;

const GROUP_KEYS: [&str; 3] = ["all", "any", "not"];
const LEAF_KEYS: [&str; 11] = [
    "field",
    "subprofile_field",
    "event",
    "interest",
    "tag",
    "op",
    "value",
    "other_field",
    "case_sensitive",
    "numeric",
    "ignore_year",
];

/// What a leaf reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Subject {
    Field,
    SubprofileField,
    Event,
    Interest,
    Tag,
}

const SUBJECTS: [Subject; 5] = [
    Subject::Field,
    Subject::SubprofileField,
    Subject::Event,
    Subject::Interest,
    Subject::Tag,
];

impl Subject {
    fn key(self) -> &'static str {
        match self {
            Subject::Field => "field",
            Subject::SubprofileField => "subprofile_field",
            Subject::Event => "event",
            Subject::Interest => "interest",
            Subject::Tag => "tag",
        }
    }

    fn ops(self) -> &'static [Op] {
        use Op::*;
        match self {
            Subject::Field => &[
                Equals,
                NotEquals,
                Contains,
                NotContains,
                StartsWith,
                EndsWith,
                Less,
                More,
                Regexp,
                IsEmail,
                IsNumeric,
                IsEmpty,
                Before,
                After,
                Changed,
            ],
            Subject::SubprofileField | Subject::Event => &[
                Equals,
                NotEquals,
                Contains,
                NotContains,
                StartsWith,
                EndsWith,
                Less,
                More,
                Regexp,
                IsEmail,
                IsNumeric,
                IsEmpty,
                Before,
                After,
            ],
            Subject::Interest => &[
                Has,
                HasNot,
                Gained,
                Lost,
                Equals,
                NotEquals,
                Contains,
                NotContains,
                StartsWith,
                EndsWith,
                Regexp,
            ],
            Subject::Tag => &[
                Has,
                HasNot,
                Equals,
                NotEquals,
                Contains,
                NotContains,
                StartsWith,
                EndsWith,
                Regexp,
            ],
        }
    }

    fn is_set(self) -> bool {
        matches!(self, Subject::Interest | Subject::Tag)
    }
}

/// Every operator of the language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Equals,
    NotEquals,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    Less,
    More,
    Regexp,
    IsEmail,
    IsNumeric,
    IsEmpty,
    Before,
    After,
    Changed,
    Has,
    HasNot,
    Gained,
    Lost,
    NewProfile,
}

const OPS: [Op; 20] = [
    Op::Equals,
    Op::NotEquals,
    Op::Contains,
    Op::NotContains,
    Op::StartsWith,
    Op::EndsWith,
    Op::Less,
    Op::More,
    Op::Regexp,
    Op::IsEmail,
    Op::IsNumeric,
    Op::IsEmpty,
    Op::Before,
    Op::After,
    Op::Changed,
    Op::Has,
    Op::HasNot,
    Op::Gained,
    Op::Lost,
    Op::NewProfile,
];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Equals => "equals",
            Op::NotEquals => "not_equals",
            Op::Contains => "contains",
            Op::NotContains => "not_contains",
            Op::StartsWith => "starts_with",
            Op::EndsWith => "ends_with",
            Op::Less => "less",
            Op::More => "more",
            Op::Regexp => "regexp",
            Op::IsEmail => "is_email",
            Op::IsNumeric => "is_numeric",
            Op::IsEmpty => "is_empty",
            Op::Before => "before",
            Op::After => "after",
            Op::Changed => "changed",
            Op::Has => "has",
            Op::HasNot => "has_not",
            Op::Gained => "gained",
            Op::Lost => "lost",
            Op::NewProfile => "new_profile",
        }
    }

    fn from_name(name: &str) -> Option<Op> {
        OPS.into_iter().find(|op| op.name() == name)
    }

    /// The text operator and whether it is negated, for the six text comparisons (and `has` /
    /// `has_not`, which are `equals` / `not_equals` on a list).
    fn text(self) -> Option<(TextOp, bool)> {
        Some(match self {
            Op::Equals | Op::Has => (TextOp::Equals, false),
            Op::NotEquals | Op::HasNot => (TextOp::Equals, true),
            Op::Contains => (TextOp::Contains, false),
            Op::NotContains => (TextOp::Contains, true),
            Op::StartsWith => (TextOp::StartsWith, false),
            Op::EndsWith => (TextOp::EndsWith, false),
            _ => return None,
        })
    }

    /// Whether a scalar leaf with this operator compares against `value` / `other_field`.
    fn needs_operand(self) -> bool {
        self.text().is_some()
            || matches!(
                self,
                Op::Less | Op::More | Op::Before | Op::After | Op::Regexp
            )
    }

    fn allows_case_sensitive(self) -> bool {
        self.text().is_some()
            || matches!(
                self,
                Op::Less | Op::More | Op::Regexp | Op::Gained | Op::Lost
            )
    }

    fn allows_numeric(self) -> bool {
        matches!(self, Op::Equals | Op::NotEquals | Op::Less | Op::More)
    }
}

/// Parses a condition in its JSON wire form.
pub(crate) fn parse(json: &Value) -> Result<Node, ConditionError> {
    if json.is_null() {
        return Ok(Node::Always);
    }
    let mut parser = Parser {
        leaves: 0,
        regexes: 0,
    };
    parser.node(json, "", 0)
}

struct Parser {
    leaves: usize,
    regexes: usize,
}

impl Parser {
    /// `depth` is the number of groups enclosing `value`.
    fn node(&mut self, value: &Value, path: &str, depth: usize) -> Result<Node, ConditionError> {
        let Value::Object(obj) = value else {
            return Err(ConditionError::new(
                path,
                format!(
                    "expected a condition object (a group with \"all\", \"any\" or \"not\", or a leaf with \"op\"), found {}",
                    kind_of(value)
                ),
            ));
        };
        let group_key = GROUP_KEYS.into_iter().find(|k| obj.contains_key(*k));
        match group_key {
            Some(key) => self.group(obj, key, path, depth),
            None => self.leaf(obj, path),
        }
    }

    fn group(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
        depth: usize,
    ) -> Result<Node, ConditionError> {
        if let Some(other) = obj.keys().find(|k| k.as_str() != key) {
            let what = if GROUP_KEYS.contains(&other.as_str())
                || LEAF_KEYS.contains(&other.as_str())
            {
                format!("unexpected key {other:?} beside {key:?}: a group object holds exactly one key; nest it instead")
            } else {
                unknown_key_message(other)
            };
            return Err(ConditionError::new(&child(path, other), what));
        }
        if depth >= MAX_DEPTH {
            return Err(ConditionError::new(
                path,
                format!("conditions nest deeper than {MAX_DEPTH} levels of all/any/not"),
            ));
        }
        let inner = &obj[key];
        let here = child(path, key);
        if key == "not" {
            if !inner.is_object() {
                return Err(ConditionError::new(
                    &here,
                    format!(
                        "\"not\" takes one condition object, found {}",
                        kind_of(inner)
                    ),
                ));
            }
            return Ok(Node::Not(Box::new(self.node(inner, &here, depth + 1)?)));
        }
        let Value::Array(items) = inner else {
            return Err(ConditionError::new(
                &here,
                format!(
                    "{key:?} takes an array of conditions, found {}",
                    kind_of(inner)
                ),
            ));
        };
        if items.is_empty() {
            return Err(ConditionError::new(
                &here,
                format!("empty {key:?} group; give at least one condition (or use null for no condition)"),
            ));
        }
        let children = items
            .iter()
            .enumerate()
            .map(|(i, item)| self.node(item, &format!("{here}/{i}"), depth + 1))
            .collect::<Result<Vec<_>, _>>()?
            .into_boxed_slice();
        Ok(if key == "all" {
            Node::All(children)
        } else {
            Node::Any(children)
        })
    }

    fn leaf(&mut self, obj: &Map<String, Value>, path: &str) -> Result<Node, ConditionError> {
        self.leaves += 1;
        if self.leaves > MAX_LEAVES {
            return Err(ConditionError::new(
                path,
                format!("too many leaves: a condition may hold at most {MAX_LEAVES}"),
            ));
        }
        if let Some(unknown) = obj.keys().find(|k| !LEAF_KEYS.contains(&k.as_str())) {
            return Err(ConditionError::new(
                &child(path, unknown),
                unknown_key_message(unknown),
            ));
        }

        let subjects: Vec<Subject> = SUBJECTS
            .into_iter()
            .filter(|s| obj.contains_key(s.key()))
            .collect();
        if let [first, second, ..] = subjects[..] {
            return Err(ConditionError::new(
                &child(path, second.key()),
                format!(
                    "a leaf reads one subject; found both {:?} and {:?}",
                    first.key(),
                    second.key()
                ),
            ));
        }
        let subject = subjects.first().copied();

        let Some(op_value) = obj.get("op") else {
            return Err(ConditionError::new(
                path,
                format!("missing \"op\"; expected one of {}", op_list(&OPS)),
            ));
        };
        let op_path = child(path, "op");
        let Some(op_name) = op_value.as_str() else {
            return Err(ConditionError::new(
                &op_path,
                format!("\"op\" must be a string, found {}", kind_of(op_value)),
            ));
        };
        let Some(op) = Op::from_name(op_name) else {
            let names: Vec<&str> = OPS.iter().map(|o| o.name()).collect();
            return Err(ConditionError::new(
                &op_path,
                format!(
                    "unknown operator {op_name:?}{}; expected one of {}",
                    suggestion(op_name, &names),
                    op_list(&OPS)
                ),
            ));
        };

        let Some(subject) = subject else {
            if op == Op::NewProfile {
                return self.new_profile(obj, path);
            }
            return Err(ConditionError::new(
                path,
                format!(
                    "operator {:?} needs a subject: one of \"field\", \"subprofile_field\", \"event\", \"interest\", \"tag\"",
                    op.name()
                ),
            ));
        };
        let subject_path = child(path, subject.key());
        if op == Op::NewProfile {
            return Err(ConditionError::new(
                &subject_path,
                "operator \"new_profile\" takes no subject; remove it",
            ));
        }
        if !subject.ops().contains(&op) {
            return Err(ConditionError::new(
                &op_path,
                format!(
                    "operator {:?} does not apply to {:?}; valid operators for {:?}: {}",
                    op.name(),
                    subject.key(),
                    subject.key(),
                    op_list(subject.ops())
                ),
            ));
        }
        let name = match &obj[subject.key()] {
            Value::String(s) if !s.is_empty() => s.as_str(),
            other => {
                return Err(ConditionError::new(
                    &subject_path,
                    format!(
                        "{:?} must be a non-empty string, found {}",
                        subject.key(),
                        kind_of(other)
                    ),
                ))
            }
        };

        let case_sensitive = flag(obj, path, "case_sensitive", op.allows_case_sensitive(), op)?;
        let numeric = flag(
            obj,
            path,
            "numeric",
            !subject.is_set() && op.allows_numeric(),
            op,
        )?;
        let ignore_year = flag(
            obj,
            path,
            "ignore_year",
            matches!(op, Op::Before | Op::After),
            op,
        )?;
        if numeric && case_sensitive {
            return Err(ConditionError::new(
                &child(path, "case_sensitive"),
                "\"case_sensitive\" has no effect on a numeric comparison; remove one of them",
            ));
        }

        if subject.is_set() {
            return self.set_leaf(obj, path, subject, name, op, case_sensitive);
        }
        let source = match subject {
            Subject::Field => Source::Profile,
            Subject::SubprofileField => Source::Subprofile,
            _ => Source::Event,
        };
        let test = self.scalar_test(obj, path, op, case_sensitive, numeric, ignore_year)?;
        Ok(Node::Scalar(ScalarLeaf {
            source,
            subject: FieldPath::new(name),
            test,
        }))
    }

    fn new_profile(&self, obj: &Map<String, Value>, path: &str) -> Result<Node, ConditionError> {
        for key in ["case_sensitive", "numeric", "ignore_year"] {
            flag(obj, path, key, false, Op::NewProfile)?;
        }
        for key in ["value", "other_field"] {
            if obj.contains_key(key) {
                return Err(ConditionError::new(
                    &child(path, key),
                    format!("operator \"new_profile\" takes no {key:?}; remove it"),
                ));
            }
        }
        Ok(Node::NewProfile)
    }

    fn set_leaf(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        subject: Subject,
        name: &str,
        op: Op,
        case_sensitive: bool,
    ) -> Result<Node, ConditionError> {
        for key in ["value", "other_field"] {
            if obj.contains_key(key) {
                return Err(ConditionError::new(
                    &child(path, key),
                    format!(
                        "operator {:?} on {:?} compares against the name in {:?}; remove {key:?}",
                        op.name(),
                        subject.key(),
                        subject.key()
                    ),
                ));
            }
        }
        let operand = Operand::new(name);
        let test = match op {
            Op::Gained => SetTest::Gained {
                operand,
                case_sensitive,
            },
            Op::Lost => SetTest::Lost {
                operand,
                case_sensitive,
            },
            Op::Regexp => {
                SetTest::Regex(self.regex(name, case_sensitive, &child(path, subject.key()))?)
            }
            _ => {
                let (text_op, negate) = op.text().expect("set operators are text operators");
                SetTest::Text {
                    op: text_op,
                    negate,
                    operand,
                    case_sensitive,
                }
            }
        };
        let source = if subject == Subject::Interest {
            SetSource::Interests
        } else {
            SetSource::Tags
        };
        Ok(Node::Set(SetLeaf { source, test }))
    }

    fn scalar_test(
        &mut self,
        obj: &Map<String, Value>,
        path: &str,
        op: Op,
        case_sensitive: bool,
        numeric: bool,
        ignore_year: bool,
    ) -> Result<ScalarTest, ConditionError> {
        let value = obj.get("value");
        let other = obj.get("other_field");
        let value_path = child(path, "value");
        let other_path = child(path, "other_field");

        if !op.needs_operand() {
            for (key, v) in [("value", value), ("other_field", other)] {
                if v.is_some() {
                    return Err(ConditionError::new(
                        &child(path, key),
                        format!("operator {:?} takes no {key:?}; remove it", op.name()),
                    ));
                }
            }
            return Ok(match op {
                Op::IsEmail => ScalarTest::IsEmail,
                Op::IsNumeric => ScalarTest::IsNumeric,
                Op::IsEmpty => ScalarTest::IsEmpty,
                Op::Changed => ScalarTest::Changed,
                _ => unreachable!("operators without operand are listed above"),
            });
        }

        if op == Op::Regexp {
            if other.is_some() {
                return Err(ConditionError::new(
                    &other_path,
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
            return Ok(ScalarTest::Regex(self.regex(
                pattern,
                case_sensitive,
                &value_path,
            )?));
        }

        let rhs_other = match (value, other) {
            (Some(_), Some(_)) => {
                return Err(ConditionError::new(
                    path,
                    "give either \"value\" or \"other_field\", not both",
                ))
            }
            (None, None) => {
                return Err(ConditionError::new(
                    path,
                    format!(
                        "operator {:?} needs \"value\" or \"other_field\"",
                        op.name()
                    ),
                ))
            }
            (None, Some(Value::String(name))) if !name.is_empty() => Some(FieldPath::new(name)),
            (None, Some(v)) => {
                return Err(ConditionError::new(
                    &other_path,
                    format!(
                        "\"other_field\" must be a non-empty field name, found {}",
                        kind_of(v)
                    ),
                ))
            }
            (Some(_), None) => None,
        };

        if matches!(op, Op::Before | Op::After) {
            let after = op == Op::After;
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
            return Ok(ScalarTest::Date {
                after,
                rhs,
                ignore_year,
            });
        }

        let rhs = match rhs_other {
            Some(p) => Rhs::Other(p),
            None => {
                let v = value.expect("value is present when other_field is not");
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
                Rhs::Value(operand)
            }
        };

        if numeric {
            let num_op = match op {
                Op::Equals => NumOp::Equals,
                Op::NotEquals => NumOp::NotEquals,
                Op::Less => NumOp::Less,
                _ => NumOp::More,
            };
            return Ok(ScalarTest::Numeric { op: num_op, rhs });
        }
        if let Op::Less | Op::More = op {
            return Ok(ScalarTest::Order {
                more: op == Op::More,
                rhs,
                case_sensitive,
            });
        }
        let (text_op, negate) = op.text().expect("remaining operators are text operators");
        Ok(ScalarTest::Text {
            op: text_op,
            negate,
            rhs,
            case_sensitive,
        })
    }

    fn regex(
        &mut self,
        pattern: &str,
        case_sensitive: bool,
        path: &str,
    ) -> Result<Regex, ConditionError> {
        self.regexes += 1;
        if self.regexes > MAX_REGEX_LEAVES {
            return Err(ConditionError::new(
                path,
                format!(
                    "too many regular expressions: a condition may hold at most {MAX_REGEX_LEAVES}"
                ),
            ));
        }
        compile_regex(pattern, case_sensitive, path)
    }
}

/// Reads an optional boolean flag. `false` is accepted everywhere (it is the default, and
/// editors like to send defaults); `true` only where the flag means something.
fn flag(
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
    applies: bool,
    op: Op,
) -> Result<bool, ConditionError> {
    match obj.get(key) {
        None | Some(Value::Bool(false)) => Ok(false),
        Some(Value::Bool(true)) if applies => Ok(true),
        Some(Value::Bool(true)) => Err(ConditionError::new(
            &child(path, key),
            format!("{key:?} does not apply to operator {:?} here", op.name()),
        )),
        Some(other) => Err(ConditionError::new(
            &child(path, key),
            format!("{key:?} must be true or false, found {}", kind_of(other)),
        )),
    }
}

fn compile_regex(pattern: &str, case_sensitive: bool, path: &str) -> Result<Regex, ConditionError> {
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

fn unknown_key_message(key: &str) -> String {
    let known: Vec<&str> = GROUP_KEYS.iter().chain(LEAF_KEYS.iter()).copied().collect();
    format!(
        "unknown key {key:?}{}; expected one of {}",
        suggestion(key, &known),
        known.join(", ")
    )
}

fn op_list(ops: &[Op]) -> String {
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

fn edit_distance(a: &str, b: &str) -> usize {
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
fn child(path: &str, key: &str) -> String {
    format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("contians", "contains"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("equals", "equals"), 0);
        assert_eq!(
            suggestion("contians", &["contains", "equals"]),
            " (did you mean \"contains\"?)"
        );
        assert_eq!(suggestion("xyzzy", &["contains", "equals"]), "");
    }

    #[test]
    fn pointer_segments_are_escaped() {
        assert_eq!(child("/all/0", "a/b~c"), "/all/0/a~1b~0c");
    }

    #[test]
    fn every_operator_has_a_round_tripping_name() {
        for op in OPS {
            assert_eq!(Op::from_name(op.name()), Some(op));
        }
        assert_eq!(Op::from_name("Equals"), None);
    }

    #[test]
    fn every_subject_operator_is_buildable() {
        // Each operator a subject allows must parse with a suitable operand, so the tables in
        // Subject::ops and scalar_test/set_leaf cannot drift apart.
        for subject in SUBJECTS {
            for op in subject.ops() {
                let mut leaf = serde_json::json!({ subject.key(): "x", "op": op.name() });
                if !subject.is_set() && op.needs_operand() {
                    let value = match op {
                        Op::Before | Op::After => "-1d",
                        _ => "1",
                    };
                    leaf["value"] = value.into();
                }
                parse(&leaf).unwrap_or_else(|e| panic!("{leaf}: {e}"));
            }
        }
    }
}
