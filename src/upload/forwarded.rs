//! The client's address behind trusted proxies (`trusted_proxies`; RFC 7239 `Forwarded`, and
//! the de-facto `X-Forwarded-For`): the `client_ip` of the first file info.
//!
//! Only a peer listed in `trusted_proxies` is believed. Its chain of addresses (`Forwarded`'s
//! `for=` when the request carries one, else `X-Forwarded-For`) is walked from the nearest hop
//! back: hops that are themselves trusted proxies are skipped, and the first address that is
//! not one is the client. A client can put anything at the far end of the chain, so nothing
//! beyond the first untrusted hop is read. An element that is no address (`unknown`, an
//! obfuscated `_name`, garbage) ends the walk: the last address known is used, the proxy that
//! reported it. A request from an untrusted peer keeps the peer's address, whatever it claims.

use std::net::IpAddr;

use crate::http::RequestHead;

/// One `trusted_proxies` entry: an address or a CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    /// `192.0.2.1`, `10.0.0.0/8`, `2001:db8::/32`.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, bits) = match text.trim().split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text.trim(), None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or CIDR block"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) => b
                .parse::<u8>()
                .ok()
                .filter(|&b| b <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0-{max}"))?,
        };
        Ok(Cidr { net, bits })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), self.bits),
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, as dual-stack sockets report IPv4 peers) as
/// the IPv4 address it is.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = (bits / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// The client's address for a request from `peer` with `head`.
pub fn client_ip(head: &RequestHead, peer: IpAddr, trusted: &[Cidr]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded: Vec<&[u8]> = head.values("forwarded").collect();
    let chain: Vec<Option<IpAddr>> = if !forwarded.is_empty() {
        forwarded.iter().flat_map(|v| forwarded_for(v)).collect()
    } else {
        head.values("x-forwarded-for")
            .flat_map(|v| v.split(|&b| b == b','))
            .map(|item| node_addr(trim(item)))
            .collect()
    };
    let mut client = peer;
    for hop in chain.into_iter().rev() {
        match hop {
            Some(ip) if is_trusted(ip) => client = ip,
            Some(ip) => return ip,
            None => return client,
        }
    }
    client
}

/// The `for=` of each element of one `Forwarded` field value (`None` where an element has a
/// `for` that is no address; elements without `for` name no hop).
fn forwarded_for(value: &[u8]) -> Vec<Option<IpAddr>> {
    let mut out = Vec::new();
    for element in split_unquoted(value, b',') {
        for pair in split_unquoted(element, b';') {
            let pair = trim(pair);
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if pair[..eq].eq_ignore_ascii_case(b"for") {
                out.push(node_addr(unquote(trim(&pair[eq + 1..]))));
            }
        }
    }
    out
}

/// Splits at `sep` outside double quotes.
fn split_unquoted(v: &[u8], sep: u8) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, &b) in v.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            _ if b == sep && !quoted => {
                out.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&v[start..]);
    out
}

fn trim(v: &[u8]) -> &[u8] {
    v.trim_ascii()
}

fn unquote(v: &[u8]) -> &[u8] {
    match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    }
}

/// A node (`192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`, `[2001:db8::1]:80`, or a bare IPv6
/// address as `X-Forwarded-For` writes it) as an address.
fn node_addr(v: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(v).ok()?;
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        return inside.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_head, Limits, RequestHead};

    fn head(raw: &[u8], limits: &Limits) -> RequestHead {
        parse_head(bytes::Bytes::from(raw.to_vec()), limits).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted() -> Vec<Cidr> {
        ["10.0.0.0/8", "2001:db8::/32", "192.0.2.9"]
            .iter()
            .map(|t| Cidr::parse(t).unwrap())
            .collect()
    }

    fn client(fields: &str, peer: &str) -> IpAddr {
        let text = format!("GET / HTTP/1.1\r\nHost: n\r\n{fields}\r\n");
        let h = head(text.as_bytes(), &Limits::default());
        client_ip(&h, ip(peer), &trusted())
    }

    #[test]
    fn cidr_blocks() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains(ip("10.1.255.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(c.contains(ip("::ffff:10.1.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("example.com").is_err());
        assert!(Cidr::parse("2001:db8::/33")
            .unwrap()
            .contains(ip("2001:db8:7fff::1")));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        assert_eq!(
            client("X-Forwarded-For: 203.0.113.5\r\n", "198.51.100.1"),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn x_forwarded_for_walked_from_the_nearest_hop() {
        // A client-supplied spoof at the far end is never reached.
        assert_eq!(
            client(
                "X-Forwarded-For: 1.1.1.1, 203.0.113.5, 10.0.0.2\r\n",
                "10.0.0.1"
            ),
            ip("203.0.113.5")
        );
        // Repeated fields are one list, in order.
        assert_eq!(
            client(
                "X-Forwarded-For: 203.0.113.5\r\nX-Forwarded-For: 10.0.0.3\r\n",
                "10.0.0.1"
            ),
            ip("203.0.113.5")
        );
        // Only trusted hops: the farthest of them.
        assert_eq!(
            client("X-Forwarded-For: 10.9.9.9\r\n", "10.0.0.1"),
            ip("10.9.9.9")
        );
        // No header: the proxy itself.
        assert_eq!(client("", "10.0.0.1"), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_is_parsed_per_rfc_7239() {
        assert_eq!(
            client(
                "Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43, for=\"[2001:db8:cafe::17]:4711\"\r\nX-Forwarded-For: 198.51.100.7\r\n",
                "10.0.0.1"
            ),
            ip("192.0.2.60")
        );
        assert_eq!(
            client("Forwarded: For=\"198.51.100.17:8080\"\r\n", "10.0.0.1"),
            ip("198.51.100.17")
        );
        // `unknown` or an obfuscated node ends the walk at the proxy that reported it.
        assert_eq!(
            client("Forwarded: for=unknown, for=10.0.0.7\r\n", "10.0.0.1"),
            ip("10.0.0.7")
        );
        assert_eq!(
            client("Forwarded: for=_hidden\r\n", "192.0.2.9"),
            ip("192.0.2.9")
        );
    }
}
