//! Which IP addresses and ports outbound calls may reach.
//!
//! Addresses: everything the IANA special-purpose address registries mark as not globally
//! reachable (the unit test `every_not_globally_reachable_iana_block_is_refused` holds the
//! registries' entries), plus deprecated forms that can tunnel to any address (6to4, Teredo,
//! IPv4-compatible, site-local), and the cloud metadata addresses. NAT64's well-known prefix
//! (`64:ff9b::/96`) is judged by the IPv4 address it embeds.
//!
//! Ports: 80, 443 and 1024–65535 by default ([`PortPolicy`], `HOOKLINE_ALLOW_PORTS`), so a
//! callback URL cannot aim a POST at SSH, SMTP, a database's or another service's port below
//! 1024 on a public host.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

use ipnet::IpNet;

/// The destination ports outbound calls may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPolicy {
    ranges: Vec<RangeInclusive<u16>>,
}

/// The default of `HOOKLINE_ALLOW_PORTS`.
pub const DEFAULT_ALLOWED_PORTS: &str = "80,443,1024-65535";

/// Why an `HOOKLINE_ALLOW_PORTS` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HOOKLINE_ALLOW_PORTS / --allow-ports {value:?}: {reason}; expected a comma-separated list of ports and ranges, e.g. 80,443,1024-65535")]
pub struct PortsError {
    value: String,
    reason: String,
}

impl Default for PortPolicy {
    fn default() -> Self {
        Self {
            ranges: vec![80..=80, 443..=443, 1024..=65535],
        }
    }
}

impl PortPolicy {
    /// Parses `80,443,1024-65535`: ports and inclusive ranges, 1 to 65535.
    pub fn parse(value: &str) -> Result<Self, PortsError> {
        let err = |reason: String| PortsError {
            value: value.to_owned(),
            reason,
        };
        let port = |s: &str| -> Result<u16, PortsError> {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| err(format!("{:?} is not a port from 1 to 65535", s.trim())))
        };
        let mut ranges = Vec::new();
        for part in value.split(',').filter(|p| !p.trim().is_empty()) {
            let range = match part.split_once('-') {
                Some((a, b)) => port(a)?..=port(b)?,
                None => port(part)?..=port(part)?,
            };
            if range.is_empty() {
                return Err(err(format!("the range {:?} is empty", part.trim())));
            }
            ranges.push(range);
        }
        if ranges.is_empty() {
            return Err(err("no port is allowed".into()));
        }
        Ok(Self { ranges })
    }

    pub fn allows(&self, port: u16) -> bool {
        self.ranges.iter().any(|r| r.contains(&port))
    }
}

impl std::fmt::Display for PortPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .ranges
            .iter()
            .map(|r| match r.start() == r.end() {
                true => r.start().to_string(),
                false => format!("{}-{}", r.start(), r.end()),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Refuses non-public addresses unless an operator-configured network allows them, and ports
/// outside the [`PortPolicy`].
#[derive(Debug, Clone, Default)]
pub struct NetworkGuard {
    allow: Vec<IpNet>,
    ports: PortPolicy,
}

impl NetworkGuard {
    /// `allow`: networks reachable despite being non-public (e.g. `127.0.0.0/8` in tests). Ports:
    /// the default policy (80, 443, 1024–65535).
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self {
            allow,
            ports: PortPolicy::default(),
        }
    }

    /// The same guard with `ports` as the allowed destination ports.
    pub fn with_ports(mut self, ports: PortPolicy) -> Self {
        self.ports = ports;
        self
    }

    /// `Ok` when `ip` may be contacted, else why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), &'static str> {
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        match classify(ip) {
            None => Ok(()),
            Some(class) => Err(class),
        }
    }

    /// `Ok` when destination `port` is allowed, else a message saying how to allow it.
    pub fn check_port(&self, port: u16) -> Result<(), String> {
        if self.ports.allows(port) {
            return Ok(());
        }
        Err(format!(
            "refused by the network guard: port {port} is not an allowed destination port \
             (allowed: {}; change with HOOKLINE_ALLOW_PORTS)",
            self.ports
        ))
    }
}

/// The class of a non-public address, `None` for a public one.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if ip.is_private() {
        Some("private")
    } else if o == [169, 254, 169, 254] || o == [100, 100, 100, 200] {
        Some("cloud metadata")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_multicast() || ip.is_broadcast() || o[0] >= 240 {
        Some("multicast/broadcast/reserved")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared (carrier-grade NAT)")
    } else if (o[0] == 192 && o[1] == 0 && o[2] == 0) || (o[0] == 198 && (o[1] & 0xfe) == 18) {
        Some("reserved (IETF protocol assignments / benchmarking)")
    } else if ip.is_documentation() {
        Some("documentation")
    } else if o[0] == 192 && o[1] == 88 && o[2] == 99 {
        Some("reserved (deprecated 6to4 relay anycast)")
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        // The whole block is not globally reachable; name the embedded address's class when it
        // has one.
        return Some(classify_v4(v4).unwrap_or("IPv4-mapped"));
    }
    let s = ip.segments();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if s[0] == 0xfd00 && s[1] == 0x0ec2 && s[7] == 0x0254 && s[2..7].iter().all(|x| *x == 0)
    {
        Some("cloud metadata")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("private (unique local)")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if (s[0] & 0xffc0) == 0xfec0 {
        Some("site-local (deprecated)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] & 0xfff0) == 0x3ff0 {
        Some("documentation")
    } else if s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001 {
        Some("NAT64 (local use)")
    } else if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6].iter().all(|x| *x == 0) {
        // The well-known NAT64 prefix can embed any IPv4 address; judge the embedded one.
        classify_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ))
    } else if s[0] == 0x2001 && s[1] == 0 {
        Some("Teredo")
    } else if s[0] == 0x2001 && s[1] < 0x0200 {
        Some("reserved (IETF protocol assignments)")
    } else if s[0] == 0x2002 {
        Some("6to4")
    } else if s[0] == 0x0100 && s[1..4].iter().all(|x| *x == 0) {
        Some("discard-only")
    } else if s[0] == 0x5f00 {
        Some("reserved (SRv6 segment identifiers)")
    } else if s[0..6].iter().all(|x| *x == 0) {
        Some("IPv4-compatible (deprecated)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_non_public_class_is_refused_and_allow_lists_work() {
        let g = NetworkGuard::default();
        for (ip, class) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("224.0.0.1", "multicast/broadcast/reserved"),
            ("255.255.255.255", "multicast/broadcast/reserved"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fc00::1", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("fd00:ec2::254", "cloud metadata"),
            ("64:ff9b::a00:1", "private"),
            ("::ffff:8.8.8.8", "IPv4-mapped"),
            ("64:ff9b:1::808:808", "NAT64 (local use)"),
            ("2002:808:808::1", "6to4"),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
            ("fec0::1", "site-local (deprecated)"),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(g.check(ip), Err(class), "{ip}");
        }
        for ip in [
            "93.184.215.14",
            "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
            "8.8.8.8",
        ] {
            assert_eq!(g.check(ip.parse().unwrap()), Ok(()), "{ip}");
        }
        let allow = NetworkGuard::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ]);
        assert_eq!(allow.check("127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(allow.check("::1".parse().unwrap()), Ok(()));
        assert_eq!(allow.check("10.0.0.1".parse().unwrap()), Err("private"));
    }

    /// The IANA IPv4 Special-Purpose Address Registry, last updated 2020-09-04: every entry
    /// whose "Globally Reachable" is False (True: 192.0.0.9/32 and 192.0.0.10/32, refused anyway
    /// as part of 192.0.0.0/24, and 192.31.196.0/24, 192.52.193.0/24, 192.175.48.0/24, allowed;
    /// 192.88.99.0/24 is deprecated, N/A, and refused too).
    const IANA_IPV4_NOT_GLOBAL: &[(&str, &str)] = &[
        ("0.0.0.0/8", "\"This network\""),
        ("0.0.0.0/32", "\"This host on this network\""),
        ("10.0.0.0/8", "Private-Use"),
        ("100.64.0.0/10", "Shared Address Space"),
        ("127.0.0.0/8", "Loopback"),
        ("169.254.0.0/16", "Link Local"),
        ("172.16.0.0/12", "Private-Use"),
        ("192.0.0.0/24", "IETF Protocol Assignments"),
        ("192.0.0.0/29", "IPv4 Service Continuity Prefix"),
        ("192.0.0.8/32", "IPv4 dummy address"),
        ("192.0.0.170/32", "NAT64/DNS64 Discovery"),
        ("192.0.0.171/32", "NAT64/DNS64 Discovery"),
        ("192.0.2.0/24", "Documentation (TEST-NET-1)"),
        ("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)"),
        ("192.168.0.0/16", "Private-Use"),
        ("198.18.0.0/15", "Benchmarking"),
        ("198.51.100.0/24", "Documentation (TEST-NET-2)"),
        ("203.0.113.0/24", "Documentation (TEST-NET-3)"),
        ("240.0.0.0/4", "Reserved"),
        ("255.255.255.255/32", "Limited Broadcast"),
    ];

    /// The IANA IPv6 Special-Purpose Address Registry, last updated 2024-10-22: every entry
    /// whose "Globally Reachable" is False, and the N/A ones (Teredo, 6to4, the deprecated
    /// ORCHID), which are refused too. Globally reachable and allowed: 64:ff9b::/96 (judged by
    /// the embedded IPv4 address), 2001:1::1/128, 2001:1::2/128, 2001:1::3/128, 2001:3::/32,
    /// 2001:4:112::/48, 2001:20::/28, 2001:30::/28, 2620:4f:8000::/48 — except that the first
    /// seven lie inside 2001::/23, which is refused as a whole (no webhook lives there).
    const IANA_IPV6_NOT_GLOBAL: &[(&str, &str)] = &[
        ("::1/128", "Loopback Address"),
        ("::/128", "Unspecified Address"),
        ("::ffff:0:0/96", "IPv4-mapped Address"),
        ("64:ff9b:1::/48", "IPv4-IPv6 Translat."),
        ("100::/64", "Discard-Only Address Block"),
        ("2001::/23", "IETF Protocol Assignments"),
        ("2001::/32", "TEREDO"),
        ("2001:2::/48", "Benchmarking"),
        ("2001:10::/28", "Deprecated (previously ORCHID)"),
        ("2001:db8::/32", "Documentation"),
        ("2002::/16", "6to4"),
        ("3fff::/20", "Documentation"),
        ("5f00::/16", "Segment Routing (SRv6) SIDs"),
        ("fc00::/7", "Unique-Local"),
        ("fe80::/10", "Link-Local Unicast"),
    ];

    /// The first, middle and last address of `net`.
    fn samples(net: IpNet) -> [IpAddr; 3] {
        let (first, last) = (net.network(), net.broadcast());
        let middle = match (first, last) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                IpAddr::V4(Ipv4Addr::from(u32::from(a) / 2 + u32::from(b) / 2))
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                IpAddr::V6(Ipv6Addr::from(u128::from(a) / 2 + u128::from(b) / 2))
            }
            _ => unreachable!("one family per network"),
        };
        [first, middle, last]
    }

    #[test]
    fn every_not_globally_reachable_iana_block_is_refused() {
        let g = NetworkGuard::default();
        for (block, name) in IANA_IPV4_NOT_GLOBAL.iter().chain(IANA_IPV6_NOT_GLOBAL) {
            let net: IpNet = block.parse().unwrap();
            for ip in samples(net) {
                assert!(g.check(ip).is_err(), "{ip} of {block} ({name}) is refused");
            }
        }
        // And the blocks the registries call globally reachable are not, except those inside
        // 192.0.0.0/24 and 2001::/23, which are refused whole.
        for ip in [
            "192.31.196.1",
            "192.52.193.1",
            "192.175.48.1",
            "2620:4f:8000::1",
            "64:ff9b::808:808",
        ] {
            assert_eq!(g.check(ip.parse().unwrap()), Ok(()), "{ip}");
        }
    }

    #[test]
    fn ports_80_443_and_unprivileged_ones_are_allowed_by_default_and_configurable() {
        let g = NetworkGuard::default();
        for port in [80, 443, 1024, 8080, 65535] {
            assert_eq!(g.check_port(port), Ok(()), "{port}");
        }
        for port in [22, 25, 0, 1023, 389] {
            let e = g.check_port(port).unwrap_err();
            assert!(
                e.contains(&format!("port {port} ")) && e.contains("HOOKLINE_ALLOW_PORTS"),
                "{e}"
            );
        }
        let p = PortPolicy::parse("443, 8000-8999").unwrap();
        assert_eq!(p.to_string(), "443,8000-8999");
        let g = NetworkGuard::default().with_ports(p);
        assert!(g.check_port(443).is_ok() && g.check_port(8500).is_ok());
        assert!(g.check_port(80).is_err() && g.check_port(9000).is_err());
        assert_eq!(
            PortPolicy::parse(DEFAULT_ALLOWED_PORTS),
            Ok(PortPolicy::default())
        );
        for bad in ["", "http", "0", "70000", "9000-8000", "1-"] {
            let e = PortPolicy::parse(bad).unwrap_err().to_string();
            assert!(e.contains("HOOKLINE_ALLOW_PORTS"), "{bad:?}: {e}");
        }
    }
}
