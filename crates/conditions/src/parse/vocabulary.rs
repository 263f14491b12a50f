//! The condition language's vocabulary: the keys of groups and leaves, the subjects a leaf
//! reads, the operators, and which operators and flags go with which subject.

use crate::text::TextOp;

pub(super) const GROUP_KEYS: [&str; 3] = ["all", "any", "not"];
pub(super) const LEAF_KEYS: [&str; 11] = [
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
pub(super) enum Subject {
    Field,
    SubprofileField,
    Event,
    Interest,
    Tag,
}

pub(super) const SUBJECTS: [Subject; 5] = [
    Subject::Field,
    Subject::SubprofileField,
    Subject::Event,
    Subject::Interest,
    Subject::Tag,
];

impl Subject {
    pub(super) fn key(self) -> &'static str {
        match self {
            Subject::Field => "field",
            Subject::SubprofileField => "subprofile_field",
            Subject::Event => "event",
            Subject::Interest => "interest",
            Subject::Tag => "tag",
        }
    }

    pub(super) fn ops(self) -> &'static [Op] {
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

    pub(super) fn is_set(self) -> bool {
        matches!(self, Subject::Interest | Subject::Tag)
    }
}

/// Every operator of the language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
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

pub(super) const OPS: [Op; 20] = [
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
    pub(super) fn name(self) -> &'static str {
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

    pub(super) fn from_name(name: &str) -> Option<Op> {
        OPS.into_iter().find(|op| op.name() == name)
    }

    /// The text operator and whether it is negated, for the six text comparisons (and `has` /
    /// `has_not`, which are `equals` / `not_equals` on a list).
    pub(super) fn text(self) -> Option<(TextOp, bool)> {
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
    pub(super) fn needs_operand(self) -> bool {
        self.text().is_some()
            || matches!(
                self,
                Op::Less | Op::More | Op::Before | Op::After | Op::Regexp
            )
    }

    pub(super) fn allows_case_sensitive(self) -> bool {
        self.text().is_some()
            || matches!(
                self,
                Op::Less | Op::More | Op::Regexp | Op::Gained | Op::Lost
            )
    }

    pub(super) fn allows_numeric(self) -> bool {
        matches!(self, Op::Equals | Op::NotEquals | Op::Less | Op::More)
    }
}
