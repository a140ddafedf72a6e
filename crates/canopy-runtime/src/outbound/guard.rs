//! Address classification and the filtering resolver.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{OutboundError, OutboundPolicy};

/// Why `ip` is not a public unicast address, or `None` when it is.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => refusal_v4(a),
        IpAddr::V6(a) => refusal_v6(a),
    }
}

fn refusal_v4(a: Ipv4Addr) -> Option<&'static str> {
    let [o0, o1, o2, _] = a.octets();
    let r = if a.is_unspecified() || o0 == 0 {
        "unspecified (0.0.0.0/8)"
    } else if a.is_loopback() {
        "loopback"
    } else if a.is_private() {
        "private (RFC 1918)"
    } else if a.is_link_local() {
        "link-local (169.254.0.0/16, cloud metadata)"
    } else if o0 == 100 && (o1 & 0xc0) == 64 {
        "carrier-grade NAT (100.64.0.0/10)"
    } else if a.is_broadcast() {
        "broadcast"
    } else if a.is_multicast() {
        "multicast"
    } else if a.is_documentation() {
        "documentation"
    } else if o0 == 192 && o1 == 0 && o2 == 0 {
        "IETF protocol assignment (192.0.0.0/24)"
    } else if o0 == 198 && (o1 & 0xfe) == 18 {
        "benchmarking (198.18.0.0/15)"
    } else if o0 >= 240 {
        "reserved (240.0.0.0/4)"
    } else {
        return None;
    };
    Some(r)
}

fn refusal_v6(a: Ipv6Addr) -> Option<&'static str> {
    // Forms that carry an IPv4 address are judged by that address.
    if let Some(v4) = a.to_ipv4_mapped() {
        return refusal_v4(v4);
    }
    let s = a.segments();
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // NAT64 (64:ff9b::/96).
        return refusal_v4(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        // 6to4 (2002::/16) carries the IPv4 address in the next 32 bits.
        return refusal_v4(embedded_v4(s[1], s[2]));
    }
    let r = if a.is_unspecified() {
        "unspecified"
    } else if a.is_loopback() {
        "loopback"
    } else if s[0..6] == [0, 0, 0, 0, 0, 0] {
        "IPv4-compatible (deprecated, ::/96)"
    } else if (s[0] & 0xfe00) == 0xfc00 {
        "unique local (fc00::/7)"
    } else if (s[0] & 0xffc0) == 0xfe80 {
        "link-local (fe80::/10)"
    } else if (s[0] & 0xffc0) == 0xfec0 {
        "site-local (fec0::/10)"
    } else if (s[0] & 0xff00) == 0xff00 {
        "multicast"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "documentation (2001:db8::/32)"
    } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
        "discard-only (100::/64)"
    } else {
        return None;
    };
    Some(r)
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// Resolves with the system resolver and drops the addresses the policy refuses; a name left
/// with none fails with [`OutboundError::Refused`] naming the first refused address.
pub(super) struct GuardedResolver {
    policy: OutboundPolicy,
}

impl GuardedResolver {
    pub(super) fn new(policy: OutboundPolicy) -> Self {
        GuardedResolver { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let trusted = self.policy.allow_private || self.policy.lists(&host, None);
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if trusted {
                return Ok(Box::new(found.into_iter()) as Addrs);
            }
            let mut first_refused = None;
            let kept: Vec<SocketAddr> = found
                .iter()
                .filter(|sa| match refusal(sa.ip()) {
                    None => true,
                    Some(reason) => {
                        first_refused.get_or_insert((sa.ip(), reason));
                        false
                    }
                })
                .copied()
                .collect();
            if kept.is_empty()
                && let Some((ip, reason)) = first_refused
            {
                let err = OutboundError::Refused {
                    host: host.clone(),
                    reason: format!("it resolves to {ip}, a {reason} address"),
                };
                return Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// The redirect policy's error past [`super::MAX_REDIRECTS`] hops.
#[derive(Debug)]
pub(super) struct TooManyRedirects;

impl std::fmt::Display for TooManyRedirects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} redirects", super::MAX_REDIRECTS)
    }
}

impl std::error::Error for TooManyRedirects {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn r(s: &str) -> Option<&'static str> {
        refusal(s.parse().unwrap())
    }

    #[test]
    fn classifies() {
        for bad in [
            "127.0.0.1",
            "10.1.1.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "198.51.100.7",
            "203.0.113.1",
            "198.18.0.1",
            "240.0.0.1",
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "::7f00:1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(r(bad).is_some(), "{bad} should be refused");
        }
        for good in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(r(good).is_none(), "{good} should be allowed");
        }
    }
}
