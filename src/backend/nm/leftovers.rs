//! Routes NetworkManager leaves in the kernel: on Reapply, NetworkManager 1.42 prunes only the
//! main table, so in other tables it keeps the routes of entries that left the profile or whose
//! metric changed (seen in the lab: when an uplink's table moved from 101 to 200, table 101 kept
//! its default and link route; when its rank changed, table 101 held both metrics). After an
//! apply, multihome removes those that came from its own entries
//! ([`super::settings::installed_routes`]), and only as NetworkManager installed them: on the
//! uplink's interface, with the protocol NetworkManager gives profile routes, and never one the
//! merged profile still gives.

use super::settings::InstalledRoutes;
use crate::netlink::{self, KernelRoute, Netlink};
use crate::plan::{Route, Table};

/// RTPROT_STATIC: NetworkManager's protocol for the routes of a profile (`proto static`).
const NM_PROFILE_PROTOCOL: u8 = 4;

/// The kernel's copies on `ifindex`, as NetworkManager installed them, of what `routes` says
/// multihome's entries gave before and the merged profile does not give now. A metric of
/// `None` (NetworkManager's default, unknown) matches any.
pub(super) fn left_behind<'a>(kernel: &'a [KernelRoute], ifindex: u32, routes: &InstalledRoutes) -> Vec<&'a KernelRoute> {
    let matches = |have: &Route, r: &Route| Route { metric: r.metric.or(have.metric), ..r.clone() } == *have;
    kernel
        .iter()
        .filter(|k| k.ifindex == Some(ifindex) && k.protocol == NM_PROFILE_PROTOCOL && k.table() != Table::Main)
        .filter(|k| {
            let have = k.as_plan_route();
            routes.before.iter().any(|r| matches(&have, r)) && !routes.after.iter().any(|r| matches(&have, r))
        })
        .collect()
}

/// Removes what NetworkManager left behind on `interface`; the routes that went.
pub(super) async fn remove(interface: &str, routes: &InstalledRoutes) -> Result<Vec<Route>, netlink::Error> {
    if routes.before.is_empty() {
        return Ok(Vec::new());
    }
    let nl = Netlink::connect()?;
    let ifindex = match nl.ifindex(interface).await {
        Ok(i) => i,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let kernel = nl.routes().await?;
    let mut removed = Vec::new();
    for k in left_behind(&kernel, ifindex, routes) {
        let route = k.as_plan_route();
        match nl.delete_route_of(&route, ifindex, k.protocol).await {
            Ok(()) => removed.push(route),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::RouteKind;
    use crate::plan::Table;

    fn kernel(destination: &str, gateway: Option<&str>, table: u32, metric: u32, ifindex: u32, protocol: u8) -> KernelRoute {
        KernelRoute {
            destination: destination.parse().unwrap(),
            gateway: gateway.map(|g| g.parse().unwrap()),
            table,
            metric,
            preferred_source: None,
            ifindex: Some(ifindex),
            protocol,
            link_scope: gateway.is_none(),
            on_link: gateway.is_some(),
            kind: RouteKind::Unicast,
        }
    }

    #[test]
    fn only_nm_copies_of_routes_given_up_on_the_interface_are_left_behind() {
        let default = |table: u32, metric: Option<u32>| Route {
            destination: "0.0.0.0/0".parse().unwrap(),
            gateway: Some("192.168.178.1".parse().unwrap()),
            table: Table::Id(table),
            metric,
            preferred_source: None,
        };
        // Table 101 -> 200 at metric 100; then a rank change in 200: metric 100 -> 102.
        let moved = InstalledRoutes { before: vec![default(101, Some(100))], after: vec![default(200, Some(100))] };
        let reranked = InstalledRoutes { before: vec![default(200, Some(100))], after: vec![default(200, Some(102))] };
        let routes = vec![
            kernel("0.0.0.0/0", Some("192.168.178.1"), 101, 100, 2, 4),
            kernel("0.0.0.0/0", Some("192.168.178.1"), 200, 100, 2, 4),
            kernel("0.0.0.0/0", Some("192.168.178.1"), 200, 102, 2, 4),
            // Another interface, another protocol (the hook's), another router, main.
            kernel("0.0.0.0/0", Some("192.168.178.1"), 101, 100, 3, 4),
            kernel("0.0.0.0/0", Some("192.168.178.1"), 101, 100, 2, 77),
            kernel("0.0.0.0/0", Some("192.168.178.2"), 101, 100, 2, 4),
            kernel("0.0.0.0/0", Some("192.168.178.1"), 254, 100, 2, 4),
        ];
        assert_eq!(left_behind(&routes, 2, &moved), vec![&routes[0]]);
        assert_eq!(left_behind(&routes, 2, &reranked), vec![&routes[1]]);
        // An unknown metric before matches any, but never what the profile gives now.
        let unknown = InstalledRoutes { before: vec![default(200, None)], after: vec![default(200, Some(102))] };
        assert_eq!(left_behind(&routes, 2, &unknown), vec![&routes[1]]);
        assert!(left_behind(&routes, 2, &InstalledRoutes::default()).is_empty());
    }
}
