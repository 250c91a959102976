//! IPv4 routes: list those of a table, and add, replace or delete a `plan::Route` on an
//! interface, tagged with multihome's protocol. A route with a gateway is installed on-link
//! (RTNH_F_ONLINK), as `plan::Route` requires.

use std::net::Ipv4Addr;

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteProtocol, RouteScope, RouteType};
use rtnetlink::RouteMessageBuilder;

use super::{Error, Netlink};
use crate::plan::{self, PROTOCOL, Route, Table};

/// The route's type (`ip route`'s first word when it is not `unicast`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Unicast,
    Local,
    Broadcast,
    Blackhole,
    Unreachable,
    Prohibit,
    Throw,
    Other(u8),
}

/// A route as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    pub destination: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    pub table: u32,
    /// 0 when the route has none, as `ip route` shows it.
    pub metric: u32,
    pub preferred_source: Option<Ipv4Addr>,
    /// The output interface (absent on multipath and on blackhole-like routes).
    pub ifindex: Option<u32>,
    /// 77 ([`PROTOCOL`]) for multihome, 2 kernel, 3 boot, 4 static, 16 dhcp, ...
    pub protocol: u8,
    /// `scope link` (no gateway needed) rather than `scope global`.
    pub link_scope: bool,
    /// `onlink`: the gateway is taken to be on the link without a route to it.
    pub on_link: bool,
    pub kind: RouteKind,
}

impl KernelRoute {
    pub fn table(&self) -> Table {
        if self.table == Table::Main.number() { Table::Main } else { Table::Id(self.table) }
    }

    /// The plan's view of this route (type and interface aside), for comparing with a plan.
    pub fn as_plan_route(&self) -> Route {
        Route {
            destination: self.destination,
            gateway: self.gateway,
            table: self.table(),
            metric: (self.metric != 0).then_some(self.metric),
            preferred_source: self.preferred_source,
        }
    }

    pub fn is_ours(&self) -> bool {
        self.protocol == PROTOCOL
    }

    /// Whether this is the kernel's copy of `route` on `ifindex`, whatever its flags: the
    /// route to keep, or to replace in place.
    pub fn is_same(&self, route: &Route, ifindex: u32) -> bool {
        self.ifindex == Some(ifindex) && self.as_plan_route() == *route
    }

    /// Whether this is `route` on `ifindex` exactly as multihome installs it (on-link when it
    /// has a gateway), so there is nothing to replace. A copy from before routes were
    /// installed on-link is the same route, but not up to date.
    pub fn is_installed_as(&self, route: &Route, ifindex: u32) -> bool {
        self.is_same(route, ifindex) && self.on_link == route.gateway.is_some()
    }
}

impl Netlink {
    /// Every IPv4 route of every table.
    pub async fn routes(&self) -> Result<Vec<KernelRoute>, Error> {
        // An empty header: without strict checking the kernel dumps everything and ignores
        // filters, so filtering happens here.
        let mut query = RouteMessage::default();
        query.header.address_family = AddressFamily::Inet;
        let messages: Vec<RouteMessage> =
            self.handle.route().get(query).execute().try_collect().await.map_err(|e| Error::from_rtnetlink("list IPv4 routes", e))?;
        Ok(messages.iter().filter_map(kernel_route).collect())
    }

    /// The IPv4 routes of one table.
    pub async fn routes_in(&self, table: Table) -> Result<Vec<KernelRoute>, Error> {
        Ok(self.routes().await?.into_iter().filter(|r| r.table == table.number()).collect())
    }

    /// Adds `route` through the interface `ifindex`, tagged with [`PROTOCOL`];
    /// [`Error::AlreadyExists`] if the table has a route to that destination and metric.
    pub async fn add_route(&self, route: &Route, ifindex: u32) -> Result<(), Error> {
        self.handle
            .route()
            .add(route_message(route, ifindex))
            .execute()
            .await
            .map_err(|e| Error::from_rtnetlink(format!("add route {}", describe(route, ifindex)), e))
    }

    /// Adds `route`, or replaces the route with the same destination, table and metric
    /// (whoever added it): the way to make a route right without a window where it is missing.
    pub async fn replace_route(&self, route: &Route, ifindex: u32) -> Result<(), Error> {
        self.handle
            .route()
            .add(route_message(route, ifindex))
            .replace()
            .execute()
            .await
            .map_err(|e| Error::from_rtnetlink(format!("replace route {}", describe(route, ifindex)), e))
    }

    /// Deletes `route` on `ifindex` if it carries [`PROTOCOL`]; [`Error::NotFound`] if there is
    /// no such route of ours.
    pub async fn delete_route(&self, route: &Route, ifindex: u32) -> Result<(), Error> {
        self.delete_route_of(route, ifindex, PROTOCOL).await
    }

    /// Deletes `route` on `ifindex` if it carries `protocol`: for a route that a network manager
    /// installed from what multihome wrote into its configuration and then left behind (see
    /// `backend::nm::leftovers`). [`Error::NotFound`] if there is no such route.
    pub async fn delete_route_of(&self, route: &Route, ifindex: u32, protocol: u8) -> Result<(), Error> {
        let mut message = route_message(route, ifindex);
        message.header.protocol = RouteProtocol::from(protocol);
        // As `ip route del`: any scope; the protocol, destination, table, metric, gateway and
        // interface must match.
        message.header.scope = RouteScope::NoWhere;
        self.handle.route().del(message).execute().await.map_err(|e| Error::from_rtnetlink(format!("delete route {}", describe(route, ifindex)), e))
    }
}

fn describe(route: &Route, ifindex: u32) -> String {
    plan::show_route(route, &format!("#{ifindex}"))
}

fn route_message(route: &Route, ifindex: u32) -> RouteMessage {
    let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(route.destination.network(), route.destination.prefix_len())
        .table_id(route.table.number())
        .protocol(RouteProtocol::from(PROTOCOL))
        .output_interface(ifindex);
    b = match route.gateway {
        Some(gw) => b.gateway(gw).scope(RouteScope::Universe).onlink(),
        None => b.scope(RouteScope::Link),
    };
    if let Some(src) = route.preferred_source {
        b = b.pref_source(src);
    }
    if let Some(metric) = route.metric {
        b = b.priority(metric);
    }
    b.build()
}

pub(super) fn kernel_route(m: &RouteMessage) -> Option<KernelRoute> {
    if m.header.address_family != AddressFamily::Inet {
        return None;
    }
    let mut r = KernelRoute {
        destination: Ipv4Net::new(Ipv4Addr::UNSPECIFIED, m.header.destination_prefix_length).ok()?,
        gateway: None,
        table: u32::from(m.header.table),
        metric: 0,
        preferred_source: None,
        ifindex: None,
        protocol: u8::from(m.header.protocol),
        link_scope: m.header.scope == RouteScope::Link,
        on_link: m.header.flags.contains(RouteFlags::Onlink),
        kind: kind(m.header.kind),
    };
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(RouteAddress::Inet(d)) => r.destination = Ipv4Net::new(*d, m.header.destination_prefix_length).ok()?,
            RouteAttribute::Gateway(RouteAddress::Inet(g)) => r.gateway = Some(*g),
            RouteAttribute::PrefSource(RouteAddress::Inet(s)) => r.preferred_source = Some(*s),
            RouteAttribute::Table(t) => r.table = *t,
            RouteAttribute::Priority(p) => r.metric = *p,
            RouteAttribute::Oif(i) => r.ifindex = Some(*i),
            _ => {}
        }
    }
    Some(r)
}

fn kind(t: RouteType) -> RouteKind {
    match t {
        RouteType::Unicast => RouteKind::Unicast,
        RouteType::Local => RouteKind::Local,
        RouteType::Broadcast => RouteKind::Broadcast,
        RouteType::BlackHole => RouteKind::Blackhole,
        RouteType::Unreachable => RouteKind::Unreachable,
        RouteType::Prohibit => RouteKind::Prohibit,
        RouteType::Throw => RouteKind::Throw,
        other => RouteKind::Other(u8::from(other)),
    }
}
