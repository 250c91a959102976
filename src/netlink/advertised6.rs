//! IPv6 default routes, as far as the hook needs them: list them, and put an advertised router
//! (link-local, learnt from a router advertisement by NetworkManager) into an uplink's table,
//! tagged with multihome's protocol, or take it out again.

use std::net::Ipv6Addr;

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType};
use rtnetlink::RouteMessageBuilder;

use super::{Error, Netlink};
use crate::plan::PROTOCOL;

/// `ip -6 route`'s protocol `ra`: a route from a router advertisement (the kernel's, or
/// NetworkManager's, which tags its routes from advertisements so).
pub const PROTOCOL_RA: u8 = 9;

/// An IPv6 default route through one router on one interface, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute6 {
    pub gateway: Ipv6Addr,
    pub table: u32,
    /// 1024 when added without one (the kernel's default for IPv6).
    pub metric: u32,
    pub ifindex: u32,
    pub protocol: u8,
}

impl DefaultRoute6 {
    pub fn is_ours(&self) -> bool {
        self.protocol == PROTOCOL
    }
}

impl Netlink {
    /// Every unicast IPv6 default route through a router on one interface, in every table
    /// (multipath routes, which name no single interface, are left out).
    pub async fn default_routes6(&self) -> Result<Vec<DefaultRoute6>, Error> {
        let mut query = RouteMessage::default();
        query.header.address_family = AddressFamily::Inet6;
        let messages: Vec<RouteMessage> =
            self.handle.route().get(query).execute().try_collect().await.map_err(|e| Error::from_rtnetlink("list IPv6 routes", e))?;
        Ok(messages.iter().filter_map(default_route6).collect())
    }

    /// Adds the default route via `gateway` on `ifindex` into `table` with [`PROTOCOL`], or
    /// replaces the one with the same metric there (no moment without a route).
    pub async fn replace_default6(&self, gateway: Ipv6Addr, table: u32, ifindex: u32) -> Result<(), Error> {
        self.handle
            .route()
            .add(message(gateway, table, ifindex))
            .replace()
            .execute()
            .await
            .map_err(|e| Error::from_rtnetlink(format!("replace route default via {gateway} dev #{ifindex} table {table}"), e))
    }

    /// Deletes `route` if it carries [`PROTOCOL`]; [`Error::NotFound`] if there is none such.
    pub async fn delete_default6(&self, route: &DefaultRoute6) -> Result<(), Error> {
        let mut m = message(route.gateway, route.table, route.ifindex);
        m.header.scope = RouteScope::NoWhere;
        m.attributes.push(RouteAttribute::Priority(route.metric));
        self.handle
            .route()
            .del(m)
            .execute()
            .await
            .map_err(|e| Error::from_rtnetlink(format!("delete route default via {} dev #{} table {}", route.gateway, route.ifindex, route.table), e))
    }
}

fn message(gateway: Ipv6Addr, table: u32, ifindex: u32) -> RouteMessage {
    RouteMessageBuilder::<Ipv6Addr>::new()
        .destination_prefix(Ipv6Addr::UNSPECIFIED, 0)
        .table_id(table)
        .protocol(RouteProtocol::from(PROTOCOL))
        .output_interface(ifindex)
        .gateway(gateway)
        .scope(RouteScope::Universe)
        .build()
}

fn default_route6(m: &RouteMessage) -> Option<DefaultRoute6> {
    if m.header.address_family != AddressFamily::Inet6 || m.header.destination_prefix_length != 0 || m.header.kind != RouteType::Unicast {
        return None;
    }
    let (mut gateway, mut ifindex, mut table, mut metric) = (None, None, u32::from(m.header.table), 0);
    for a in &m.attributes {
        match a {
            RouteAttribute::Gateway(RouteAddress::Inet6(g)) => gateway = Some(*g),
            RouteAttribute::Oif(i) => ifindex = Some(*i),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Priority(p) => metric = *p,
            _ => {}
        }
    }
    Some(DefaultRoute6 { gateway: gateway?, table, metric, ifindex: ifindex?, protocol: u8::from(m.header.protocol) })
}
