//! What an address in the policy may be, by what it is given for: one check over [`IpAddr`] for
//! both families, so IPv4 and IPv6 refuse the same kinds of nonsense with the same words.

use std::net::IpAddr;

/// What an address is given as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    /// An uplink's or the bond's own `Address=`.
    Address,
    /// A router: `Gateway=`.
    Gateway,
    /// A probe target (`Target=`, `ProbeTarget=`, `ARPIPTargets=`): probed through every uplink
    /// it belongs to, so it must be reachable through a router.
    Target,
}

/// Why `a` cannot serve as `what`, for a message (`Key=value: <why>`); `None` when it can.
pub(super) fn unfit(a: IpAddr, what: Use) -> Option<&'static str> {
    if a.is_unspecified() {
        return Some("the unspecified address names no host");
    }
    if a.is_loopback() {
        return Some("a loopback address never leaves this host");
    }
    if a.is_multicast() {
        return Some("a multicast address names no single host");
    }
    match a {
        IpAddr::V4(v4) if v4.is_broadcast() => return Some("the broadcast address names no single host"),
        // 0.0.0.0/8 is "this network" (RFC 1122): a source only, never a destination or a host.
        IpAddr::V4(v4) if v4.octets()[0] == 0 => return Some("an address in 0.0.0.0/8 (\"this network\") names no host"),
        // ::ffff:a.b.c.d is how an IPv6 socket shows an IPv4 peer; on the wire it is IPv4.
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => return Some("an IPv4-mapped IPv6 address is IPv4 on the wire; give the IPv4 address itself"),
        _ => {}
    }
    // A link-local target is never forwarded by a router and names no link; a gateway may be
    // link-local (IPv6 routers are known by theirs), and static link-local addresses are judged
    // by the uplink's own checks.
    if what == Use::Target && is_link_local(a) {
        return Some("a link-local address is never forwarded by a router; give a global address");
    }
    None
}

/// 169.254.0.0/16 and fe80::/10.
pub(super) fn is_link_local(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_families_refuse_the_same_kinds() {
        for (text, what, refused) in [
            ("127.0.0.1", Use::Gateway, true),
            ("::1", Use::Gateway, true),
            ("224.0.0.1", Use::Gateway, true),
            ("ff02::1", Use::Gateway, true),
            ("0.0.0.0", Use::Target, true),
            ("::", Use::Target, true),
            ("0.1.2.3", Use::Target, true),
            ("255.255.255.255", Use::Target, true),
            ("::ffff:192.0.2.1", Use::Target, true),
            ("::ffff:192.0.2.1", Use::Gateway, true),
            ("169.254.1.1", Use::Target, true),
            ("fe80::1", Use::Target, true),
            ("fe80::1", Use::Gateway, false),
            ("192.168.178.1", Use::Gateway, false),
            ("2001:db8::1", Use::Target, false),
            ("198.51.100.10", Use::Target, false),
        ] {
            let a: IpAddr = text.parse().unwrap();
            assert_eq!(unfit(a, what).is_some(), refused, "{text} as {what:?}: {:?}", unfit(a, what));
        }
    }
}
