//! The daemon's IPv6 failover routes in main: [`super::routes::desired`] works them out for
//! IPv6 as for IPv4 (copies of the carrying uplinks' `::/0` and prefix routes, just in front of
//! the uplinks' own, only while an uplink's IPv6 side is demoted); this is the mark and sweep
//! that makes the kernel hold exactly those, over IPv6 routes of protocol 77 in main alone.
//!
//! The kernel skips a carrier-dead link's IPv6 routes as it does its IPv4 ones: the plan sets
//! `ignore_routes_with_linkdown` for both families.

use ipnet::Ipv6Net;

use super::routes::{FailoverRoute, Foreign};
use crate::netlink::{self, KernelRoute6, Netlink};
use crate::plan::Table;

/// The daemon's IPv6 routes in main now.
pub async fn current(nl: &Netlink) -> Result<Vec<KernelRoute6>, netlink::Error> {
    Ok(nl.routes6_in(Table::Main).await?.into_iter().filter(KernelRoute6::is_ours).collect())
}

/// Every IPv6 route in main that is not multihome's.
pub fn foreign(main: &[KernelRoute6]) -> Vec<Foreign<Ipv6Net>> {
    main.iter().filter(|r| !r.is_ours()).map(|r| (r.destination, r.metric)).collect()
}

/// Makes main hold exactly `want` of our IPv6 routes: adds first, then removes.
pub async fn reconcile(nl: &Netlink, want: &[FailoverRoute<Ipv6Net>]) -> Result<bool, netlink::Error> {
    let have = current(nl).await?;
    let mut changed = false;
    for (route, ifindex) in want {
        if !have.iter().any(|k| k.is_same(route, *ifindex)) {
            nl.replace_route(route, *ifindex).await?;
            changed = true;
        }
    }
    for k in &have {
        if !want.iter().any(|(route, ifindex)| k.is_same(route, *ifindex)) {
            let Some(ifindex) = k.ifindex else { continue };
            match nl.delete_route(&k.as_plan_route(), ifindex).await {
                Ok(()) => changed = true,
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(changed)
}

/// Removes the daemon's IPv6 copies.
pub async fn remove_all(nl: &Netlink) -> Result<(), netlink::Error> {
    reconcile(nl, &[]).await.map(|_| ())
}
