//! `hookline subscriptions ...`, `hookline check` and `hookline operator ...`: the account's
//! subscriptions through the admin API.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{json, Map, Value};

use crate::api::{Api, DEFAULT_TIMEOUT};
use crate::table::{cell, print_json, Table};

mod operator;
mod show;
mod verification;
pub use operator::{operator, OperatorCmd};
use show::{print_attempts, print_list, print_subscription, print_test, show};

/// Subscription statuses, for `--status`.
const STATUSES: [&str; 4] = ["unverified", "active", "paused", "disabled"];

#[derive(Debug, Subcommand)]
pub enum SubscriptionsCmd {
    /// List the account's subscriptions (optionally of one database, collection or status).
    List {
        #[arg(long)]
        database: Option<String>,
        #[arg(long)]
        collection: Option<String>,
        #[arg(long, value_parser = STATUSES)]
        status: Option<String>,
    },
    /// Show one subscription, with what to publish to verify its URL.
    Get {
        /// The subscription id (`hookline subscriptions list` shows them).
        id: String,
    },
    /// Create a subscription from flags, or from a JSON file (flags override the file).
    Create {
        #[command(flatten)]
        fields: SubscriptionFields,
        /// A JSON object with the API's fields (`database`, `url`, `events`, ...).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Change a subscription: only the fields given change (a new URL must be verified again).
    Update {
        /// The subscription id.
        id: String,
        #[command(flatten)]
        fields: SubscriptionFields,
        /// A JSON object with the fields to change (flags override the file).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Reset fields to "any": collection, actions, triggers, conditions (comma-separated).
        #[arg(long, value_delimiter = ',', value_parser = ["collection", "actions", "triggers", "conditions"])]
        clear: Vec<String>,
    },
    /// Delete a subscription.
    Delete {
        /// The subscription id (`hookline subscriptions list` shows them).
        id: String,
    },
    /// Stop sending to a subscription until it is resumed.
    Pause {
        /// The subscription id (`hookline subscriptions list` shows them).
        id: String,
    },
    /// Resume a paused subscription, or one Hookline disabled once the endpoint is back.
    Resume {
        /// The subscription id (`hookline subscriptions list` shows them).
        id: String,
    },
    /// Check the verification file (or a validated domain) and activate the subscription.
    Verify {
        /// The subscription id (`hookline subscriptions list` shows them).
        id: String,
    },
    /// Download the verification file (`<prefix>-<token>.txt`) to publish before `verify`.
    VerificationFile {
        /// The subscription id (`hookline subscriptions list` shows them).
        id: String,
        /// The folder to write it into.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Send one signed test webhook now and show what the endpoint answered.
    Test {
        /// The subscription id.
        id: String,
        /// The body: a JSON object is encoded in the subscription's format, anything else is
        /// sent as is. Default: the documented sample of the event type.
        #[arg(long, value_name = "FILE")]
        body_file: Option<PathBuf>,
        /// Send the body file as is even when it is a JSON object.
        #[arg(long, requires = "body_file")]
        raw: bool,
        /// The event type of the test (default: the subscription's first).
        #[arg(long)]
        event: Option<String>,
    },
    /// The most recent delivery attempts, newest first.
    Attempts {
        /// The subscription id.
        id: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Send the subscription's dead-lettered deliveries again.
    Replay {
        /// The subscription id.
        id: String,
        /// Only those dead-lettered at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only those dead-lettered before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Count what would be replayed without sending anything.
        #[arg(long)]
        dry_run: bool,
    },
}

/// The fields of a subscription that `create` and `update` take as flags.
#[derive(Debug, Args)]
pub struct SubscriptionFields {
    /// Database id.
    #[arg(long)]
    database: Option<String>,
    /// Collection id (only events of this collection's subprofiles).
    #[arg(long)]
    collection: Option<String>,
    /// Callback URL.
    #[arg(long)]
    url: Option<String>,
    /// Event types, comma-separated: click, open, bounce, failure, delivery, create, update,
    /// delete.
    #[arg(long, value_delimiter = ',', value_name = "EVENTS")]
    events: Option<Vec<String>>,
    /// Profile actions, comma-separated: create, update, delete, or all (the default).
    #[arg(long, value_delimiter = ',', value_name = "ACTIONS")]
    actions: Option<Vec<String>>,
    /// Triggers of profile changes, comma-separated (default: all).
    #[arg(long, value_delimiter = ',', value_name = "TRIGGERS")]
    triggers: Option<Vec<String>>,
    /// Body format.
    #[arg(long, value_parser = ["form", "json", "xml"])]
    format: Option<String>,
    /// A condition in its text form, e.g. 'name contains "Mike" and interest vip'
    /// (docs/conditions.md, "Text form").
    #[arg(long, value_name = "TEXT", conflicts_with = "condition_file")]
    condition: Option<String>,
    /// A condition in a file: JSON, or the text form; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    condition_file: Option<PathBuf>,
    /// Deliver one at a time, in order (`--ordered false` to switch it off).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    ordered: Option<bool>,
    /// Requests per second to this endpoint at most.
    #[arg(long)]
    per_second: Option<f64>,
    /// Requests in flight to this endpoint at most.
    #[arg(long)]
    max_in_flight: Option<u32>,
    /// Signature scheme.
    #[arg(long, value_parser = ["copernica", "standard-webhooks"])]
    signature: Option<String>,
}

impl SubscriptionFields {
    /// Sets the given flags on `body`. `limits` is the current limits object to complete
    /// (PATCH replaces `limits` whole).
    fn apply(&self, body: &mut Map<String, Value>, limits: Option<&Value>) -> anyhow::Result<()> {
        let mut set = |k: &str, v: Value| {
            body.insert(k.to_owned(), v);
        };
        if let Some(d) = &self.database {
            set("database", json!(d));
        }
        if let Some(c) = &self.collection {
            set("collection", json!(c));
        }
        if let Some(u) = &self.url {
            set("url", json!(u));
        }
        if let Some(e) = &self.events {
            set("events", json!(e));
        }
        if let Some(a) = &self.actions {
            set("actions", json!(a));
        }
        if let Some(t) = &self.triggers {
            set("triggers", json!(t));
        }
        if let Some(f) = &self.format {
            set("format", json!(f));
        }
        if let Some(text) = &self.condition {
            set("conditions_text", json!(text));
        }
        if let Some(path) = &self.condition_file {
            let text = read_text(path)?;
            // JSON if it is JSON (an object or null); the text form otherwise.
            match serde_json::from_str::<Value>(&text) {
                Ok(c @ (Value::Object(_) | Value::Null)) => set("conditions", c),
                _ => set("conditions_text", json!(text.trim())),
            }
        }
        if let Some(o) = self.ordered {
            set("ordered", json!(o));
        }
        if let Some(s) = &self.signature {
            set("signature", json!(s));
        }
        if self.per_second.is_some() || self.max_in_flight.is_some() {
            let mut l = limits
                .or(body.get("limits"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(p) = self.per_second {
                l.insert("per_second".into(), json!(p));
            }
            if let Some(m) = self.max_in_flight {
                l.insert("max_in_flight".into(), json!(m));
            }
            body.insert("limits".into(), Value::Object(l));
        }
        Ok(())
    }
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading stdin")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// A JSON object from `file`, without the fields the API sets itself.
fn object_from_file(path: &Path) -> anyhow::Result<Map<String, Value>> {
    let text = read_text(path)?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let Value::Object(mut map) = value else {
        anyhow::bail!("{} must hold a JSON object", path.display());
    };
    // Files written for `hookline subscription put` carry these; the API assigns them.
    let dropped: Vec<&str> = [
        "id",
        "account",
        "status",
        "verification",
        "created",
        "updated",
    ]
    .into_iter()
    .filter(|k| map.remove(*k).is_some())
    .collect();
    if !dropped.is_empty() {
        eprintln!(
            "note: ignoring {} from {}: the API sets them",
            dropped.join(", "),
            path.display()
        );
    }
    Ok(map)
}

/// Runs one `subscriptions` command.
pub async fn run(api: &Api, json_out: bool, cmd: SubscriptionsCmd) -> anyhow::Result<ExitCode> {
    use SubscriptionsCmd as C;
    match cmd {
        C::List {
            database,
            collection,
            status,
        } => {
            let query: Vec<(&str, String)> = [
                ("database", database),
                ("collection", collection),
                ("status", status),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            let v = api
                .get_all(&["v1", "subscriptions"], &query, "subscriptions")
                .await?;
            if json_out {
                print_json(&v);
            } else {
                print_list(&v["subscriptions"], false);
            }
        }
        C::Get { id } => {
            let v = api.get(&["v1", "subscriptions", &id], &[]).await?;
            show(json_out, &v);
        }
        C::Create { fields, file } => {
            let mut body = match &file {
                Some(f) => object_from_file(f)?,
                None => Map::new(),
            };
            fields.apply(&mut body, None)?;
            let missing: Vec<&str> = ["database", "url", "events"]
                .into_iter()
                .filter(|k| !body.contains_key(*k))
                .collect();
            if !missing.is_empty() {
                anyhow::bail!(
                    "a subscription needs {}: give {} (or --file sub.json)",
                    missing.join(", "),
                    missing
                        .iter()
                        .map(|m| format!("--{m}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let v = api
                .send(
                    Method::POST,
                    &["v1", "subscriptions"],
                    Some(&Value::Object(body)),
                    DEFAULT_TIMEOUT,
                )
                .await?;
            if json_out {
                print_json(&v);
            } else {
                println!(
                    "created subscription {} ({})",
                    cell(&v["id"]),
                    cell(&v["status"])
                );
                print_subscription(&v);
            }
        }
        C::Update {
            id,
            fields,
            file,
            clear,
        } => {
            let mut body = match &file {
                Some(f) => object_from_file(f)?,
                None => Map::new(),
            };
            let current = if fields.per_second.is_some() || fields.max_in_flight.is_some() {
                Some(api.get(&["v1", "subscriptions", &id], &[]).await?)
            } else {
                None
            };
            fields.apply(&mut body, current.as_ref().map(|c| &c["limits"]))?;
            for field in clear {
                body.insert(field, Value::Null);
            }
            if body.is_empty() {
                anyhow::bail!(
                    "nothing to change: give the fields to change, e.g. --url or --events"
                );
            }
            let v = api
                .send(
                    Method::PATCH,
                    &["v1", "subscriptions", &id],
                    Some(&Value::Object(body)),
                    DEFAULT_TIMEOUT,
                )
                .await?;
            if json_out {
                print_json(&v);
            } else {
                println!("updated subscription {id} ({})", cell(&v["status"]));
                print_subscription(&v);
            }
        }
        C::Delete { id } => {
            api.send(
                Method::DELETE,
                &["v1", "subscriptions", &id],
                None,
                DEFAULT_TIMEOUT,
            )
            .await?;
            if !json_out {
                println!("deleted subscription {id}");
            }
        }
        C::Pause { id } => return set_state(api, json_out, &id, "pause").await,
        C::Resume { id } => return set_state(api, json_out, &id, "resume").await,
        C::Verify { id } => {
            let v = api
                .send(
                    Method::POST,
                    &["v1", "subscriptions", &id, "verify"],
                    None,
                    DEFAULT_TIMEOUT,
                )
                .await?;
            if json_out {
                print_json(&v);
            } else {
                println!(
                    "subscription {id} is verified (by {}) and {}",
                    cell(&v["verification"]["verified_by"]),
                    cell(&v["status"])
                );
            }
        }
        C::VerificationFile { id, dir } => {
            let path = verification::download(api, &id, &dir).await?;
            if json_out {
                print_json(&json!({"file": path}));
            } else {
                let sub = api.get(&["v1", "subscriptions", &id], &[]).await?;
                println!("{}", verification::next_steps(&path, &sub));
            }
        }
        C::Test {
            id,
            body_file,
            raw,
            event,
        } => {
            let mut req = Map::new();
            if let Some(path) = &body_file {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let as_object = match serde_json::from_slice::<Value>(&bytes) {
                    Ok(v @ Value::Object(_)) if !raw => Some(v),
                    _ => None,
                };
                let body = match as_object {
                    Some(v) => v,
                    None => Value::String(
                        String::from_utf8(bytes)
                            .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", path.display()))?,
                    ),
                };
                req.insert("body".into(), body);
            }
            if let Some(e) = event {
                req.insert("event".into(), json!(e));
            }
            let v = api
                .send(
                    Method::POST,
                    &["v1", "subscriptions", &id, "test"],
                    Some(&Value::Object(req)),
                    // The API waits for the endpoint (its own request timeout) before answering.
                    Duration::from_secs(120),
                )
                .await?;
            let delivered = v["delivered"].as_bool() == Some(true);
            if json_out {
                print_json(&v);
            } else {
                print_test(&v);
            }
            return Ok(if delivered {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        C::Attempts { id, limit } => {
            let v = api
                .get(
                    &["v1", "subscriptions", &id, "attempts"],
                    &[("limit", limit.to_string())],
                )
                .await?;
            if json_out {
                print_json(&v);
            } else {
                print_attempts(&id, &v["attempts"]);
            }
        }
        C::Replay {
            id,
            since,
            until,
            dry_run,
        } => {
            let mut req = Map::new();
            if let Some(s) = since {
                req.insert("since".into(), json!(s));
            }
            if let Some(u) = until {
                req.insert("until".into(), json!(u));
            }
            req.insert("dry_run".into(), json!(dry_run));
            let v = api
                .send(
                    Method::POST,
                    &["v1", "subscriptions", &id, "replay"],
                    Some(&Value::Object(req)),
                    // The API reads the dead-letter topic for up to 150 s.
                    Duration::from_secs(180),
                )
                .await?;
            if json_out {
                print_json(&v);
            } else {
                let n = v["matched"].as_u64().unwrap_or(0);
                let what = if n == 1 {
                    "dead-lettered delivery"
                } else {
                    "dead-lettered deliveries"
                };
                let verb = if dry_run { "would replay" } else { "replayed" };
                println!("{verb} {n} {what} of {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `pause` / `resume`.
async fn set_state(api: &Api, json_out: bool, id: &str, action: &str) -> anyhow::Result<ExitCode> {
    let v = api
        .send(
            Method::POST,
            &["v1", "subscriptions", id, action],
            None,
            DEFAULT_TIMEOUT,
        )
        .await?;
    if json_out {
        print_json(&v);
    } else {
        println!("subscription {id} is {}", cell(&v["status"]));
    }
    Ok(ExitCode::SUCCESS)
}

/// `hookline check`: a test webhook to every subscription of the account. Exits 1 when any
/// endpoint failed.
pub async fn check(api: &Api, json_out: bool) -> anyhow::Result<ExitCode> {
    let v = api
        .send(
            Method::POST,
            &["v1", "check"],
            None,
            // Eight endpoints at a time, each up to the API's request timeout.
            Duration::from_secs(600),
        )
        .await?;
    let failed = v["failed"].as_u64().unwrap_or(0);
    if json_out {
        print_json(&v);
    } else {
        let mut t = Table::new(&["SUBSCRIPTION", "STATUS", "RESULT", "LATENCY", "URL"]);
        for line in v["subscriptions"].as_array().into_iter().flatten() {
            let r = &line["result"];
            let (result, latency) = if r.is_null() {
                (
                    format!("skipped: {}", cell(&line["skipped"])),
                    "-".to_owned(),
                )
            } else {
                let status = r["http_status"]
                    .as_u64()
                    .map(|s| format!("HTTP {s}"))
                    .unwrap_or_else(|| cell(&r["error_class"]));
                let verdict = if r["delivered"].as_bool() == Some(true) {
                    "delivered"
                } else {
                    "FAILED"
                };
                (
                    format!("{verdict} ({status})"),
                    format!("{:.0} ms", r["latency_ms"].as_f64().unwrap_or(0.0)),
                )
            };
            t.row(vec![
                cell(&line["subscription"]),
                cell(&line["status"]),
                result,
                latency,
                cell(&line["url"]),
            ]);
        }
        if t.is_empty() {
            println!("no subscriptions to check");
        } else {
            t.print();
        }
        println!(
            "checked {}: {} delivered, {} failed, {} skipped",
            cell(&v["checked"]),
            cell(&v["delivered"]),
            failed,
            cell(&v["skipped"])
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
