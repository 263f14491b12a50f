//! Proving that a webhook callback URL belongs to the account that registered it, before
//! Hookline sends it anything (design: "Verification of callback URLs"). Without this, anyone
//! could point a subscription at someone else's server and make Hookline post to it.
//!
//! - [`token`]: the random [`VerificationToken`] a customer publishes.
//! - [`file`]: `<prefix>-<token>.txt` (prefix `hookline` unless configured) served in the
//!   callback script's directory or at the web root, fetched through Hookline's outbound client
//!   (SSRF guard, timeouts, bounded read; one redirect followed, only from http to https on the
//!   same host).
//! - [`dns`]: a TXT record `_hookline-challenge.<domain>` = `hookline-verification=<token>`
//!   that validates a whole domain, looked up with a configurable, cache-less resolver.
//! - [`domain`]: normalised [`DomainName`]s and [`domain_covers`], which decides whether a
//!   validated domain covers a callback's host (itself and subdomains, never IP literals).
//!
//! Every failure says what was fetched or looked up and what was found, so the message can be
//! shown to the customer as it is. Customer-facing documentation: `docs/verification.md`.

pub mod dns;
pub mod domain;
pub mod file;
pub mod token;

pub use dns::{
    dns_challenge, validate_domain, DnsChallenge, DnsResolver, DnsValidationError,
    ResolverConfigError,
};
pub use domain::{domain_covers, DomainName, DomainNameError};
pub use file::{
    file_locations, file_name, prefix_of, verify_file, FileAttempt, FileOutcome, FilePrefix,
    FileVerificationError, PrefixError, DEFAULT_PREFIX,
};
pub use token::{TokenError, VerificationToken};
