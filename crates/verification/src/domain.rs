//! Domain names as customers type them, and which hosts a validated domain covers.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use idna::AsciiDenyList;
use serde::{Deserialize, Serialize};

/// Longest domain name in presentation form, without the trailing dot (RFC 1035 §2.3.4:
/// 255 octets on the wire).
const MAX_NAME: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;

/// A syntactically valid, normalised domain name: ASCII (internationalised names in their
/// `xn--` form), lower case, no trailing dot, at least two labels.
///
/// Normalising once here is what makes [`domain_covers`] a plain suffix comparison: `Example.COM.`,
/// `example.com` and `EXAMPLE.com` are one domain, and `bücher.example` is `xn--bcher-kva.example`
/// both when validated and when it appears in a callback URL.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

/// Why a string is not a usable domain name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainNameError {
    #[error("the domain name is empty")]
    Empty,
    #[error(
        "{0:?} is an IP address, not a domain name; only domain names can be validated by DNS"
    )]
    IpAddress(String),
    #[error("{input:?} is not a valid domain name: {reason}")]
    Invalid { input: String, reason: String },
    #[error("{0:?} is a top-level domain; validate a domain below it (e.g. example.{0})")]
    SingleLabel(String),
}

impl DomainName {
    /// Parses and normalises a domain name: surrounding whitespace and one trailing dot are
    /// ignored, case is folded, Unicode is converted to `xn--` (IDNA/UTS 46).
    pub fn parse(input: &str) -> Result<Self, DomainNameError> {
        let trimmed = input.trim();
        let name = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if name.is_empty() {
            return Err(DomainNameError::Empty);
        }
        let bare = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        if bare.parse::<IpAddr>().is_ok() {
            return Err(DomainNameError::IpAddress(trimmed.to_owned()));
        }
        let invalid = |reason: String| DomainNameError::Invalid {
            input: trimmed.to_owned(),
            reason,
        };
        // The URL deny list refuses what can never be in a host (spaces, '/', ':', '@', …) but
        // keeps '_', which real hostnames and TXT owner names do use.
        let ascii = idna::domain_to_ascii_cow(name.as_bytes(), AsciiDenyList::URL)
            .map_err(|_| invalid("it has characters a domain name cannot have".into()))?;
        if ascii.len() > MAX_NAME {
            return Err(invalid(format!(
                "it is {} characters long, more than the {MAX_NAME} DNS allows",
                ascii.len()
            )));
        }
        let labels: Vec<&str> = ascii.split('.').collect();
        for label in &labels {
            if label.is_empty() {
                return Err(invalid(
                    "it has an empty label (two dots in a row, or a leading dot)".into(),
                ));
            }
            if label.len() > MAX_LABEL {
                return Err(invalid(format!(
                    "the label {label:?} is {} characters long, more than the {MAX_LABEL} DNS allows",
                    label.len()
                )));
            }
            if let Some(c) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            {
                return Err(invalid(format!("{c:?} is not allowed in a domain name")));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid(format!(
                    "the label {label:?} starts or ends with a hyphen"
                )));
            }
        }
        let last = labels.last().expect("split yields at least one item");
        if last.chars().all(|c| c.is_ascii_digit()) {
            // URL parsers read such a host as an IPv4 address (`127.1`), so it is never a name.
            return Err(DomainNameError::IpAddress(trimmed.to_owned()));
        }
        if labels.len() < 2 {
            return Err(DomainNameError::SingleLabel(ascii.into_owned()));
        }
        Ok(Self(ascii.into_owned()))
    }

    /// The normalised ASCII form, e.g. `xn--bcher-kva.example`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName({})", self.0)
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DomainName {
    type Err = DomainNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for DomainName {
    type Error = DomainNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<DomainName> for String {
    fn from(d: DomainName) -> Self {
        d.0
    }
}

/// Whether a callback URL's host falls under a domain proven by DNS: the domain itself and
/// every name below it on a label boundary (`example.com` covers `a.b.example.com`, never
/// `badexample.com`). Case and a trailing dot do not matter; Unicode hosts are compared in
/// their `xn--` form. IP literals are never covered: a DNS record on a name proves nothing
/// about an address.
///
/// `host` is what [`url::Url::host_str`] gives (IPv6 literals in brackets are accepted too).
pub fn domain_covers(domain: &DomainName, host: &str) -> bool {
    let Ok(host) = DomainName::parse(host) else {
        // Not a name (an IP literal, or garbage): nothing to cover. Single-label hosts
        // (`localhost`) land here too, and no validated domain (two labels or more) covers them.
        return false;
    };
    let (host, domain) = (host.as_str(), domain.as_str());
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|sub| sub.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> DomainName {
        DomainName::parse(s).unwrap()
    }

    #[test]
    fn a_domain_covers_itself_and_subdomains_on_label_boundaries() {
        let example = d("example.com");
        assert!(domain_covers(&example, "example.com"));
        assert!(domain_covers(&example, "a.example.com"));
        assert!(domain_covers(&example, "a.b.example.com"));
        assert!(!domain_covers(&example, "badexample.com"));
        assert!(!domain_covers(&example, "example.com.evil.net"));
        assert!(!domain_covers(&example, "example.org"));
        assert!(!domain_covers(&example, "com"));
        assert!(
            !domain_covers(&d("a.example.com"), "example.com"),
            "not upwards"
        );
        assert!(
            !domain_covers(&d("a.example.com"), "b.example.com"),
            "not sideways"
        );
    }

    #[test]
    fn case_and_trailing_dots_do_not_matter() {
        assert!(domain_covers(&d("Example.COM."), "WWW.example.com"));
        assert!(domain_covers(&d("example.com"), "www.Example.Com."));
        assert_eq!(d(" Example.COM. ").as_str(), "example.com");
    }

    #[test]
    fn ip_literals_are_never_covered() {
        let example = d("example.com");
        for host in [
            "127.0.0.1",
            "[::1]",
            "::1",
            "93.184.215.14",
            "[2001:db8::1]",
            "127.1",
        ] {
            assert!(!domain_covers(&example, host), "{host}");
        }
        assert!(!domain_covers(&d("0.0.1.in-addr.arpa"), "1.0.0.127"));
    }

    #[test]
    fn internationalised_names_compare_in_their_ascii_form() {
        let bucher = d("Bücher.example");
        assert_eq!(bucher.as_str(), "xn--bcher-kva.example");
        assert!(domain_covers(&bucher, "shop.xn--bcher-kva.example"));
        assert!(domain_covers(&bucher, "shop.bücher.example"));
        let from_url = url::Url::parse("https://SHOP.Bücher.example/hook").unwrap();
        assert!(domain_covers(&bucher, from_url.host_str().unwrap()));
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        assert_eq!(DomainName::parse("  "), Err(DomainNameError::Empty));
        assert_eq!(DomainName::parse("."), Err(DomainNameError::Empty));
        assert!(matches!(
            DomainName::parse("192.0.2.1"),
            Err(DomainNameError::IpAddress(_))
        ));
        assert!(matches!(
            DomainName::parse("[::1]"),
            Err(DomainNameError::IpAddress(_))
        ));
        assert_eq!(
            DomainName::parse("com"),
            Err(DomainNameError::SingleLabel("com".into()))
        );
        for (input, reason) in [
            ("a..example.com", "empty label"),
            (".example.com", "empty label"),
            ("exa mple.com", "characters a domain name cannot have"),
            (
                "https://example.com/",
                "characters a domain name cannot have",
            ),
            ("-a.example.com", "hyphen"),
        ] {
            let err = DomainName::parse(input).unwrap_err().to_string();
            assert!(err.contains(reason), "{input}: {err}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        let err = DomainName::parse(&long_label).unwrap_err().to_string();
        assert!(err.contains("more than the 63"), "{err}");
        let long_name = format!("{}com", "abcdefghi.".repeat(26));
        let err = DomainName::parse(&long_name).unwrap_err().to_string();
        assert!(err.contains("more than the 253"), "{err}");
    }
}
