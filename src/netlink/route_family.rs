//! What IPv4 and IPv6 routes differ in at the netlink edge: the address family, how an address
//! attribute reads, how a message gets its (typed) addresses, which kernel routes a listing
//! keeps, how an error names a route. Everything else about routes, listing, reading a message
//! and building one, is one path for both families in the sibling `routes` module.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{RouteAddress, RouteType};
use rtnetlink::RouteMessageBuilder;

use crate::plan::{self, Prefix, Route};

/// A family of routes the kernel reports and multihome installs.
pub trait RouteFamily: Prefix {
    const ADDRESS_FAMILY: AddressFamily;
    /// For error messages: "IPv4", "IPv6".
    const NAME: &'static str;
    /// An address attribute's address, if it is of this family.
    fn address(a: &RouteAddress) -> Option<Self::Addr>;
    /// Whether a listing reports a route of this type.
    fn listed(kind: RouteType) -> bool;
    /// A message to `destination`. rtnetlink types the address setters by family, hence
    /// these three.
    fn to(destination: Self) -> RouteMessageBuilder<Self::Addr>;
    fn via(b: RouteMessageBuilder<Self::Addr>, gateway: Self::Addr) -> RouteMessageBuilder<Self::Addr>;
    fn from_source(b: RouteMessageBuilder<Self::Addr>, source: Self::Addr) -> RouteMessageBuilder<Self::Addr>;
    /// `route` on `ifindex`, as an error names it.
    fn describe(route: &Route<Self>, ifindex: u32) -> String;
}

impl RouteFamily for Ipv4Net {
    const ADDRESS_FAMILY: AddressFamily = AddressFamily::Inet;
    const NAME: &'static str = "IPv4";

    fn address(a: &RouteAddress) -> Option<Ipv4Addr> {
        match a {
            RouteAddress::Inet(a) => Some(*a),
            _ => None,
        }
    }

    // Every type: `ip route` shows local, broadcast and blackhole routes too, and the hook's
    // stale-route sweep and `reset` judge them by their protocol.
    fn listed(_: RouteType) -> bool {
        true
    }

    fn to(destination: Self) -> RouteMessageBuilder<Ipv4Addr> {
        RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(destination.network(), destination.prefix_len())
    }

    fn via(b: RouteMessageBuilder<Ipv4Addr>, gateway: Ipv4Addr) -> RouteMessageBuilder<Ipv4Addr> {
        b.gateway(gateway)
    }

    fn from_source(b: RouteMessageBuilder<Ipv4Addr>, source: Ipv4Addr) -> RouteMessageBuilder<Ipv4Addr> {
        b.pref_source(source)
    }

    fn describe(route: &Route<Self>, ifindex: u32) -> String {
        plan::show_route(route, &format!("#{ifindex}"))
    }
}

impl RouteFamily for Ipv6Net {
    const ADDRESS_FAMILY: AddressFamily = AddressFamily::Inet6;
    const NAME: &'static str = "IPv6";

    fn address(a: &RouteAddress) -> Option<Ipv6Addr> {
        match a {
            RouteAddress::Inet6(a) => Some(*a),
            _ => None,
        }
    }

    // The kernel's local, multicast and unreachable IPv6 routes are none of an uplink's.
    fn listed(kind: RouteType) -> bool {
        kind == RouteType::Unicast
    }

    fn to(destination: Self) -> RouteMessageBuilder<Ipv6Addr> {
        RouteMessageBuilder::<Ipv6Addr>::new().destination_prefix(destination.network(), destination.prefix_len())
    }

    fn via(b: RouteMessageBuilder<Ipv6Addr>, gateway: Ipv6Addr) -> RouteMessageBuilder<Ipv6Addr> {
        b.gateway(gateway)
    }

    fn from_source(b: RouteMessageBuilder<Ipv6Addr>, source: Ipv6Addr) -> RouteMessageBuilder<Ipv6Addr> {
        b.pref_source(source)
    }

    fn describe(route: &Route<Self>, ifindex: u32) -> String {
        let via = route.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
        let src = route.preferred_source.map(|s| format!(" src {s}")).unwrap_or_default();
        let metric = route.metric.map(|m| format!(" metric {m}")).unwrap_or_default();
        format!("-6 {}{via} dev #{ifindex}{src} table {}{metric}", route.destination, route.table.number())
    }
}
