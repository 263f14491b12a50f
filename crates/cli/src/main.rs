//! `hookline`: the command line.
//!
//! Through the admin API (`--api-url`, `--token`; see `docs/cli.md`):
//! - `subscriptions list|get|create|update|delete|pause|resume|verify|test|attempts|replay`,
//!   `check`, `domains add|list|get|validate|delete`, `keys list`, `operator ...`
//!   ([`subscriptions`], [`domains`]); the HTTP client is [`api`], the tables [`table`].
//! - `verify-signature`: checks a received request's signature, check by check
//!   ([`verify_signature`]).
//!
//! Straight to Kafka (operator tooling, `--brokers`, `--topic-prefix`):
//! - `tokens create|list|revoke`: API tokens on the `tokens` topic ([`tokens`]).
//! - `topics create`: create the design's topics.
//! - `subscription put FILE.json` / `subscription delete ID`: write the subscription table.
//! - `produce tracking|profile-changes FILE`: produce JSON events (one per line) with the
//!   contract's keys, the way any Kafka client would ([`kafka_tools`], with `put` and
//!   `demo seed`).
//! - `keys dns-record`: the DKIM-style TXT value for the signing key.
//! - `receiver`: a demo endpoint that verifies each signature against `GET /v1/keys` and
//!   prints what arrives.
//! - `demo seed`: a demo profile, subscription and events (new ids on every run).
//! - `replay`: send dead letters again through the normal path.
//!
//! `completions SHELL` and `man [--dir DIR]`: shell completions and manual pages ([`manual`]).
//!
//! Each command's `--help` lists the options it uses ([`unused_options`]). Unknown
//! `HOOKLINE_*` variables get a warning with the closest valid name, as in the stages.

mod api;
mod domains;
mod kafka_tools;
mod manual;
mod receiver;
mod subscriptions;
mod table;
mod tokens;
mod verify_signature;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use hookline_config::CommonArgs;
use hookline_kafka::producer::Acks;
use hookline_kafka::{KafkaSettings, Producer};
use serde_json::Value;

#[derive(Debug, Parser)]
#[command(name = "hookline", version, about = "Hookline's command line")]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    api: ApiArgs,
    #[command(subcommand)]
    command: Command,
}

/// How the API commands reach the admin API. Global: they may follow the subcommand.
#[derive(Debug, Args)]
struct ApiArgs {
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
    fn client(&self) -> anyhow::Result<api::Api> {
        Ok(api::Api::new(&self.api_url, self.token.clone())?)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage topics.
    #[command(subcommand)]
    Topics(TopicsCmd),
    /// The account's subscriptions, through the admin API.
    #[command(subcommand)]
    Subscriptions(subscriptions::SubscriptionsCmd),
    /// Send a test webhook to every subscription of the account now (exit 1 if any fails).
    Check,
    /// The account's domains (DNS TXT validation), through the admin API.
    #[command(subcommand)]
    Domains(domains::DomainsCmd),
    /// Check a received request's signature, check by check (exit 0 valid, 1 invalid).
    VerifySignature(verify_signature::VerifyArgs),
    /// API tokens, written straight to the tokens topic (operators).
    #[command(subcommand)]
    Tokens(tokens::TokensCmd),
    /// Endpoints across accounts, through the admin API (operator token).
    #[command(subcommand)]
    Operator(subscriptions::OperatorCmd),
    /// Write or remove a subscription straight on the subscriptions topic (operators; the
    /// API's `subscriptions` commands validate URLs and verify ownership).
    #[command(subcommand)]
    Subscription(SubscriptionCmd),
    /// Produce JSON events, one per line (`-` for stdin), keyed `<database>:<profile>`.
    Produce {
        /// `tracking` or `profile-changes`.
        #[arg(value_parser = ["tracking", "profile-changes"])]
        topic: String,
        file: PathBuf,
    },
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Run a demo webhook receiver that verifies signatures and prints each POST.
    Receiver(receiver::ReceiverArgs),
    /// Demo data.
    #[command(subcommand)]
    Demo(DemoCmd),
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
    /// Send dead-lettered deliveries again through the normal path (`deliveries`).
    Replay {
        /// Only this subscription's dead letters.
        #[arg(long)]
        subscription: Option<String>,
        /// Only those dead-lettered at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only those dead-lettered before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// List what would be replayed without producing anything.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TopicsCmd {
    /// Create every topic of the design that does not exist yet.
    Create {
        /// Partitions per topic (equal everywhere, so the join topics are co-partitioned).
        #[arg(long, env = "HOOKLINE_PARTITIONS", default_value_t = 6)]
        partitions: i32,
        #[arg(long, default_value_t = 1)]
        replication: i32,
    },
}

#[derive(Debug, Subcommand)]
enum SubscriptionCmd {
    /// Validate a subscription JSON file and write it.
    Put {
        file: PathBuf,
        /// Accept plain http:// URLs (local runs only).
        #[arg(long)]
        allow_http: bool,
    },
    /// Remove a subscription (writes a tombstone).
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
enum KeysCmd {
    /// The published public keys (`GET /v1/keys` of the admin API; no token needed).
    List {
        /// Print each key's PEM too (for `verify-signature --public-key`).
        #[arg(long)]
        pem: bool,
    },
    /// Print the DNS TXT value (`v=DKIM1; k=rsa; p=...`) for the signing key.
    DnsRecord {
        #[command(flatten)]
        signing: hookline_config::SigningArgs,
    },
    /// Retire the current key (still published for --overlap) and generate a new one in its
    /// place. Restart the admin API first, then the senders.
    Rotate {
        #[command(flatten)]
        signing: hookline_config::SigningArgs,
        /// How long the retired key stays published.
        #[arg(long, default_value = "7d")]
        overlap: String,
        /// keyId of the new key (default: its fingerprint).
        #[arg(long)]
        new_key_id: Option<String>,
    },
    /// Retire the Ed25519 master key of the standard-webhooks profile and generate a new one:
    /// until --overlap ends, requests carry a signature by each, and both account keys are
    /// published. Restart the admin API first, then the senders.
    RotateEd25519 {
        #[command(flatten)]
        signing: hookline_config::SigningArgs,
        /// How long the retired key keeps signing and stays published.
        #[arg(long, default_value = "7d")]
        overlap: String,
    },
}

#[derive(Debug, Subcommand)]
enum DemoCmd {
    /// Produce a demo subscription (to RECEIVER_URL), a profile and a few events.
    Seed {
        #[arg(long, default_value = "http://127.0.0.1:8080/webhook")]
        receiver_url: String,
    },
}

/// Options of the Kafka commands, accepted after the subcommand as well
/// (`hookline tokens list --brokers ...`).
const KAFKA_OPTIONS: [&str; 3] = ["brokers", "topic_prefix", "kafka"];
/// Options of the API commands.
const API_OPTIONS: [&str; 2] = ["api_url", "token"];

/// The options each command's `--help` leaves out because the command does not use them.
/// (Every option is still accepted anywhere, so a script that sets them all keeps working.)
fn unused_options(command: &str) -> Vec<&'static str> {
    let mut unused = vec!["metrics_addr"];
    match command {
        "tokens" => unused.extend(API_OPTIONS),
        "topics" | "subscription" | "produce" | "demo" | "replay" => {
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
fn parse_cli() -> Cli {
    let matches = cli_command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The command line's definition, as `parse_cli` uses it (and completions and manual pages
/// describe it).
fn cli_command() -> clap::Command {
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = parse_cli();
    hookline_telemetry::init_logging(&cli.common.log_format);
    // A mistyped `HOOKLINE_*` variable is ignored silently otherwise (the stages warn too).
    hookline_config::check_environment();
    match run(cli).await {
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

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = KafkaSettings::from_common(&cli.common).with_client_id("hookline-cli");
    let topics = cli.common.topics();
    let json_out = cli.api.json;
    match cli.command {
        Command::Subscriptions(cmd) => {
            return subscriptions::run(&cli.api.client()?, json_out, cmd).await
        }
        Command::Check => return subscriptions::check(&cli.api.client()?, json_out).await,
        Command::Domains(cmd) => return domains::run(&cli.api.client()?, json_out, cmd).await,
        Command::Operator(cmd) => {
            return subscriptions::operator(&cli.api.client()?, json_out, cmd).await
        }
        Command::VerifySignature(args) => {
            return verify_signature::run(args, &cli.api.api_url, json_out).await
        }
        Command::Tokens(cmd) => return tokens::run(&settings, &topics, json_out, cmd).await,
        Command::Keys(KeysCmd::List { pem }) => {
            keys_list(&cli.api.client()?, json_out, pem).await?
        }
        Command::Topics(TopicsCmd::Create {
            partitions,
            replication,
        }) => kafka_tools::topics_create(&settings, &topics, partitions, replication).await?,
        Command::Subscription(SubscriptionCmd::Put { file, allow_http }) => {
            kafka_tools::subscription_put(&settings, &topics, &file, allow_http).await?
        }
        Command::Subscription(SubscriptionCmd::Delete { id }) => {
            let producer = Producer::new(&settings)?;
            let mut acks = Acks::new();
            producer
                .send(&mut acks, &topics.subscriptions, Some(id.as_bytes()), None)
                .await?;
            acks.wait().await?;
            println!("subscription {id} removed");
        }
        Command::Produce { topic, file } => {
            kafka_tools::produce(&settings, &topics, &topic, &file).await?
        }
        Command::Keys(KeysCmd::Rotate {
            signing,
            overlap,
            new_key_id,
        }) => {
            let overlap = hookline_config::parse_duration(&overlap)
                .map_err(|e| anyhow::anyhow!("--overlap: {e}"))?;
            let new = hookline_signing::rotation::rotate(
                &signing.signing_key,
                signing.signing_key_id.as_deref(),
                new_key_id.as_deref(),
                overlap,
            )?;
            println!(
                "new signing key {} at {}",
                new.key_id(),
                signing.signing_key.display()
            );
            println!("the retired key stays published for {} s; restart hookline-admin, then the senders", overlap.as_secs());
            if new_key_id.is_some() {
                println!("set HOOKLINE_SIGNING_KEY_ID={} for both", new.key_id());
            }
            println!("DNS TXT for {}: {}", new.key_id(), new.dns_txt());
        }
        Command::Keys(KeysCmd::RotateEd25519 { signing, overlap }) => {
            let overlap = hookline_config::parse_duration(&overlap)
                .map_err(|e| anyhow::anyhow!("--overlap: {e}"))?;
            let master = hookline_signing::standard_webhooks::key_path(&signing.signing_key);
            let new = hookline_signing::ed25519_rotation::rotate(&master, overlap)?;
            println!(
                "new Ed25519 master key {} at {}",
                new.key_id(),
                master.display()
            );
            println!(
                "the retired key signs too and stays published for {} s (keyring {}); restart hookline-admin, then the senders",
                overlap.as_secs(),
                hookline_signing::ed25519_rotation::keyring_path(&master).display()
            );
            println!("receivers fetch their account's new key from GET /v1/keys?account=<id>");
        }
        Command::Keys(KeysCmd::DnsRecord { signing }) => {
            let key = hookline_signing::SigningKey::load_or_generate(
                &signing.signing_key,
                signing.signing_key_id.as_deref(),
            )?;
            println!("{}", key.key_id());
            println!("{}", key.dns_txt());
        }
        Command::Receiver(args) => receiver::run(args).await?,
        Command::Completions { shell } => {
            manual::completions(shell, cli_command(), &mut std::io::stdout())?;
        }
        Command::Man { dir: None } => manual::page(cli_command(), &mut std::io::stdout())?,
        Command::Man { dir: Some(dir) } => {
            let written = manual::pages(cli_command(), &dir)?;
            println!(
                "wrote {} manual pages into {}",
                written.len(),
                dir.display()
            );
        }
        Command::Demo(DemoCmd::Seed { receiver_url }) => {
            kafka_tools::demo_seed(&settings, &topics, &receiver_url).await?
        }
        Command::Replay {
            subscription,
            since,
            until,
            dry_run,
        } => {
            let parse = |flag: &str,
                         v: &Option<String>|
             -> anyhow::Result<Option<time::OffsetDateTime>> {
                v.as_deref()
                    .map(|s| {
                        hookline_model::timefmt::parse(s).ok_or_else(|| {
                            anyhow::anyhow!("{flag} {s:?}: expected an RFC 3339 time such as 2026-11-25T10:00:00Z")
                        })
                    })
                    .transpose()
            };
            let (since, until) = (parse("--since", &since)?, parse("--until", &until)?);
            let filter = hookline_replay::Filter {
                subscription,
                since,
                until,
            };
            let n = hookline_replay::replay_each(&settings, &topics, &filter, dry_run, |dead| {
                if dry_run {
                    println!(
                        "{}  {}  {}  attempts={}  last_error={}",
                        dead.dead_lettered_at,
                        dead.delivery.subscription_id,
                        dead.delivery.delivery_id,
                        dead.attempts,
                        dead.last_error.as_deref().unwrap_or("-")
                    );
                }
            })
            .await?;
            let verb = if dry_run { "would replay" } else { "replayed" };
            println!(
                "{verb} {n} dead-lettered deliver{}",
                if n == 1 { "y" } else { "ies" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `hookline keys list`: the public endpoint, no token.
async fn keys_list(api: &api::Api, json_out: bool, pem: bool) -> anyhow::Result<()> {
    let url = api.url(&["v1", "keys"], &[]);
    let keys = api
        .call(http::Method::GET, url, None, false, api::DEFAULT_TIMEOUT)
        .await?
        .body;
    if json_out {
        table::print_json(&keys);
        return Ok(());
    }
    let list = keys.as_array().cloned().unwrap_or_default();
    let mut t = table::Table::new(&["KEY ID", "ALGORITHM", "PUBLISHED UNTIL"]);
    for k in &list {
        t.row(vec![
            table::cell(&k["key_id"]),
            table::cell(&k["algorithm"]),
            k["expires_at"]
                .as_str()
                .map_or_else(|| "- (current)".to_owned(), |e| format!("{e} (retired)")),
        ]);
    }
    t.print();
    if pem {
        for k in &list {
            println!("\n# {}", table::cell(&k["key_id"]));
            print!("{}", k["public_key_pem"].as_str().unwrap_or_default());
        }
    }
    Ok(())
}
