//! The checks behind Hookline's fuzz targets, as a library: the `cargo fuzz` targets in `fuzz/`
//! and the stable test that replays their corpora (`tests/corpus.rs`, part of `make test`) call
//! the same functions, so what the fuzzer explored is re-checked on every test run.
//!
//! Each [`Target`] takes arbitrary bytes, runs them through the code a stage runs on a record
//! (or a receiver on a request), and checks what must hold whatever the input:
//!
//! - nothing panics (the fuzzer and the test both catch that);
//! - the input is either accepted or refused with a reason ([`Verdict`]);
//! - what is accepted comes out usable: every delivery built from it passes the schema the
//!   sender checks, every profile row reads back, every encoded body decodes. A broken rule is a
//!   [`Broken`] error, which the fuzz target turns into a crash.
//!
//! | target | input | code under test |
//! |--------|-------|-----------------|
//! | `tracking_event` | a `tracking` record value | `decode_input`, the join, routing, delivery building |
//! | `profile_change` | a `profile-changes` record value | `decode_input`, the join, row bounds and encoding, routing |
//! | `subscription` | a `subscriptions` record value | parsing, validation and condition compiling |
//! | `condition` | a condition, optionally with the data it is evaluated on | the condition language |
//! | `payload` | an event body (or any bytes) | the form, JSON and XML encoders and decoders |
//! | `signature_header` | a `Signature` / `webhook-signature` header value | the receivers' parsers and verifiers |

mod condition;
mod payload;
mod records;
mod sample;
mod signature;
mod subscription;

/// What the code under test made of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Taken in (decoded, parsed, encoded), with every check on the result passed.
    Accepted,
    /// Refused, with the reason the code gave (a quarantine reason, a validation message).
    Refused(String),
}

/// A rule that must hold for every input, and did not: a defect of the code under test.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Broken(pub String);

/// `Err(Broken)` with `message()` unless `holds`.
pub(crate) fn ensure(holds: bool, message: impl FnOnce() -> String) -> Result<(), Broken> {
    if holds {
        Ok(())
    } else {
        Err(Broken(message()))
    }
}

/// One fuzz target: its name is its directory in `fuzz/corpus/` and its binary in `fuzz/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    TrackingEvent,
    ProfileChange,
    Subscription,
    Condition,
    Payload,
    SignatureHeader,
}

impl Target {
    pub const ALL: [Target; 6] = [
        Target::TrackingEvent,
        Target::ProfileChange,
        Target::Subscription,
        Target::Condition,
        Target::Payload,
        Target::SignatureHeader,
    ];

    /// The target's name, as `cargo fuzz run` and the corpus directories spell it.
    pub fn name(self) -> &'static str {
        match self {
            Target::TrackingEvent => "tracking_event",
            Target::ProfileChange => "profile_change",
            Target::Subscription => "subscription",
            Target::Condition => "condition",
            Target::Payload => "payload",
            Target::SignatureHeader => "signature_header",
        }
    }

    /// Runs one input through the target's code and checks the result.
    pub fn run(self, data: &[u8]) -> Result<Verdict, Broken> {
        match self {
            Target::TrackingEvent => records::tracking_event(data),
            Target::ProfileChange => records::profile_change(data),
            Target::Subscription => subscription::check(data),
            Target::Condition => condition::check(data),
            Target::Payload => payload::check(data),
            Target::SignatureHeader => signature::check(data),
        }
    }

    /// [`Target::run`] for libFuzzer: a broken rule becomes a panic, which it reports as a crash
    /// and keeps the input of.
    pub fn fuzz(self, data: &[u8]) {
        if let Err(broken) = self.run(data) {
            panic!("{}: {broken}", self.name());
        }
    }
}
