//! IPv6 routes, for the failover daemon's `::/0` copies: list those of a table, and replace or
//! delete a `plan::Route<Ipv6Net>` on an interface, tagged with multihome's protocol. A gateway
//! route is not on-link (see `plan::Prefix::GATEWAY_ONLINK`): the router is usually link-local,
//! which the kernel resolves on the route's own device.

use std::net::Ipv6Addr;

use futures::TryStreamExt;
use ipnet::Ipv6Net;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType};
use rtnetlink::RouteMessageBuilder;

use super::{Error, Netlink};
use crate::plan::{PROTOCOL, Route, Table};

/// An IPv6 unicast route as the kernel reports it (the kernel's local, multicast and
/// unreachable routes are left out: none of them is an uplink's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute6 {
    pub destination: Ipv6Net,
    pub gateway: Option<Ipv6Addr>,
    pub table: u32,
    pub metric: u32,
    pub preferred_source: Option<Ipv6Addr>,
    pub ifindex: Option<u32>,
    pub protocol: u8,
}

impl KernelRoute6 {
    pub fn table(&self) -> Table {
        if self.table == Table::Main.number() { Table::Main } else { Table::Id(self.table) }
    }

    pub fn is_ours(&self) -> bool {
        self.protocol == PROTOCOL
    }

    /// The plan's view of this route (interface aside).
    pub fn as_plan_route(&self) -> Route<Ipv6Net> {
        Route {
            destination: self.destination,
            gateway: self.gateway,
            table: self.table(),
            metric: (self.metric != 0).then_some(self.metric),
            preferred_source: self.preferred_source,
        }
    }

    /// Whether this is the kernel's copy of `route` on `ifindex`.
    pub fn is_same(&self, route: &Route<Ipv6Net>, ifindex: u32) -> bool {
        self.ifindex == Some(ifindex) && self.as_plan_route() == *route
    }
}

impl Netlink {
    /// Every IPv6 unicast route of every table.
    pub async fn routes6(&self) -> Result<Vec<KernelRoute6>, Error> {
        let mut query = RouteMessage::default();
        query.header.address_family = AddressFamily::Inet6;
        let messages: Vec<RouteMessage> =
            self.handle.route().get(query).execute().try_collect().await.map_err(|e| Error::from_rtnetlink("list IPv6 routes", e))?;
        Ok(messages.iter().filter_map(kernel_route6).collect())
    }

    /// The IPv6 unicast routes of one table.
    pub async fn routes6_in(&self, table: Table) -> Result<Vec<KernelRoute6>, Error> {
        Ok(self.routes6().await?.into_iter().filter(|r| r.table == table.number()).collect())
    }

    /// Adds `route` or replaces the one with the same destination, table and metric.
    pub async fn replace_route6(&self, route: &Route<Ipv6Net>, ifindex: u32) -> Result<(), Error> {
        self.handle
            .route()
            .add(route_message6(route, ifindex))
            .replace()
            .execute()
            .await
            .map_err(|e| Error::from_rtnetlink(format!("replace route {}", describe(route, ifindex)), e))
    }

    /// Deletes `route` on `ifindex` if it carries [`PROTOCOL`]; [`Error::NotFound`] otherwise.
    pub async fn delete_route6(&self, route: &Route<Ipv6Net>, ifindex: u32) -> Result<(), Error> {
        let mut message = route_message6(route, ifindex);
        message.header.scope = RouteScope::NoWhere;
        self.handle.route().del(message).execute().await.map_err(|e| Error::from_rtnetlink(format!("delete route {}", describe(route, ifindex)), e))
    }
}

fn describe(route: &Route<Ipv6Net>, ifindex: u32) -> String {
    let via = route.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
    let src = route.preferred_source.map(|s| format!(" src {s}")).unwrap_or_default();
    let metric = route.metric.map(|m| format!(" metric {m}")).unwrap_or_default();
    format!("-6 {}{via} dev #{ifindex}{src} table {}{metric}", route.destination, route.table.number())
}

fn route_message6(route: &Route<Ipv6Net>, ifindex: u32) -> RouteMessage {
    let mut b = RouteMessageBuilder::<Ipv6Addr>::new()
        .destination_prefix(route.destination.network(), route.destination.prefix_len())
        .table_id(route.table.number())
        .protocol(RouteProtocol::from(PROTOCOL))
        .output_interface(ifindex)
        .scope(RouteScope::Universe);
    if let Some(gw) = route.gateway {
        b = b.gateway(gw);
    }
    if let Some(src) = route.preferred_source {
        b = b.pref_source(src);
    }
    if let Some(metric) = route.metric {
        b = b.priority(metric);
    }
    b.build()
}

pub(super) fn kernel_route6(m: &RouteMessage) -> Option<KernelRoute6> {
    if m.header.address_family != AddressFamily::Inet6 || m.header.kind != RouteType::Unicast {
        return None;
    }
    let mut r = KernelRoute6 {
        destination: Ipv6Net::new(Ipv6Addr::UNSPECIFIED, m.header.destination_prefix_length).ok()?,
        gateway: None,
        table: u32::from(m.header.table),
        metric: 0,
        preferred_source: None,
        ifindex: None,
        protocol: u8::from(m.header.protocol),
    };
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet6(d)) => r.destination = Ipv6Net::new(*d, m.header.destination_prefix_length).ok()?,
            RouteAttribute::Gateway(RouteAddress::Inet6(g)) => r.gateway = Some(*g),
            RouteAttribute::PrefSource(RouteAddress::Inet6(s)) => r.preferred_source = Some(*s),
            RouteAttribute::Table(t) => r.table = *t,
            RouteAttribute::Priority(p) => r.metric = *p,
            RouteAttribute::Oif(i) => r.ifindex = Some(*i),
            _ => {}
        }
    }
    Some(r)
}
