//! The join, as pure functions (no I/O, so every rule is unit-tested).
//!
//! - [`tracking`]: a tracking event + the profile's state → the webhook body in Copernica's field
//!   names, plus the facts routing and conditions read.
//! - [`profile`]: a profile change + the state before it → the new table state, the webhook body
//!   (with previous values of changed fields for updates) and the facts.
//!
//! - [`account`]: no join crosses accounts: a record of one account is refused the stored row of
//!   another ([`tracking::join`], [`profile::join`]); the stages quarantine it.
//! - [`bound`]: a profile's table row keeps a bounded number of subprofiles and must fit in one
//!   record; a row that cannot is refused (`too-large`).
//!
//! Policy for unknown profiles (documented in `docs/architecture.md`, "The join"): a tracking event whose profile is
//! not in the table is delivered with what the event itself carries, `fields` and `interests`
//! empty and `"profile_known": false`, rather than held back: Copernica's customers use clicks
//! and bounces for time-critical actions, and a late webhook is worse than a thinner one.

pub mod account;
pub mod bound;
pub mod profile;
pub mod tracking;

// The join's output lives in the model (`hookline_model::Enriched`), so routing reads it
// without depending on the join.
use hookline_model::Enriched;

/// `YYYY-MM-DD HH:MM:SS` and Unix seconds of an RFC 3339 (or Copernica-style) timestamp; the
/// input string and 0 when it cannot be parsed (the schema check normally prevents that).
pub(crate) fn times(ts: &str) -> (String, i64) {
    match hookline_model::timefmt::parse(ts) {
        Some(t) => (hookline_model::timefmt::copernica(t), t.unix_timestamp()),
        None => (ts.to_owned(), 0),
    }
}
