//! `hookline check`: a test webhook to every subscription of the account, through the admin
//! API.

use std::process::ExitCode;
use std::time::Duration;

use http::Method;

use crate::api::Api;
use crate::table::{cell, print_json, Table};

/// `hookline check`: a test webhook to every subscription of the account. Exits 1 when any
/// endpoint failed.
pub async fn run(api: &Api, json_out: bool) -> anyhow::Result<ExitCode> {
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
