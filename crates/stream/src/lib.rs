//! The runtime shared by the join stages (`hookline-tracking`, `hookline-profiles`).
//!
//! - [`store`]: the local profile table: the co-partitioned `profiles` partitions this instance
//!   owns, restored from the compacted topic on assignment.
//! - [`subscriptions`]: the whole `subscriptions` table, tailed continuously.
//! - [`validate`]: input checks (size, UTF-8, JSON, schema, key) that decide quarantine.
//! - [`runner`]: the consume → process → produce → await acks → store offsets loop, with
//!   rebalance handling and graceful shutdown.

pub mod runner;
pub mod store;
pub mod subscriptions;
pub mod validate;

pub use runner::{run_stage, BatchContext, Processor, StageConfig, StageError};
pub use store::{ProfileStore, TableMode};
pub use subscriptions::SubscriptionsView;
