//! `hookline keys ...`: the published keys (through the admin API) and the signing key's
//! files (`dns-record`, `rotate`, `rotate-ed25519`: local, for operators).

use std::time::Duration;

use clap::Subcommand;
use hookline_config::SigningArgs;

use crate::api::{self, Api};
use crate::cli::ApiArgs;
use crate::table::{self, Table};

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// The published public keys (`GET /v1/keys` of the admin API; no token needed).
    List {
        /// Print each key's PEM too (for `verify-signature --public-key`).
        #[arg(long)]
        pem: bool,
    },
    /// Print the DNS TXT value (`v=DKIM1; k=rsa; p=...`) for the signing key.
    DnsRecord {
        #[command(flatten)]
        signing: SigningArgs,
    },
    /// Retire the current key (still published for --overlap) and generate a new one in its
    /// place. Restart the admin API first, then the senders.
    Rotate {
        #[command(flatten)]
        signing: SigningArgs,
        /// How long the retired key stays published.
        #[arg(long, default_value = "7d", value_parser = hookline_config::parse_duration)]
        overlap: Duration,
        /// keyId of the new key (default: its fingerprint).
        #[arg(long)]
        new_key_id: Option<String>,
    },
    /// Retire the Ed25519 master key of the standard-webhooks profile and generate a new one:
    /// until --overlap ends, requests carry a signature by each, and both account keys are
    /// published. Restart the admin API first, then the senders.
    RotateEd25519 {
        #[command(flatten)]
        signing: SigningArgs,
        /// How long the retired key keeps signing and stays published.
        #[arg(long, default_value = "7d", value_parser = hookline_config::parse_duration)]
        overlap: Duration,
    },
}

pub(crate) async fn run(api: &ApiArgs, json_out: bool, cmd: KeysCmd) -> anyhow::Result<()> {
    match cmd {
        KeysCmd::List { pem } => list(&api.client()?, json_out, pem).await,
        KeysCmd::DnsRecord { signing } => dns_record(&signing),
        KeysCmd::Rotate {
            signing,
            overlap,
            new_key_id,
        } => rotate(&signing, overlap, new_key_id.as_deref()),
        KeysCmd::RotateEd25519 { signing, overlap } => rotate_ed25519(&signing, overlap),
    }
}

/// `hookline keys list`: the public endpoint, no token.
async fn list(api: &Api, json_out: bool, pem: bool) -> anyhow::Result<()> {
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
    let mut t = Table::new(&["KEY ID", "ALGORITHM", "PUBLISHED UNTIL"]);
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

/// `hookline keys dns-record`: the key id and its TXT value.
fn dns_record(signing: &SigningArgs) -> anyhow::Result<()> {
    let key = hookline_signing::SigningKey::load_or_generate(
        &signing.signing_key,
        signing.signing_key_id.as_deref(),
    )?;
    println!("{}", key.key_id());
    println!("{}", key.dns_txt());
    Ok(())
}

/// `hookline keys rotate`: a new key in place, the retired one published for `overlap`.
fn rotate(
    signing: &SigningArgs,
    overlap: Duration,
    new_key_id: Option<&str>,
) -> anyhow::Result<()> {
    let new = hookline_signing::rotation::rotate(
        &signing.signing_key,
        signing.signing_key_id.as_deref(),
        new_key_id,
        overlap,
    )?;
    println!(
        "new signing key {} at {}",
        new.key_id(),
        signing.signing_key.display()
    );
    println!(
        "the retired key stays published for {} s; restart hookline-admin, then the senders",
        overlap.as_secs()
    );
    if new_key_id.is_some() {
        println!("set HOOKLINE_SIGNING_KEY_ID={} for both", new.key_id());
    }
    println!("DNS TXT for {}: {}", new.key_id(), new.dns_txt());
    Ok(())
}

/// `hookline keys rotate-ed25519`: a new Ed25519 master in place, the retired one signing beside
/// it and published for `overlap` (`hookline_signing::ed25519_rotation`).
fn rotate_ed25519(signing: &SigningArgs, overlap: Duration) -> anyhow::Result<()> {
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
    Ok(())
}
