//! `hookline`: the command line, as a library; `src/main.rs` only calls [`main`].
//!
//! [`cli`] defines the command line and hands each command to its module, one module per
//! command group and one function per subcommand.
//!
//! Through the admin API (`--api-url`, `--token`; see `docs/cli.md`); the HTTP client is
//! [`api`], the tables [`table`]:
//! - `subscriptions list|get|create|update|delete|pause|resume|verify|test|attempts|replay`,
//!   `check` and `operator ...` ([`subscriptions`]);
//! - `domains add|list|get|validate|delete` ([`domains`]);
//! - `databases set|list|get|delete`: per-database display name and e-mail field ([`databases`]);
//! - `keys list`, and the local `keys dns-record|rotate` ([`keys`]);
//! - `verify-signature`: checks a received request's signature, check by check
//!   ([`verify_signature`]).
//!
//! Straight to Kafka (operator tooling, `--brokers`, `--topic-prefix`):
//! - `tokens create|list|revoke`: API tokens on the `tokens` topic ([`tokens`]);
//! - `topics create`: create the design's topics ([`topics`]);
//! - `subscriptions-topic put FILE.json|delete ID`: write the subscription table
//!   ([`subscriptions_topic`]; `subscription` is its deprecated old name);
//! - `produce tracking|profile-changes FILE`: JSON events (one per line) with the contract's
//!   keys, the way any Kafka client would ([`produce`]);
//! - `demo seed`: a demo profile, subscription and events, new ids on every run ([`demo`]);
//! - `replay`: send dead letters again through the normal path ([`replay`]).
//!
//! Local: `receiver`, a demo endpoint that verifies each signature against `GET /v1/keys`
//! and prints what arrives ([`receiver`]); `completions SHELL` and `man [--dir DIR]` ([`manual`]).
//!
//! Each command's `--help` lists the options it uses ([`cli::unused_options`]). Unknown
//! `HOOKLINE_*` variables get a warning with the closest valid name, as in the stages.

mod api;
mod check;
pub mod cli;
mod databases;
mod demo;
mod domains;
mod keys;
mod manual;
mod operator;
mod produce;
mod receiver;
mod replay;
mod subscriptions;
mod subscriptions_topic;
mod table;
mod tokens;
mod topics;
mod verify_signature;

use std::process::ExitCode;

use serde_json::Value;

/// The whole command: parse the command line, set up logging, run, report an error.
pub async fn main() -> ExitCode {
    let cli = cli::parse();
    hookline_telemetry::init_logging(&cli.common.log_format);
    // A mistyped `HOOKLINE_*` variable is ignored silently otherwise (the stages warn too).
    hookline_config::check_environment();
    match cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            print_error(&e);
            ExitCode::FAILURE
        }
    }
}

/// `error: <message> (code <code>, field <field>)` and the API's details, on stderr.
fn print_error(e: &anyhow::Error) {
    match e.downcast_ref::<api::ApiError>() {
        Some(api::ApiError::Api(body)) => {
            eprintln!("error: {e}");
            if let Some(Value::Object(details)) = &body.details {
                for (k, v) in details {
                    // One level of nesting is flattened (`record.name: ...`).
                    match v {
                        Value::Object(inner) => {
                            for (ik, iv) in inner {
                                eprintln!("  {k}.{ik}: {}", detail(iv));
                            }
                        }
                        other => eprintln!("  {k}: {}", detail(other)),
                    }
                }
            }
        }
        _ => eprintln!("error: {e:#}"),
    }
}

/// A detail value on one line: strings bare, lists joined by commas.
fn detail(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(detail).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}
