//! Verification by a DNS TXT record on a domain.
//!
//! Publishing a record in a zone proves control of the domain, and a domain's owner controls
//! every host below it, so one validated domain then covers all callbacks on it and its
//! subdomains (see [`crate::domain_covers`]). The record sits on its own label,
//! `_hookline-challenge.<domain>`, rather than at the apex, so it cannot clash with the
//! domain's SPF or other TXT records.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{ResolveError, TokioResolver};

use crate::domain::DomainName;
use crate::token::VerificationToken;

/// The label the challenge record is published under.
pub const CHALLENGE_LABEL: &str = "_hookline-challenge";
/// What the record's value starts with, before the token.
pub const CHALLENGE_PREFIX: &str = "hookline-verification=";

/// The TXT record a customer publishes to validate a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsChallenge {
    /// Owner name, e.g. `_hookline-challenge.example.com` (no trailing dot).
    pub name: String,
    /// Record value, e.g. `hookline-verification=3f9a…`.
    pub value: String,
}

/// `_hookline-challenge.<domain>` TXT `hookline-verification=<token>`.
pub fn dns_challenge(domain: &DomainName, token: &VerificationToken) -> DnsChallenge {
    DnsChallenge {
        name: format!("{CHALLENGE_LABEL}.{domain}"),
        value: format!("{CHALLENGE_PREFIX}{token}"),
    }
}

/// A DNS resolver for challenges: a given nameserver (UDP, with TCP for truncated answers)
/// or the system's configuration, always without a cache worth the name, so that a customer
/// who just published the record is not told about an answer from before.
#[derive(Clone)]
pub struct DnsResolver {
    inner: TokioResolver,
    timeout: Duration,
    source: Option<SocketAddr>,
}

/// The system's DNS configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading the system's DNS configuration (/etc/resolv.conf): {0}")]
pub struct ResolverConfigError(#[source] pub ResolveError);

impl DnsResolver {
    /// `nameserver`: ask only this server (on UDP and TCP), ignoring the system's
    /// configuration and hosts file; `None`: the system's resolvers. `timeout` bounds one
    /// whole validation, retries included.
    pub fn new(
        nameserver: Option<SocketAddr>,
        timeout: Duration,
    ) -> Result<Self, ResolverConfigError> {
        let provider = TokioConnectionProvider::default();
        let mut builder = match nameserver {
            Some(addr) => {
                let mut config = ResolverConfig::new();
                for protocol in [Protocol::Udp, Protocol::Tcp] {
                    let mut ns = NameServerConfig::new(addr, protocol);
                    // This server is the authority we were told to ask: its NXDOMAIN is the
                    // answer, not a reason to try elsewhere.
                    ns.trust_negative_responses = true;
                    config.add_name_server(ns);
                }
                TokioResolver::builder_with_config(config, provider)
            }
            None => TokioResolver::builder(provider).map_err(ResolverConfigError)?,
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        // Two tries per server in the budget: one lost UDP packet does not fail a validation.
        opts.timeout = (timeout / 2).max(Duration::from_millis(50));
        opts.attempts = 2;
        opts.cache_size = 0;
        opts.positive_max_ttl = Some(Duration::ZERO);
        opts.negative_max_ttl = Some(Duration::ZERO);
        // The challenge name is absolute: never try it with search domains appended.
        opts.ndots = 0;
        if nameserver.is_some() {
            opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        }
        Ok(Self {
            inner: builder.build(),
            timeout,
            source: nameserver,
        })
    }

    /// The bound on one validation.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The TXT values at `name` (each record's character-strings joined, as SPF and ACME
    /// read them), or why there are none.
    async fn txt(&self, name: &str) -> Result<Vec<String>, Lookup> {
        let fqdn = format!("{name}.");
        let lookup = tokio::time::timeout(self.timeout, self.inner.txt_lookup(fqdn))
            .await
            .map_err(|_| Lookup::Timeout)?;
        match lookup {
            Ok(txt) => Ok(txt
                .iter()
                .map(|r| {
                    r.txt_data()
                        .iter()
                        .map(|s| String::from_utf8_lossy(s))
                        .collect::<String>()
                })
                .collect()),
            Err(e) => Err(classify(e)),
        }
    }
}

impl fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsResolver")
            .field("nameserver", &self.source)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a lookup gave no TXT values.
enum Lookup {
    NxDomain,
    NoTxt,
    Timeout,
    Failed(ResolveError),
}

fn classify(e: ResolveError) -> Lookup {
    match e.proto().map(|p| p.kind()) {
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => {
            if *response_code == ResponseCode::NXDomain {
                Lookup::NxDomain
            } else {
                Lookup::NoTxt
            }
        }
        Some(ProtoErrorKind::Timeout) => Lookup::Timeout,
        _ => Lookup::Failed(e),
    }
}

/// Why a domain could not be validated. Each message names the TXT record looked up and
/// what was found instead, so the customer can compare it with their zone.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DnsValidationError {
    #[error("looked up TXT {name}: the name does not exist (NXDOMAIN); publish TXT {name} with the value {expected:?}")]
    NxDomain { name: String, expected: String },
    #[error("looked up TXT {name}: the name exists but has no TXT records; publish one with the value {expected:?}")]
    NoTxtRecords { name: String, expected: String },
    #[error(
        "looked up TXT {name}: found {}, but not {expected:?}",
        quote_all(found)
    )]
    WrongValues {
        name: String,
        expected: String,
        found: Vec<String>,
    },
    /// Retriable: the nameserver did not answer in time.
    #[error("looked up TXT {name}: no answer within {timeout:?}")]
    Timeout { name: String, timeout: Duration },
    /// Retriable: SERVFAIL, REFUSED, no reachable nameserver, …
    #[error("looked up TXT {name}: the lookup failed: {source}")]
    Lookup {
        name: String,
        #[source]
        source: ResolveError,
    },
}

impl DnsValidationError {
    /// Whether the same validation may succeed later without the customer changing anything
    /// (a slow or failing nameserver), as opposed to a record that is missing or wrong.
    pub fn is_retriable(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::Lookup { .. })
    }
}

fn quote_all(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    match quoted.len() {
        1 => format!("the value {}", quoted[0]),
        n => format!("{n} values {}", quoted.join(", ")),
    }
}

/// Looks up the [`dns_challenge`] record of `domain` and succeeds when one of its TXT values,
/// trimmed of surrounding whitespace, is the expected value. Other TXT values at the name
/// (challenges of other subscriptions) do not matter.
pub async fn validate_domain(
    resolver: &DnsResolver,
    domain: &DomainName,
    token: &VerificationToken,
) -> Result<(), DnsValidationError> {
    let DnsChallenge { name, value } = dns_challenge(domain, token);
    match resolver.txt(&name).await {
        Ok(found) if found.iter().any(|v| v.trim() == value) => Ok(()),
        Ok(found) if found.is_empty() => Err(DnsValidationError::NoTxtRecords {
            name,
            expected: value,
        }),
        Ok(found) => Err(DnsValidationError::WrongValues {
            name,
            expected: value,
            found,
        }),
        Err(Lookup::NxDomain) => Err(DnsValidationError::NxDomain {
            name,
            expected: value,
        }),
        Err(Lookup::NoTxt) => Err(DnsValidationError::NoTxtRecords {
            name,
            expected: value,
        }),
        Err(Lookup::Timeout) => Err(DnsValidationError::Timeout {
            name,
            timeout: resolver.timeout,
        }),
        Err(Lookup::Failed(source)) => Err(DnsValidationError::Lookup { name, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_a_txt_record_on_its_own_label() {
        let t = VerificationToken::parse("0123456789abcdef0123456789abcdef").unwrap();
        let c = dns_challenge(&DomainName::parse("Example.COM.").unwrap(), &t);
        assert_eq!(c.name, "_hookline-challenge.example.com");
        assert_eq!(
            c.value,
            "hookline-verification=0123456789abcdef0123456789abcdef"
        );
    }
}
