//! The command line's definition (clap) and the dispatch of each command to its module.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use hookline_config::CommonArgs;
use hookline_kafka::KafkaSettings;

use crate::{
    api, check, databases, demo, domains, keys, manual, operator, produce, receiver, replay,
    subscriptions, subscriptions_topic, tokens, topics, verify_signature,
};

/// `hookline`: the parsed command line.
#[derive(Debug, Parser)]
#[command(name = "hookline", version, about = "Hookline's command line")]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: Command,
}

/// How the API commands reach the admin API. Global: they may follow the subcommand.
#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// Base URL of the admin API.
    #[arg(
        long,
        env = "HOOKLINE_API_URL",
        default_value = "http://127.0.0.1:9400",
        global = true,
        help_heading = "API options"
    )]
    api_url: String,
    /// API token (`hlt_...`): an account's, or an operator's for `operator`. Never printed.
    #[arg(
        long,
        env = "HOOKLINE_TOKEN",
        hide_env_values = true,
        global = true,
        help_heading = "API options"
    )]
    token: Option<api::Secret>,
    /// Print JSON (the API's answer) instead of tables.
    #[arg(long, global = true, help_heading = "API options")]
    json: bool,
}

impl ApiArgs {
    pub(crate) fn client(&self) -> anyhow::Result<api::Api> {
        Ok(api::Api::new(&self.api_url, self.token.clone())?)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    // Through the admin API.
    /// The account's subscriptions, through the admin API.
    #[command(subcommand)]
    Subscriptions(subscriptions::SubscriptionsCmd),
    /// Send a test webhook to every subscription of the account now (exit 1 if any fails).
    Check,
    /// The account's domains (DNS TXT validation), through the admin API.
    #[command(subcommand)]
    Domains(domains::DomainsCmd),
    /// The settings of the account's databases (display name, e-mail field), through the
    /// admin API.
    #[command(subcommand)]
    Databases(databases::DatabasesCmd),
    /// Endpoints across accounts, through the admin API (operator token).
    #[command(subcommand)]
    Operator(operator::OperatorCmd),
    /// Signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Check a received request's signature, check by check (exit 0 valid, 1 invalid).
    VerifySignature(verify_signature::VerifyArgs),

    // Straight to Kafka (operators).
    /// Manage topics.
    #[command(subcommand)]
    Topics(topics::TopicsCmd),
    /// API tokens, written straight to the tokens topic (operators).
    #[command(subcommand)]
    Tokens(tokens::TokensCmd),
    /// Write or remove a subscription straight on the subscriptions topic (operators; the
    /// API's `subscriptions` commands validate URLs and verify ownership).
    #[command(subcommand)]
    SubscriptionsTopic(subscriptions_topic::SubscriptionsTopicCmd),
    /// The old name of `subscriptions-topic` (deprecated).
    #[command(subcommand, hide = true)]
    Subscription(subscriptions_topic::SubscriptionsTopicCmd),
    /// Produce JSON events, one per line (`-` for stdin), keyed `<database>:<profile>`.
    Produce(produce::ProduceArgs),
    /// Demo data.
    #[command(subcommand)]
    Demo(demo::DemoCmd),
    /// Send dead-lettered deliveries again through the normal path (`deliveries`).
    Replay(replay::ReplayArgs),

    // Local.
    /// Run a demo webhook receiver that verifies signatures and prints each POST.
    Receiver(receiver::ReceiverArgs),
    /// Print the shell completion script (bash, zsh, fish, elvish, powershell) on stdout, e.g.
    /// `hookline completions bash > /etc/bash_completion.d/hookline`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Manual pages: `hookline.1` on stdout, or one page per command written into `--dir`.
    Man {
        /// Write `hookline.1` and a page per subcommand (`hookline-subscriptions-create.1`, ...)
        /// into this folder, e.g. /usr/local/share/man/man1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Options of the Kafka commands, accepted after the subcommand as well
/// (`hookline tokens list --brokers ...`).
const KAFKA_OPTIONS: [&str; 3] = ["brokers", "topic_prefix", "kafka"];
/// Options of the API commands.
const API_OPTIONS: [&str; 2] = ["api_url", "token"];

/// The options each command's `--help` leaves out because the command does not use them.
/// (Every option is still accepted anywhere, so a script that sets them all keeps working.)
pub(crate) fn unused_options(command: &str) -> Vec<&'static str> {
    let mut unused = vec!["metrics_addr"];
    match command {
        "tokens" => unused.extend(API_OPTIONS),
        "topics" | "subscriptions-topic" | "subscription" | "produce" | "demo" | "replay" => {
            unused.extend(API_OPTIONS);
            unused.push("json");
        }
        "receiver" | "completions" | "man" => {
            unused.extend(API_OPTIONS);
            unused.extend(KAFKA_OPTIONS);
            unused.push("json");
        }
        _ => unused.extend(KAFKA_OPTIONS),
    }
    unused
}

/// The command line. Each command's `--help` lists the options it uses: the Kafka ones for
/// the Kafka commands, the API ones for the API commands.
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The command line's definition, as [`parse`] uses it (and completions and manual pages
/// describe it).
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for id in KAFKA_OPTIONS.into_iter().chain(["metrics_addr"]) {
        cmd = cmd.mut_arg(id, |a| a.global(true).help_heading("Kafka options"));
    }
    cmd = cmd.mut_arg("log_format", |a| a.global(true).help_heading("Logging"));
    cmd = cmd.mut_arg("metrics_addr", |a| a.hide(true));
    // Clap copies a global option into every subcommand that has none of that id when it
    // builds the command (and from there into theirs). A hidden copy put in first takes its
    // place: accepted and passed up as before, left out of that command's help.
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|sc| sc.get_name().to_owned())
        .collect();
    for name in names {
        let hidden: Vec<clap::Arg> = unused_options(&name)
            .into_iter()
            .filter_map(|id| cmd.get_arguments().find(|a| a.get_id() == id).cloned())
            .map(|a| a.hide(true))
            .collect();
        cmd = cmd.mut_subcommand(name, |sc| sc.args(hidden));
    }
    cmd
}

/// Runs the command: each arm hands it to the function of its module.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = KafkaSettings::from_common(&cli.common).with_client_id("hookline-cli");
    let topics = cli.common.topics();
    let json = cli.api.json;
    let ok = |()| ExitCode::SUCCESS;
    match cli.command {
        Command::Subscriptions(cmd) => subscriptions::run(&cli.api.client()?, json, cmd).await,
        Command::Check => check::run(&cli.api.client()?, json).await,
        Command::Domains(cmd) => domains::run(&cli.api.client()?, json, cmd).await,
        Command::Databases(cmd) => databases::run(&cli.api.client()?, json, cmd).await,
        Command::Operator(cmd) => operator::run(&cli.api.client()?, json, cmd).await,
        Command::Keys(cmd) => keys::run(&cli.api, json, cmd).await.map(ok),
        Command::VerifySignature(args) => verify_signature::run(args, &cli.api.api_url, json).await,
        Command::Topics(cmd) => topics::run(&settings, &topics, cmd).await.map(ok),
        Command::Tokens(cmd) => tokens::run(&settings, &topics, json, cmd).await,
        Command::SubscriptionsTopic(cmd) => subscriptions_topic::run(&settings, &topics, cmd)
            .await
            .map(ok),
        Command::Subscription(cmd) => {
            eprintln!(
                "warning: `hookline subscription` is deprecated and will be removed: use \
                 `hookline subscriptions-topic` (same arguments)"
            );
            subscriptions_topic::run(&settings, &topics, cmd)
                .await
                .map(ok)
        }
        Command::Produce(args) => produce::run(&settings, &topics, &args).await.map(ok),
        Command::Demo(cmd) => demo::run(&settings, &topics, cmd).await.map(ok),
        Command::Replay(args) => replay::run(&settings, &topics, args).await.map(ok),
        Command::Receiver(args) => receiver::run(args).await.map(ok),
        Command::Completions { shell } => {
            Ok(manual::completions(shell, command(), &mut std::io::stdout()).map(ok)?)
        }
        Command::Man { dir } => manual::man(command(), dir.as_deref()).map(ok),
    }
}
