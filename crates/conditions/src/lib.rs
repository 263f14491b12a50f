//! Hookline's condition language: the optional filter a subscription carries, parsed and
//! validated once when the subscription is loaded, then evaluated per event.
//!
//! The wire form is JSON (`{"all": [{"field": "name", "op": "contains", "value": "Mike"}]}`);
//! `docs/conditions.md` is the language reference. The crate is split so that everything
//! expensive or fallible happens at parse time and evaluation is a cheap walk over a
//! precompiled tree:
//!
//! - `error`: [`ConditionError`], a validation failure with a JSON-pointer-like path to the
//!   mistake, so the admin API can tell a user exactly what to fix.
//! - `tree` (private): the parsed tree. Leaves hold precomputed lowercase operands, parsed
//!   numbers and dates and compiled regular expressions, never raw JSON.
//! - `parse` (private): JSON to tree, with every validation rule (unknown keys and operators,
//!   operators that do not fit their subject, operand rules, nesting and size limits).
//! - `eval` (private): the tree against an [`EvalContext`]; borrows everything, allocates only
//!   when it has to (non-ASCII case folding, numbers read as text).
//! - `text` (private): case-insensitive matching, strict number parsing and the e-mail check.
//! - `dates` (private): absolute and relative dates and calendar arithmetic.
//! - [`readable`]: the text form people type (`name contains "Mike" and interest vip`),
//!   parsed into the JSON wire form with errors that point at the line and column;
//!   [`print`]: the JSON form printed as that text, canonically (they round-trip).
//!
//! [`Condition`] is `Clone + Send + Sync`, so routing can share one parsed condition per
//! subscription across tasks.

mod dates;
mod error;
mod eval;
mod parse;
pub mod print;
pub mod readable;
mod text;
mod tree;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod readable_tests;
#[cfg(test)]
mod tests;

pub use error::ConditionError;
pub use print::to_text;
pub use readable::{parse_text, TextError};
pub use serde_json::{Map, Value};

/// A parsed and validated condition.
///
/// Build one with [`Condition::parse`]; evaluate it with [`Condition::evaluate`]. Parsing does
/// all the work that can fail or allocate, so evaluation never fails.
#[derive(Clone, Debug)]
pub struct Condition {
    root: tree::Node,
}

impl Condition {
    /// Parses and validates a condition in its JSON wire form.
    ///
    /// `Value::Null` (no condition) yields a condition that is always true. Any other value must
    /// be a group (`all` / `any` / `not`) or a leaf; the first mistake found is returned as a
    /// [`ConditionError`] whose path points at it.
    pub fn parse(json: &Value) -> Result<Condition, ConditionError> {
        parse::parse(json).map(|root| Condition { root })
    }

    /// Evaluates the condition against one event and the state of its profile.
    pub fn evaluate(&self, ctx: &EvalContext<'_>) -> bool {
        self.root.eval(ctx)
    }

    /// True when the condition was `null`, so routing may skip evaluation altogether.
    pub fn is_always_true(&self) -> bool {
        matches!(self.root, tree::Node::Always)
    }
}

impl Default for Condition {
    /// The condition that is always true, as parsed from `null`.
    fn default() -> Self {
        Condition {
            root: tree::Node::Always,
        }
    }
}

/// Everything a condition may read about one event, borrowed from the caller.
///
/// Routing builds one per event (cheap: it holds only references) and evaluates every candidate
/// subscription's condition against it.
#[derive(Clone, Copy, Debug)]
pub struct EvalContext<'a> {
    /// The profile's current fields (`field` leaves and their `other_field`).
    pub profile_fields: &'a Map<String, Value>,
    /// The subprofile's current fields, when the event concerns a subprofile
    /// (`subprofile_field` leaves); `None` makes every subprofile field missing.
    pub subprofile_fields: Option<&'a Map<String, Value>>,
    /// The event itself (`event` leaves): `type`, `trigger`, `action`, `ip`, `original`,
    /// `mailing`, ...
    pub event: &'a Map<String, Value>,
    /// The profile's current interests (`interest` leaves).
    pub interests: &'a [String],
    /// The event's tags (`tag` leaves), e.g. the mailing's tags on a tracking event.
    pub tags: &'a [String],
    /// Previous values of fields for profile updates (only changed fields present), `None`
    /// otherwise.
    pub previous_fields: Option<&'a Map<String, Value>>,
    /// The profile's interests before a profile update, `None` when not known.
    pub previous_interests: Option<&'a [String]>,
    /// True when the event is the creation of the profile (`new_profile`; makes `changed` true
    /// for every field and `gained` true for every current interest).
    pub is_new_profile: bool,
    /// The moment relative dates (`"-30d"`, `"now"`) are measured from.
    pub now: time::OffsetDateTime,
}
