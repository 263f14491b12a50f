//! `hookline databases ...`: the settings of the account's databases (display name, e-mail
//! field) through the admin API.

use std::process::ExitCode;

use clap::Subcommand;
use http::Method;
use serde_json::{Map, Value};

use crate::api::{Api, DEFAULT_TIMEOUT};
use crate::table::{cell, print_fields, print_json, Table};

#[derive(Debug, Subcommand)]
pub enum DatabasesCmd {
    /// Set a database's settings; an option left out is cleared (the default applies).
    Set {
        /// The database id.
        database: String,
        /// The profile field that holds the e-mail address (default: the tracking stage's
        /// `--email-field`, usually `email`).
        #[arg(long)]
        email_field: Option<String>,
        /// A display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// The account's databases with settings.
    List,
    /// One database's settings.
    Get { database: String },
    /// Remove a database's settings: the defaults apply again.
    Delete { database: String },
}

pub async fn run(api: &Api, json_out: bool, cmd: DatabasesCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        DatabasesCmd::Set {
            database,
            email_field,
            name,
        } => set(api, json_out, &database, email_field, name).await?,
        DatabasesCmd::List => list(api, json_out).await?,
        DatabasesCmd::Get { database } => {
            let v = api.get(&["v1", "databases", &database], &[]).await?;
            show(json_out, &v);
        }
        DatabasesCmd::Delete { database } => {
            api.send(
                Method::DELETE,
                &["v1", "databases", &database],
                None,
                DEFAULT_TIMEOUT,
            )
            .await?;
            if !json_out {
                println!("database {database} uses the default settings again");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `databases set`.
async fn set(
    api: &Api,
    json_out: bool,
    database: &str,
    email_field: Option<String>,
    name: Option<String>,
) -> anyhow::Result<()> {
    let mut body = Map::new();
    if let Some(f) = email_field {
        body.insert("email_field".into(), Value::String(f));
    }
    if let Some(n) = name {
        body.insert("name".into(), Value::String(n));
    }
    let v = api
        .send(
            Method::PUT,
            &["v1", "databases", database],
            Some(&Value::Object(body)),
            DEFAULT_TIMEOUT,
        )
        .await?;
    show(json_out, &v);
    Ok(())
}

/// `databases list`.
async fn list(api: &Api, json_out: bool) -> anyhow::Result<()> {
    let v = api.get_all(&["v1", "databases"], &[], "databases").await?;
    if json_out {
        print_json(&v);
        return Ok(());
    }
    let mut t = Table::new(&["DATABASE", "NAME", "E-MAIL FIELD", "MODIFIED"]);
    for d in v["databases"].as_array().into_iter().flatten() {
        t.row(vec![
            cell(&d["database"]),
            cell(&d["name"]),
            email_field(&d["email_field"]),
            cell(&d["modified"]),
        ]);
    }
    if t.is_empty() {
        println!("no database has settings: every one uses the defaults");
    } else {
        t.print();
    }
    Ok(())
}

fn show(json_out: bool, v: &Value) {
    if json_out {
        print_json(v);
        return;
    }
    print_fields(&[
        ("database", cell(&v["database"])),
        ("name", cell(&v["name"])),
        ("e-mail field", email_field(&v["email_field"])),
        ("modified", cell(&v["modified"])),
    ]);
}

/// An unset field is the tracking stage's `--email-field`, which the API does not know.
fn email_field(v: &Value) -> String {
    if v.is_null() {
        "(default)".to_owned()
    } else {
        cell(v)
    }
}
