//! Hookline's domain model: the fixed JSON contracts of `docs/contracts.md` as Rust types.
//!
//! - [`ids`]: explicit newtypes for every domain id, so a database id can never be passed where a
//!   profile id is expected, and the `<database>:<profile>` key is built in one place.
//! - [`events`]: the input topics (`tracking`, `profile-changes`) and the `profiles` table value.
//! - [`subscription`]: the `subscriptions` table value and its enums (event kinds, actions, triggers).
//! - [`format`]: the payload format a subscription chooses (`hookline-payload` encodes it).
//! - [`enriched`]: the join's output, an event ready for routing (`hookline-join` builds it,
//!   `hookline-routing` reads it).
//! - [`delivery`]: what the routing stages hand to the sender, and what the sender reports back
//!   (`deliveries`, `retries`, `outcomes`, `dead-letter`).
//! - [`health`]: the `endpoint-health` table (circuit state, failing since).
//! - [`access`]: the admin API's tables: hashed bearer tokens and DNS-validated domains.
//! - [`database`]: the `databases` table: per-database settings (display name, e-mail field).
//! - [`quarantine`]: the record written for input that cannot be processed.
//! - [`timefmt`]: the few time formats the contracts use.
//! - [`trace`]: W3C `traceparent` checks, to carry a platform's trace into the webhook.
//!
//! Every type keeps unknown extra fields (`extra`) on input contracts so they pass through.

pub mod access;
pub mod database;
pub mod delivery;
pub mod enriched;
pub mod events;
pub mod format;
pub mod health;
pub mod ids;
pub mod quarantine;
pub mod subscription;
pub mod timefmt;
pub mod trace;

pub use access::{DomainRecord, DomainStatus, TokenRecord, TokenRole};
pub use database::DatabaseSettings;
pub use delivery::{
    DeadLetter, DeadReason, Delivery, ErrorClass, Outcome, OutcomeResult, RetryRecord,
    SourcePosition,
};
pub use enriched::Enriched;
pub use events::{
    ProfileAction, ProfileChange, ProfileState, SubprofileState, TrackingEvent, TrackingKind,
    Trigger,
};
pub use format::{Format, UnknownFormat};
pub use health::EndpointHealth;
pub use ids::*;
pub use quarantine::{QuarantineReason, QuarantineRecord, ReasonClass};
pub use subscription::{EventKind, Limits, SignatureProfile, Subscription, SubscriptionStatus};
