//! JSON to [`Node`] tree, with every validation rule. The first mistake found is reported with
//! the path to it; checks run in reading order (keys, subject, operator, flags, operand) so the
//! message names the most basic problem first.
//!
//! [`vocabulary`] holds the keys, subjects and operators; the operand rules of scalar leaves are
//! in [`scalar`]; [`messages`] names things in error messages (suggestions, kinds, paths).

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::ConditionError;
use crate::tree::{FieldPath, Node, Operand, ScalarLeaf, SetLeaf, SetSource, SetTest, Source};

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

mod messages;
mod scalar;
mod vocabulary;

pub(crate) use messages::suggestion;
use messages::{child, kind_of, op_list, unknown_key_message};
use scalar::compile_regex;
use vocabulary::{Op, Subject, GROUP_KEYS, LEAF_KEYS, OPS, SUBJECTS};

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
        let subject = leaf_subject(obj, path)?;
        let op = leaf_op(obj, path)?;
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
        let name = subject_name(obj, path, subject, op)?;
        let flags = Flags::read(obj, path, subject, op)?;
        if subject.is_set() {
            return self.set_leaf(obj, path, subject, name, op, flags.case_sensitive);
        }
        let source = match subject {
            Subject::Field => Source::Profile,
            Subject::SubprofileField => Source::Subprofile,
            _ => Source::Event,
        };
        let test = self.scalar_test(obj, path, op, flags)?;
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

/// The leaf's subject, if it has one (at most one).
fn leaf_subject(obj: &Map<String, Value>, path: &str) -> Result<Option<Subject>, ConditionError> {
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
    Ok(subjects.first().copied())
}

/// The leaf's operator, which must be there and be known.
fn leaf_op(obj: &Map<String, Value>, path: &str) -> Result<Op, ConditionError> {
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
    Op::from_name(op_name).ok_or_else(|| {
        let names: Vec<&str> = OPS.iter().map(|o| o.name()).collect();
        ConditionError::new(
            &op_path,
            format!(
                "unknown operator {op_name:?}{}; expected one of {}",
                suggestion(op_name, &names),
                op_list(&OPS)
            ),
        )
    })
}

/// The name the subject key holds, once the operator is known to fit the subject.
fn subject_name<'a>(
    obj: &'a Map<String, Value>,
    path: &str,
    subject: Subject,
    op: Op,
) -> Result<&'a str, ConditionError> {
    let subject_path = child(path, subject.key());
    if op == Op::NewProfile {
        return Err(ConditionError::new(
            &subject_path,
            "operator \"new_profile\" takes no subject; remove it",
        ));
    }
    if !subject.ops().contains(&op) {
        return Err(ConditionError::new(
            &child(path, "op"),
            format!(
                "operator {:?} does not apply to {:?}; valid operators for {:?}: {}",
                op.name(),
                subject.key(),
                subject.key(),
                op_list(subject.ops())
            ),
        ));
    }
    match &obj[subject.key()] {
        Value::String(s) if !s.is_empty() => Ok(s.as_str()),
        other => Err(ConditionError::new(
            &subject_path,
            format!(
                "{:?} must be a non-empty string, found {}",
                subject.key(),
                kind_of(other)
            ),
        )),
    }
}

/// A leaf's boolean flags.
#[derive(Clone, Copy)]
struct Flags {
    case_sensitive: bool,
    numeric: bool,
    ignore_year: bool,
}

impl Flags {
    /// Reads the flags, refusing those that do not apply and a numeric case-sensitive test.
    fn read(
        obj: &Map<String, Value>,
        path: &str,
        subject: Subject,
        op: Op,
    ) -> Result<Self, ConditionError> {
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
        Ok(Flags {
            case_sensitive,
            numeric,
            ignore_year,
        })
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

#[cfg(test)]
mod tests {
    use super::messages::edit_distance;
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
