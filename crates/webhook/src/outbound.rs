//! The outbound settings the sender and the admin API share, flattened into both command lines:
//! which non-public networks and which ports an outgoing call may reach, and the
//! `X-Copernica-ID` template of the `copernica` signing profile.

use hookline_model::AccountId;
use hookline_outbound::{NetworkGuard, PortPolicy};

/// `--allow-networks`, `--allow-ports` and `--copernica-id`, the same for every process that
/// sends a webhook (the sender's deliveries, the admin API's test webhooks and verification
/// fetches).
#[derive(Debug, Clone, clap::Args)]
pub struct OutboundArgs {
    /// CIDRs outbound calls (deliveries, test webhooks, verification fetches) may reach despite
    /// the private-address guard, e.g. 127.0.0.0/8.
    #[arg(long, env = "HOOKLINE_ALLOW_NETWORKS", default_value = "")]
    pub allow_networks: String,

    /// Destination ports outbound calls may use: ports and ranges, comma-separated.
    #[arg(long, env = "HOOKLINE_ALLOW_PORTS", default_value = hookline_outbound::guard::DEFAULT_ALLOWED_PORTS)]
    pub allow_ports: String,

    /// The X-Copernica-ID header value; `{account}` is replaced by the account id.
    #[arg(
        long,
        env = "HOOKLINE_COPERNICA_ID",
        default_value = "account_{account}"
    )]
    pub copernica_id: String,
}

/// A setting of [`OutboundArgs`] that cannot be used, and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum OutboundArgsError {
    #[error(transparent)]
    Networks(#[from] hookline_config::ConfigError),
    #[error("--allow-ports / HOOKLINE_ALLOW_PORTS: {0}")]
    Ports(String),
    #[error(
        "--copernica-id / HOOKLINE_COPERNICA_ID {0:?} must contain {{account}}: receivers tell \
         accounts apart by it (default account_{{account}})"
    )]
    CopernicaId(String),
}

/// [`OutboundArgs`], checked.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// The private-address guard with the allowed networks and ports.
    pub guard: NetworkGuard,
    /// Whether any non-public network is open (worth a warning at start).
    pub opens_networks: bool,
    pub copernica_id: CopernicaId,
}

impl OutboundArgs {
    /// Checks the settings: networks and ports that parse, and a template with `{account}`.
    pub fn check(&self) -> Result<Outbound, OutboundArgsError> {
        let allow = hookline_config::parse_networks(&self.allow_networks)?;
        let ports = PortPolicy::parse(&self.allow_ports)
            .map_err(|e| OutboundArgsError::Ports(e.to_string()))?;
        // Without the account in the signed X-Copernica-ID, a copernica-profile request signed
        // for one account would verify at another account's receiver.
        if !self.copernica_id.contains("{account}") {
            return Err(OutboundArgsError::CopernicaId(self.copernica_id.clone()));
        }
        Ok(Outbound {
            opens_networks: !allow.is_empty(),
            guard: NetworkGuard::new(allow).with_ports(ports),
            copernica_id: CopernicaId(self.copernica_id.clone()),
        })
    }
}

/// The `X-Copernica-ID` template, known to contain `{account}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopernicaId(String);

impl CopernicaId {
    /// The header value for `account`.
    pub fn for_account(&self, account: &AccountId) -> String {
        self.0.replace("{account}", account.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        outbound: OutboundArgs,
    }

    fn parse(args: &[&str]) -> OutboundArgs {
        Cli::parse_from(std::iter::once("test").chain(args.iter().copied())).outbound
    }

    #[test]
    fn the_template_needs_the_account_and_puts_it_in() {
        let ok = parse(&["--copernica-id", "acct-{account}"])
            .check()
            .unwrap();
        let account = AccountId::new("1001").unwrap();
        assert_eq!(ok.copernica_id.for_account(&account), "acct-1001");
        let e = parse(&["--copernica-id", "shared"]).check().unwrap_err();
        assert!(e.to_string().contains("must contain {account}"), "{e}");
    }

    #[test]
    fn bad_networks_and_ports_name_their_setting() {
        let e = parse(&["--allow-networks", "10.0.0.0/33"])
            .check()
            .unwrap_err();
        assert!(e.to_string().contains("--allow-networks"), "{e}");
        let e = parse(&["--allow-ports", "http"]).check().unwrap_err();
        assert!(e.to_string().contains("--allow-ports"), "{e}");
        let open = parse(&["--allow-networks", "127.0.0.0/8"]).check().unwrap();
        assert!(open.opens_networks);
    }
}
