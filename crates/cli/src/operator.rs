//! `hookline operator ...`: every account's subscriptions and the admin API's metrics, for
//! operator tokens.

use std::process::ExitCode;

use clap::Subcommand;
use http::Method;

use crate::api::{Api, DEFAULT_TIMEOUT};
use crate::subscriptions::{show::print_list, STATUSES};
use crate::table::print_json;

#[derive(Debug, Subcommand)]
pub enum OperatorCmd {
    /// Every account's subscriptions (needs an operator token).
    Subscriptions {
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        database: Option<String>,
        #[arg(long, value_parser = STATUSES)]
        status: Option<String>,
    },
    /// The admin API's Prometheus metrics (needs an operator token).
    Metrics,
}

pub async fn run(api: &Api, json_out: bool, cmd: OperatorCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        OperatorCmd::Subscriptions {
            account,
            database,
            status,
        } => {
            let query: Vec<(&str, String)> = [
                ("account", account),
                ("database", database),
                ("status", status),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
            let v = api
                .get_all(
                    &["v1", "operator", "subscriptions"],
                    &query,
                    "subscriptions",
                )
                .await?;
            if json_out {
                print_json(&v);
            } else {
                print_list(&v["subscriptions"], true);
            }
        }
        OperatorCmd::Metrics => {
            let url = api.url(&["v1", "operator", "metrics"], &[]);
            let answer = api
                .call(Method::GET, url, None, true, DEFAULT_TIMEOUT)
                .await?;
            print!("{}", String::from_utf8_lossy(&answer.raw));
        }
    }
    Ok(ExitCode::SUCCESS)
}
