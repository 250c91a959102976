//! IPv6 default routes through one router, as far as the hook needs them: list them, and put an
//! advertised router (link-local, learnt from a router advertisement by NetworkManager) into an
//! uplink's table, tagged with multihome's protocol, or take it out again. A view over
//! [`super::routes`]'s listing and messages, so both read and write routes one way.

use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

use super::{Error, KernelRoute6, Netlink};
use crate::plan::{PROTOCOL, Route, Table};

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

    /// A default route through a router on one interface; `None` for every other route
    /// (multipath routes name no single interface).
    fn from_kernel(k: &KernelRoute6) -> Option<DefaultRoute6> {
        if k.destination.prefix_len() != 0 {
            return None;
        }
        Some(DefaultRoute6 { gateway: k.gateway?, table: k.table, metric: k.metric, ifindex: k.ifindex?, protocol: k.protocol })
    }

    fn as_plan_route(&self) -> Route<Ipv6Net> {
        default_via(self.gateway, self.table, Some(self.metric))
    }
}

fn default_via(gateway: Ipv6Addr, table: u32, metric: Option<u32>) -> Route<Ipv6Net> {
    let table = if table == Table::Main.number() { Table::Main } else { Table::Id(table) };
    // ::/0; a prefix length of 0 is always valid.
    let destination = Ipv6Net::new(Ipv6Addr::UNSPECIFIED, 0).expect("::/0");
    Route { destination, gateway: Some(gateway), table, metric, preferred_source: None }
}

impl Netlink {
    /// Every unicast IPv6 default route through a router on one interface, in every table.
    pub async fn default_routes6(&self) -> Result<Vec<DefaultRoute6>, Error> {
        Ok(self.routes6().await?.iter().filter_map(DefaultRoute6::from_kernel).collect())
    }

    /// Adds the default route via `gateway` on `ifindex` into `table` with [`PROTOCOL`], or
    /// replaces the one with the same metric there (no moment without a route).
    pub async fn replace_default6(&self, gateway: Ipv6Addr, table: u32, ifindex: u32) -> Result<(), Error> {
        self.replace_route(&default_via(gateway, table, None), ifindex).await
    }

    /// Deletes `route` if it carries [`PROTOCOL`]; [`Error::NotFound`] if there is none such.
    pub async fn delete_default6(&self, route: &DefaultRoute6) -> Result<(), Error> {
        self.delete_route(&route.as_plan_route(), route.ifindex).await
    }
}
