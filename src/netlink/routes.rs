//! Routes of both families: list those of a table, and add, replace or delete a `plan::Route`
//! on an interface, tagged with multihome's protocol. One path for IPv4 and IPv6, as
//! `plan::Route<N>` is one type; what differs is in [`super::route_family`]. An IPv4 gateway
//! route is installed on-link (RTNH_F_ONLINK), as `plan::Route` requires; an IPv6 one is not
//! (see `plan::Prefix::GATEWAY_ONLINK`): the router is usually link-local, which the kernel
//! resolves on the route's own device.

use futures::TryStreamExt;
use ipnet::{Ipv4Net, Ipv6Net};
use netlink_packet_route::route::{RouteAttribute, RouteFlags, RouteMessage, RouteProtocol, RouteScope, RouteType};

use super::route_family::RouteFamily;
use super::{Error, Netlink};
use crate::plan::{PROTOCOL, Route, Table};

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

/// A route as the kernel reports it (IPv4 unless said; IPv6 lists unicast routes alone, see
/// [`RouteFamily::listed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute<N: RouteFamily = Ipv4Net> {
    pub destination: N,
    pub gateway: Option<N::Addr>,
    pub table: u32,
    /// 0 when the route has none, as `ip route` shows it.
    pub metric: u32,
    pub preferred_source: Option<N::Addr>,
    /// The output interface (absent on multipath and on blackhole-like routes).
    pub ifindex: Option<u32>,
    /// 77 ([`PROTOCOL`]) for multihome, 2 kernel, 3 boot, 4 static, 16 dhcp, ...
    pub protocol: u8,
    /// `scope link` (no gateway needed) rather than `scope global` (IPv6 routes are all global).
    pub link_scope: bool,
    /// `onlink`: the gateway is taken to be on the link without a route to it.
    pub on_link: bool,
    pub kind: RouteKind,
}

/// An IPv6 unicast route as the kernel reports it.
pub type KernelRoute6 = KernelRoute<Ipv6Net>;

impl<N: RouteFamily> KernelRoute<N> {
    pub fn table(&self) -> Table {
        if self.table == Table::Main.number() { Table::Main } else { Table::Id(self.table) }
    }

    /// The plan's view of this route (type and interface aside), for comparing with a plan.
    pub fn as_plan_route(&self) -> Route<N> {
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
    pub fn is_same(&self, route: &Route<N>, ifindex: u32) -> bool {
        self.ifindex == Some(ifindex) && self.as_plan_route() == *route
    }

    /// Whether this is `route` on `ifindex` exactly as multihome installs it (IPv4: on-link
    /// when it has a gateway), so there is nothing to replace. An IPv4 copy from before routes
    /// were installed on-link is the same route, but not up to date.
    pub fn is_installed_as(&self, route: &Route<N>, ifindex: u32) -> bool {
        self.is_same(route, ifindex) && (!N::GATEWAY_ONLINK || self.on_link == route.gateway.is_some())
    }
}

impl Netlink {
    /// Every IPv4 route of every table.
    pub async fn routes(&self) -> Result<Vec<KernelRoute>, Error> {
        self.routes_of().await
    }

    /// Every IPv6 unicast route of every table.
    pub async fn routes6(&self) -> Result<Vec<KernelRoute6>, Error> {
        self.routes_of().await
    }

    /// The IPv4 routes of one table.
    pub async fn routes_in(&self, table: Table) -> Result<Vec<KernelRoute>, Error> {
        self.routes_of_table(table).await
    }

    /// The IPv6 unicast routes of one table.
    pub async fn routes6_in(&self, table: Table) -> Result<Vec<KernelRoute6>, Error> {
        self.routes_of_table(table).await
    }

    /// Every route of the family of every table.
    pub async fn routes_of<N: RouteFamily>(&self) -> Result<Vec<KernelRoute<N>>, Error> {
        // An empty header: without strict checking the kernel dumps everything and ignores
        // filters, so filtering happens here.
        let mut query = RouteMessage::default();
        query.header.address_family = N::ADDRESS_FAMILY;
        let messages: Vec<RouteMessage> =
            self.handle.route().get(query).execute().try_collect().await.map_err(|e| Error::from_rtnetlink(format!("list {} routes", N::NAME), e))?;
        Ok(messages.iter().filter_map(kernel_route).collect())
    }

    /// The routes of the family of one table.
    pub async fn routes_of_table<N: RouteFamily>(&self, table: Table) -> Result<Vec<KernelRoute<N>>, Error> {
        Ok(self.routes_of::<N>().await?.into_iter().filter(|r| r.table == table.number()).collect())
    }

    /// Adds `route` through the interface `ifindex`, tagged with [`PROTOCOL`];
    /// [`Error::AlreadyExists`] if the table has a route to that destination and metric.
    pub async fn add_route<N: RouteFamily>(&self, route: &Route<N>, ifindex: u32) -> Result<(), Error> {
        self.handle
            .route()
            .add(route_message(route, ifindex))
            .execute()
            .await
            .map_err(|e| Error::from_rtnetlink(format!("add route {}", N::describe(route, ifindex)), e))
    }

    /// Adds `route`, or replaces the route with the same destination, table and metric
    /// (whoever added it): the way to make a route right without a window where it is missing.
    pub async fn replace_route<N: RouteFamily>(&self, route: &Route<N>, ifindex: u32) -> Result<(), Error> {
        self.handle
            .route()
            .add(route_message(route, ifindex))
            .replace()
            .execute()
            .await
            .map_err(|e| Error::from_rtnetlink(format!("replace route {}", N::describe(route, ifindex)), e))
    }

    /// Deletes `route` on `ifindex` if it carries [`PROTOCOL`]; [`Error::NotFound`] if there is
    /// no such route of ours.
    pub async fn delete_route<N: RouteFamily>(&self, route: &Route<N>, ifindex: u32) -> Result<(), Error> {
        self.delete_route_of(route, ifindex, PROTOCOL).await
    }

    /// Deletes `route` on `ifindex` if it carries `protocol`: for a route that a network manager
    /// installed from what multihome wrote into its configuration and then left behind (see
    /// `backend::nm::leftovers`). [`Error::NotFound`] if there is no such route.
    pub async fn delete_route_of<N: RouteFamily>(&self, route: &Route<N>, ifindex: u32, protocol: u8) -> Result<(), Error> {
        let mut message = route_message(route, ifindex);
        message.header.protocol = RouteProtocol::from(protocol);
        // As `ip route del`: any scope; the protocol, destination, table, metric, gateway and
        // interface must match.
        message.header.scope = RouteScope::NoWhere;
        self.handle.route().del(message).execute().await.map_err(|e| Error::from_rtnetlink(format!("delete route {}", N::describe(route, ifindex)), e))
    }
}

fn route_message<N: RouteFamily>(route: &Route<N>, ifindex: u32) -> RouteMessage {
    let mut b = N::to(route.destination).table_id(route.table.number()).protocol(RouteProtocol::from(PROTOCOL)).output_interface(ifindex);
    b = match route.gateway {
        Some(gw) if N::GATEWAY_ONLINK => N::via(b, gw).scope(RouteScope::Universe).onlink(),
        Some(gw) => N::via(b, gw).scope(RouteScope::Universe),
        // IPv6 has no link scope: the kernel keeps every IPv6 route global.
        None if N::GATEWAY_ONLINK => b.scope(RouteScope::Link),
        None => b.scope(RouteScope::Universe),
    };
    if let Some(src) = route.preferred_source {
        b = N::from_source(b, src);
    }
    if let Some(metric) = route.metric {
        b = b.priority(metric);
    }
    b.build()
}

pub(super) fn kernel_route<N: RouteFamily>(m: &RouteMessage) -> Option<KernelRoute<N>> {
    if m.header.address_family != N::ADDRESS_FAMILY || !N::listed(m.header.kind) {
        return None;
    }
    let length = m.header.destination_prefix_length;
    let mut r = KernelRoute {
        destination: N::from_ip(N::DEFAULT.addr().into(), length)?,
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
            RouteAttribute::Destination(d) => {
                if let Some(d) = N::address(d) {
                    r.destination = N::from_ip(d.into(), length)?;
                }
            }
            RouteAttribute::Gateway(g) => r.gateway = N::address(g).or(r.gateway),
            RouteAttribute::PrefSource(s) => r.preferred_source = N::address(s).or(r.preferred_source),
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
