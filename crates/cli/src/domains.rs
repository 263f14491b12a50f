//! `hookline domains ...`: DNS TXT validation of the account's domains through the admin API.

use std::process::ExitCode;

use clap::Subcommand;
use http::Method;
use serde_json::{json, Value};

use crate::api::{Api, DEFAULT_TIMEOUT};
use crate::table::{cell, print_fields, print_json, Table};

#[derive(Debug, Subcommand)]
pub enum DomainsCmd {
    /// Add a domain and show the DNS TXT record that proves it is the account's.
    Add { domain: String },
    /// The account's domains.
    List,
    /// One domain, with its TXT record.
    Get { domain: String },
    /// Look the TXT record up; on success, URLs on the domain need no verification file.
    Validate { domain: String },
    /// Remove a domain.
    Delete { domain: String },
}

pub async fn run(api: &Api, json_out: bool, cmd: DomainsCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        DomainsCmd::Add { domain } => add(api, json_out, &domain).await?,
        DomainsCmd::List => list(api, json_out).await?,
        DomainsCmd::Get { domain } => {
            let v = api.get(&["v1", "domains", &domain], &[]).await?;
            if json_out {
                print_json(&v);
            } else {
                print_domain(&v);
            }
        }
        DomainsCmd::Validate { domain } => validate(api, json_out, &domain).await?,
        DomainsCmd::Delete { domain } => {
            api.send(
                Method::DELETE,
                &["v1", "domains", &domain],
                None,
                DEFAULT_TIMEOUT,
            )
            .await?;
            if !json_out {
                println!("deleted domain {domain}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `domains add`: the domain, and the TXT record to publish.
async fn add(api: &Api, json_out: bool, domain: &str) -> anyhow::Result<()> {
    let v = api
        .send(
            Method::POST,
            &["v1", "domains"],
            Some(&json!({ "domain": domain })),
            DEFAULT_TIMEOUT,
        )
        .await?;
    if json_out {
        print_json(&v);
        return Ok(());
    }
    print_domain(&v);
    if v["status"] != "validated" {
        println!();
        println!(
            "Publish this DNS record, then run `hookline domains validate {}`:",
            cell(&v["domain"])
        );
        println!(
            "  {}  TXT  \"{}\"",
            cell(&v["record"]["name"]),
            cell(&v["record"]["value"])
        );
    }
    Ok(())
}

/// `domains list`.
async fn list(api: &Api, json_out: bool) -> anyhow::Result<()> {
    let v = api.get_all(&["v1", "domains"], &[], "domains").await?;
    if json_out {
        print_json(&v);
        return Ok(());
    }
    let mut t = Table::new(&[
        "DOMAIN",
        "STATUS",
        "CREATED",
        "VALIDATED",
        "TXT NAME",
        "TXT VALUE",
    ]);
    for d in v["domains"].as_array().into_iter().flatten() {
        t.row(vec![
            cell(&d["domain"]),
            cell(&d["status"]),
            cell(&d["created"]),
            cell(&d["validated"]),
            cell(&d["record"]["name"]),
            cell(&d["record"]["value"]),
        ]);
    }
    if t.is_empty() {
        println!("no domains");
    } else {
        t.print();
    }
    Ok(())
}

/// `domains validate`: the TXT lookup, and the subscriptions it activated.
async fn validate(api: &Api, json_out: bool, domain: &str) -> anyhow::Result<()> {
    let v = api
        .send(
            Method::POST,
            &["v1", "domains", domain, "validate"],
            None,
            DEFAULT_TIMEOUT,
        )
        .await?;
    if json_out {
        print_json(&v);
    } else {
        println!("domain {} is {}", cell(&v["domain"]), cell(&v["status"]));
        let activated = &v["activated"];
        if activated.as_array().is_some_and(|a| !a.is_empty()) {
            println!("activated subscriptions: {}", cell(activated));
        }
    }
    Ok(())
}

fn print_domain(v: &Value) {
    print_fields(&[
        ("domain", cell(&v["domain"])),
        ("status", cell(&v["status"])),
        ("created", cell(&v["created"])),
        ("validated", cell(&v["validated"])),
        (
            "TXT record",
            format!(
                "{} \"{}\"",
                cell(&v["record"]["name"]),
                cell(&v["record"]["value"])
            ),
        ),
    ]);
}
