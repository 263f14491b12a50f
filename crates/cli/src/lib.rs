//! The library side of the `hookline` command: operations other tools and tests reuse.
//!
//! - [`replay`]: dead letters back onto `deliveries` (the `hookline-replay` crate, re-exported
//!   under its old path).

pub use hookline_replay as replay;
