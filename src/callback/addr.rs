//! Which IP addresses a client-carried callback must never reach unless listed explicitly.
//!
//! One pure function, [`is_restricted`], used twice: by the policy on IP-literal URLs and by the
//! guarded resolver on every address a host name resolves to at connect time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// True for every address that is not a public unicast address: loopback, private, link-local,
/// unspecified, CGNAT, multicast, broadcast, documentation, benchmarking and reserved ranges, and
/// IPv6 forms that embed such an IPv4 address.
///
/// | family | restricted ranges |
/// |---|---|
/// | IPv4 | 0/8 (unspecified, "this network"), 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.0.2/24, 192.88.99/24 (6to4 relay), 192.168/16, 198.18/15, 198.51.100/24, 203.0.113/24, 224/4 (multicast), 240/4 (reserved, broadcast) |
/// | IPv6 | everything outside 2000::/3 (::, ::1, IPv4-compatible ::a.b.c.d, 64:ff9b:1::/48, 100::/64, fc00::/7, fe80::/10, fec0::/10, ff00::/8, …), and inside it 2001::/23 (IETF assignments: Teredo, benchmarking, ORCHID), 2001:db8::/32, 3fff::/20 (documentation) |
/// | IPv6 embedding IPv4 | ::ffff:0:0/96 (mapped), 64:ff9b::/96 (NAT64), 2002::/16 (6to4): restricted when the embedded IPv4 address is |
pub fn is_restricted(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_restricted_v4(v4),
        IpAddr::V6(v6) => is_restricted_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn is_restricted_v4(ip: Ipv4Addr) -> bool {
    const RANGES: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),
        ([10, 0, 0, 0], 8),
        ([100, 64, 0, 0], 10),
        ([127, 0, 0, 0], 8),
        ([169, 254, 0, 0], 16),
        ([172, 16, 0, 0], 12),
        ([192, 0, 0, 0], 24),
        ([192, 0, 2, 0], 24),
        ([192, 88, 99, 0], 24),
        ([192, 168, 0, 0], 16),
        ([198, 18, 0, 0], 15),
        ([198, 51, 100, 0], 24),
        ([203, 0, 113, 0], 24),
        ([224, 0, 0, 0], 4),
        ([240, 0, 0, 0], 4),
    ];
    RANGES.iter().any(|&(net, prefix)| in_v4(ip, net, prefix))
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

fn is_restricted_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let low_v4 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    // ::ffff:a.b.c.d (mapped) and 64:ff9b::a.b.c.d (NAT64) reach a.b.c.d.
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96)
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    {
        return is_restricted_v4(low_v4);
    }
    // 2002:AABB:CCDD::/48 (6to4) reaches AA.BB.CC.DD.
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return is_restricted_v4(Ipv4Addr::from((bits >> 80) as u32));
    }
    // Only 2000::/3 holds global unicast; everything else (::, ::1, IPv4-compatible and
    // -translated forms, 64:ff9b:1::/48, 100::/64, fc00::/7, fe80::/10, fec0::/10, ff00::/8) is
    // reserved, local or multicast.
    if !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        return true;
    }
    const RANGES: &[([u16; 8], u32)] = &[
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), // IETF protocol assignments: Teredo, benchmarking, ORCHID
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation
    ];
    RANGES.iter().any(|&(net, prefix)| in_v6(ip, net, prefix))
}
