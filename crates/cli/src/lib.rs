//! The library side of the `hookline` command: operations other tools and tests reuse.
//!
//! - [`replay`]: dead letters back onto `deliveries`.

pub mod replay;
