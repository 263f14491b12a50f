//! `hookline tokens ...`: operator tooling that writes the `tokens` topic directly (there is no
//! token yet to call the API with). Only the SHA-256 of a token's secret is stored; the token
//! itself is printed once, by `create`, and by nothing else.

use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use hookline_config::Topics;
use hookline_kafka::KafkaSettings;
use hookline_model::{AccountId, TokenRecord, TokenRole};
use serde_json::json;

use crate::table::{print_json, Table};

#[derive(Debug, Subcommand)]
pub enum TokensCmd {
    /// Create an account token (or an operator token) and print it once.
    Create {
        /// The account the token acts for.
        #[arg(
            long,
            required_unless_present = "operator",
            conflicts_with = "operator"
        )]
        account: Option<String>,
        /// An operator token: reads every account's subscriptions under /v1/operator.
        #[arg(long)]
        operator: bool,
        /// A note for `tokens list`, e.g. who has the token.
        #[arg(long)]
        label: Option<String>,
    },
    /// The tokens on the topic: ids, roles, accounts, labels, creation times (never secrets).
    List,
    /// Revoke a token by its id (or the whole token); the API refuses it within a second.
    Revoke { id: String },
}

fn role_str(role: TokenRole) -> &'static str {
    match role {
        TokenRole::Account => "account",
        TokenRole::Operator => "operator",
    }
}

/// A token record without its hash, for output.
fn public_view(t: &TokenRecord) -> serde_json::Value {
    json!({
        "id": t.id,
        "role": role_str(t.role),
        "account": t.account.as_ref().map(|a| a.as_str()),
        "label": t.label,
        "created": t.created,
    })
}

pub async fn run(
    settings: &KafkaSettings,
    topics: &Topics,
    json_out: bool,
    cmd: TokensCmd,
) -> anyhow::Result<ExitCode> {
    match cmd {
        TokensCmd::Create {
            account,
            operator,
            label,
        } => create(settings, topics, json_out, account, operator, label).await?,
        TokensCmd::List => list(settings, topics, json_out).await?,
        TokensCmd::Revoke { id } => revoke(settings, topics, json_out, id).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `tokens create`: the token printed once, alone on stdout.
async fn create(
    settings: &KafkaSettings,
    topics: &Topics,
    json_out: bool,
    account: Option<String>,
    operator: bool,
    label: Option<String>,
) -> anyhow::Result<()> {
    let (role, account) = if operator {
        (TokenRole::Operator, None)
    } else {
        let raw = account.expect("clap requires --account without --operator");
        let id = AccountId::new(&raw).map_err(|e| anyhow::anyhow!("--account {raw:?}: {e}"))?;
        (TokenRole::Account, Some(id))
    };
    let new = hookline_tokens::generate(role, account, label);
    hookline_tokens::write_token(settings, topics, &new.record)
        .await
        .with_context(|| format!("writing the token to {}", topics.tokens))?;
    if json_out {
        let mut v = public_view(&new.record);
        v["token"] = json!(new.token);
        print_json(&v);
        return Ok(());
    }
    // The token alone on stdout, so `HOOKLINE_TOKEN=$(hookline tokens create ...)` works; the
    // explanation on stderr.
    println!("{}", new.token);
    let whom = match &new.record.account {
        Some(a) => format!(" for account {a}"),
        None => String::new(),
    };
    eprintln!(
        "created {} token {}{whom}. This is the only time it is shown: Hookline \
         stores only a hash of it, not the token in clear, so keep it now (lost: \
         revoke it and create another). The admin API accepts it within a second.",
        role_str(role),
        new.record.id
    );
    Ok(())
}

/// `tokens list`: never a secret or a hash.
async fn list(settings: &KafkaSettings, topics: &Topics, json_out: bool) -> anyhow::Result<()> {
    let tokens = hookline_tokens::read_tokens(settings, topics)
        .await
        .with_context(|| format!("reading {}", topics.tokens))?;
    if json_out {
        print_json(&json!({
            "tokens": tokens.iter().map(public_view).collect::<Vec<_>>()
        }));
    } else if tokens.is_empty() {
        println!("no tokens (create one with `hookline tokens create --account ID`)");
    } else {
        let mut t = Table::new(&["ID", "ROLE", "ACCOUNT", "LABEL", "CREATED"]);
        for r in &tokens {
            t.row(vec![
                r.id.clone(),
                role_str(r.role).to_owned(),
                r.account
                    .as_ref()
                    .map_or("-".to_owned(), |a| a.as_str().to_owned()),
                r.label.clone().unwrap_or_else(|| "-".to_owned()),
                r.created.clone(),
            ]);
        }
        t.print();
    }
    Ok(())
}

/// `tokens revoke ID`: by id, or by the whole token without ever echoing its secret.
async fn revoke(
    settings: &KafkaSettings,
    topics: &Topics,
    json_out: bool,
    id: String,
) -> anyhow::Result<()> {
    let id = hookline_tokens::split(&id)
        .map(|(id, _)| id.to_owned())
        .unwrap_or(id);
    let tokens = hookline_tokens::read_tokens(settings, topics)
        .await
        .with_context(|| format!("reading {}", topics.tokens))?;
    if !tokens.iter().any(|t| t.id == id) {
        anyhow::bail!(
            "no token with id {id:?} on {} (`hookline tokens list` shows the ids)",
            topics.tokens
        );
    }
    hookline_tokens::revoke_token(settings, topics, &id)
        .await
        .with_context(|| format!("writing the revocation to {}", topics.tokens))?;
    if json_out {
        print_json(&json!({ "revoked": id }));
    } else {
        println!("revoked token {id}");
    }
    Ok(())
}
