//! The daemon's IPv6 failover routes in main: [`super::routes::desired`] works them out for
//! IPv6 as for IPv4 (copies of the carrying uplinks' `::/0` and prefix routes, just in front of
//! the uplinks' own, only while an uplink's IPv6 side is demoted), and the same mark and sweep
//! ([`super::routes::reconcile`]) makes the kernel hold exactly those, over IPv6 routes of
//! protocol 77 in main alone.
//!
//! The kernel skips a carrier-dead link's IPv6 routes as it does its IPv4 ones: the plan sets
//! `ignore_routes_with_linkdown` for both families. Not those of an uplink with a global IPv6
//! router (the plan keeps its sysctl at 0): its side counts as demoted while the carrier is
//! gone, and these copies go in front of its routes (`family6::shadowed`).

use ipnet::Ipv6Net;

pub use super::routes::{foreign, reconcile};
use crate::netlink::{self, KernelRoute6, Netlink};

/// The daemon's IPv6 routes in main now.
pub async fn current(nl: &Netlink) -> Result<Vec<KernelRoute6>, netlink::Error> {
    super::routes::current_of(nl).await
}

/// Removes the daemon's IPv6 copies.
pub async fn remove_all(nl: &Netlink) -> Result<(), netlink::Error> {
    reconcile::<Ipv6Net>(nl, &[]).await.map(|_| ())
}
