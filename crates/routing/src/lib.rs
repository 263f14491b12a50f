//! Routing: which subscriptions receive an event, and what they receive.
//!
//! - [`table`]: [`SubscriptionTable`], all subscriptions indexed by database (and collection),
//!   each with its condition compiled once when it enters the table.
//! - [`validate`]: the rules a subscription must pass to be accepted (admin API, CLI, and the
//!   table itself, which rejects what the API would have).
//! - `view` (feature `view`, on by default): `SubscriptionsView`, the `subscriptions` topic
//!   tailed into a live [`SubscriptionTable`] (every stage that routes or sends holds one).
//! - [`deliver`]: one [`hookline_model::Delivery`] per (event, subscription), body encoded in
//!   the subscription's format, id derived from event and subscription.
//!
//! Matching rules (also in `docs/routing.md`): only `active` subscriptions of the event's
//! database; a database-level subscription receives tracking events of the database and changes
//! of profiles (not subprofiles); a collection subscription receives changes of subprofiles in
//! that collection and tracking events of mailings sent to them; then event kind, action and
//! trigger filters; then the condition.

pub mod deliver;
pub mod table;
pub mod validate;
#[cfg(feature = "view")]
pub mod view;

pub use deliver::build_delivery;
pub use table::{CompiledSubscription, SubscriptionTable};
pub use validate::{validate_subscription, InvalidSubscription};
#[cfg(feature = "view")]
pub use view::SubscriptionsView;
