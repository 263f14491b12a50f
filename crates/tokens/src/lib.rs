//! `hookline-tokens`: the admin API's bearer tokens, `hlt_<id>_<secret>`, shared by the admin API
//! (which checks them) and the `hookline tokens` command (which creates, lists and revokes them
//! without an API: there is no token yet to call it with).
//!
//! - [`secret`]: [`generate`] a token and its record, [`split`] a presented token into id and
//!   secret, and [`secret_matches`] — only the SHA-256 of the secret is ever stored, and it is
//!   compared in constant time.
//! - [`topic`]: one-off writes and reads of the compacted `tokens` topic ([`write_token`],
//!   [`revoke_token`], [`read_tokens`]). The admin API follows the same topic live in its own
//!   tables.

pub mod secret;
pub mod topic;

pub use secret::{generate, secret_matches, split, NewToken};
pub use topic::{read_tokens, revoke_token, write_token, TokenTopicError};
