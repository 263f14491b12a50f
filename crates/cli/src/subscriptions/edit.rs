//! `hookline subscriptions create|update`: a subscription's fields from flags and files.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use http::Method;
use serde_json::{json, Map, Value};

use super::show::print_subscription;
use crate::api::{Api, DEFAULT_TIMEOUT};
use crate::table::{cell, print_json};

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
    // Files written for `hookline subscriptions-topic put` carry these; the API assigns them.
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

/// `subscriptions create`: flags over the file, the required fields checked here first.
pub(super) async fn create(
    api: &Api,
    json_out: bool,
    fields: &SubscriptionFields,
    file: Option<&Path>,
) -> anyhow::Result<()> {
    let mut body = match file {
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
    Ok(())
}

/// `subscriptions update`: only the fields given (and those `--clear`ed) change.
pub(super) async fn update(
    api: &Api,
    json_out: bool,
    id: &str,
    fields: &SubscriptionFields,
    file: Option<&Path>,
    clear: Vec<String>,
) -> anyhow::Result<()> {
    let mut body = match file {
        Some(f) => object_from_file(f)?,
        None => Map::new(),
    };
    let current = if fields.per_second.is_some() || fields.max_in_flight.is_some() {
        Some(api.get(&["v1", "subscriptions", id], &[]).await?)
    } else {
        None
    };
    fields.apply(&mut body, current.as_ref().map(|c| &c["limits"]))?;
    for field in clear {
        body.insert(field, Value::Null);
    }
    if body.is_empty() {
        anyhow::bail!("nothing to change: give the fields to change, e.g. --url or --events");
    }
    let v = api
        .send(
            Method::PATCH,
            &["v1", "subscriptions", id],
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
    Ok(())
}
