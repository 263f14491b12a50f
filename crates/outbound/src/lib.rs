//! Outbound HTTP for webhooks, ownership checks and test sends.
//!
//! - [`guard`]: the SSRF guard. Customer-supplied URLs must not reach loopback, private,
//!   link-local, multicast or cloud-metadata addresses unless the operator allows a network
//!   (`HOOKLINE_ALLOW_NETWORKS`). The guard runs on every address DNS returns, at connect time,
//!   so a name that resolves to a public address at validation and a private one later
//!   (DNS rebinding) is still refused. Destination ports are limited too (80, 443 and
//!   1024–65535 unless `HOOKLINE_ALLOW_PORTS` says otherwise).
//! - [`client`]: hyper + rustls with keep-alive pools, HTTP/2 where offered, connect and total
//!   timeouts, a bounded response read, no redirects, and errors classified for retry decisions.

pub mod client;
pub mod guard;

pub use client::{HttpClient, HttpOptions, Response, SendError, SendErrorKind};
pub use guard::{NetworkGuard, PortPolicy};
