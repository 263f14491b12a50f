//! `hookline subscriptions ...`: the account's subscriptions through the admin API, one
//! function per subcommand; `create` and `update` in [`edit`], how they print in [`show`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use http::Method;
use serde_json::{json, Map, Value};

use crate::api::{Api, DEFAULT_TIMEOUT};
use crate::table::{cell, print_json};

mod edit;
pub(crate) mod show;
mod verification;
use edit::SubscriptionFields;
use show::{print_attempts, print_list, print_test, show};

/// Subscription statuses, for `--status`.
pub(crate) const STATUSES: [&str; 4] = ["unverified", "active", "paused", "disabled"];

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

/// Runs one `subscriptions` command.
pub async fn run(api: &Api, json_out: bool, cmd: SubscriptionsCmd) -> anyhow::Result<ExitCode> {
    use SubscriptionsCmd as C;
    match cmd {
        C::List {
            database,
            collection,
            status,
        } => list(api, json_out, database, collection, status).await?,
        C::Get { id } => show(
            json_out,
            &api.get(&["v1", "subscriptions", &id], &[]).await?,
        ),
        C::Create { fields, file } => edit::create(api, json_out, &fields, file.as_deref()).await?,
        C::Update {
            id,
            fields,
            file,
            clear,
        } => edit::update(api, json_out, &id, &fields, file.as_deref(), clear).await?,
        C::Delete { id } => delete(api, json_out, &id).await?,
        C::Pause { id } => set_state(api, json_out, &id, "pause").await?,
        C::Resume { id } => set_state(api, json_out, &id, "resume").await?,
        C::Verify { id } => verify(api, json_out, &id).await?,
        C::VerificationFile { id, dir } => verification_file(api, json_out, &id, &dir).await?,
        C::Test {
            id,
            body_file,
            raw,
            event,
        } => return test(api, json_out, &id, body_file.as_deref(), raw, event).await,
        C::Attempts { id, limit } => attempts(api, json_out, &id, limit).await?,
        C::Replay {
            id,
            since,
            until,
            dry_run,
        } => replay(api, json_out, &id, since, until, dry_run).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `subscriptions list`, optionally of one database, collection or status.
async fn list(
    api: &Api,
    json_out: bool,
    database: Option<String>,
    collection: Option<String>,
    status: Option<String>,
) -> anyhow::Result<()> {
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
    Ok(())
}

/// `subscriptions delete`.
async fn delete(api: &Api, json_out: bool, id: &str) -> anyhow::Result<()> {
    api.send(
        Method::DELETE,
        &["v1", "subscriptions", id],
        None,
        DEFAULT_TIMEOUT,
    )
    .await?;
    if !json_out {
        println!("deleted subscription {id}");
    }
    Ok(())
}

/// `subscriptions pause` / `resume`.
async fn set_state(api: &Api, json_out: bool, id: &str, action: &str) -> anyhow::Result<()> {
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
    Ok(())
}

/// `subscriptions verify`: the API checks the file (or a validated domain) and activates.
async fn verify(api: &Api, json_out: bool, id: &str) -> anyhow::Result<()> {
    let v = api
        .send(
            Method::POST,
            &["v1", "subscriptions", id, "verify"],
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
    Ok(())
}

/// `subscriptions verification-file`: the file to publish, and where.
async fn verification_file(api: &Api, json_out: bool, id: &str, dir: &Path) -> anyhow::Result<()> {
    let path = verification::download(api, id, dir).await?;
    if json_out {
        print_json(&json!({"file": path}));
    } else {
        let sub = api.get(&["v1", "subscriptions", id], &[]).await?;
        println!("{}", verification::next_steps(&path, &sub));
    }
    Ok(())
}

/// `subscriptions test`: one signed test webhook now; exit 1 unless the endpoint took it.
async fn test(
    api: &Api,
    json_out: bool,
    id: &str,
    body_file: Option<&Path>,
    raw: bool,
    event: Option<String>,
) -> anyhow::Result<ExitCode> {
    let mut req = Map::new();
    if let Some(path) = body_file {
        req.insert("body".into(), test_body(path, raw)?);
    }
    if let Some(e) = event {
        req.insert("event".into(), json!(e));
    }
    let v = api
        .send(
            Method::POST,
            &["v1", "subscriptions", id, "test"],
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
    Ok(if delivered {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A test's `--body-file`: a JSON object (encoded by the API in the subscription's format)
/// unless `raw`, else the text as is.
fn test_body(path: &Path, raw: bool) -> anyhow::Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) if !raw => Ok(v),
        _ => Ok(Value::String(String::from_utf8(bytes).map_err(|_| {
            anyhow::anyhow!("{} is not UTF-8 text", path.display())
        })?)),
    }
}

/// `subscriptions attempts`: the newest attempts first.
async fn attempts(api: &Api, json_out: bool, id: &str, limit: usize) -> anyhow::Result<()> {
    let v = api
        .get(
            &["v1", "subscriptions", id, "attempts"],
            &[("limit", limit.to_string())],
        )
        .await?;
    if json_out {
        print_json(&v);
    } else {
        print_attempts(id, &v["attempts"]);
    }
    Ok(())
}

/// `subscriptions replay`: the subscription's dead letters sent again, through the API.
async fn replay(
    api: &Api,
    json_out: bool,
    id: &str,
    since: Option<String>,
    until: Option<String>,
    dry_run: bool,
) -> anyhow::Result<()> {
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
            &["v1", "subscriptions", id, "replay"],
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
    Ok(())
}
