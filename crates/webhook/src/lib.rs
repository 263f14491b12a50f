//! `hookline-webhook`: one outgoing webhook, from a [`Delivery`](hookline_model::Delivery) to a
//! judged answer. The sender uses it for every attempt it schedules; the admin API uses it for
//! test webhooks. It holds no state and knows nothing of Kafka, retries or circuit breakers.
//!
//! - [`attempt`](mod@attempt): build the request (`Host`, `Content-Type`, the Hookline headers
//!   [`DELIVERY_ID_HEADER`], [`ATTEMPT_HEADER`], [`EVENT_HEADER`]), sign it by the
//!   subscription's profile (`copernica`: draft-cavage RSA; `standard-webhooks`: the account's
//!   Ed25519 key), POST it through the guarded [`HttpClient`](hookline_outbound::HttpClient),
//!   and return an [`AttemptReport`].
//! - [`judge`](mod@judge): what an answer means — [`Verdict::Delivered`] for 2xx,
//!   [`Verdict::Gone`] for 410, [`Verdict::Permanent`] when trying again cannot help,
//!   [`Verdict::Retry`] otherwise (with `Retry-After` from 429/503, read by
//!   [`parse_retry_after`]).

pub mod attempt;
pub mod judge;

pub use attempt::{
    attempt, traced_attempt, AttemptReport, ATTEMPT_HEADER, DELIVERY_ID_HEADER, EVENT_HEADER,
};
pub use judge::{judge, parse_retry_after, Verdict};
