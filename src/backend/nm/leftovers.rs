//! Routes NetworkManager leaves in the kernel: on Reapply, NetworkManager 1.42 installs the
//! profile's new routes but keeps those of entries that left the profile (seen in the lab: when
//! an uplink's table moved from 101 to 200, table 101 kept its default and link route). After
//! an apply, multihome removes the ones it had written itself ([`super::settings::routes_dropped`]),
//! and only as NetworkManager installed them: on the uplink's interface, with the protocol
//! NetworkManager gives profile routes.

use crate::netlink::{self, KernelRoute, Netlink};
use crate::plan::Route;

/// RTPROT_STATIC: NetworkManager's protocol for the routes of a profile (`proto static`).
const NM_PROFILE_PROTOCOL: u8 = 4;

/// The kernel's copies of `dropped` on `ifindex` as NetworkManager installed them. A route
/// without a metric in the profile gets the profile's route-metric, so any metric matches then.
pub(super) fn left_behind<'a>(kernel: &'a [KernelRoute], ifindex: u32, dropped: &[Route]) -> Vec<&'a KernelRoute> {
    kernel
        .iter()
        .filter(|k| k.ifindex == Some(ifindex) && k.protocol == NM_PROFILE_PROTOCOL)
        .filter(|k| {
            let have = k.as_plan_route();
            dropped.iter().any(|d| Route { metric: d.metric.or(have.metric), ..d.clone() } == have)
        })
        .collect()
}

/// Removes what NetworkManager left of `dropped` on `interface`; how many routes went.
pub(super) async fn remove(interface: &str, dropped: &[Route]) -> Result<Vec<Route>, netlink::Error> {
    if dropped.is_empty() {
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
    for k in left_behind(&kernel, ifindex, dropped) {
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
    fn only_nm_copies_of_dropped_routes_on_the_interface_are_left_behind() {
        let dropped = vec![Route { destination: "0.0.0.0/0".parse().unwrap(), gateway: Some("192.168.178.1".parse().unwrap()), table: Table::Id(101), metric: None, preferred_source: None }];
        let routes = vec![
            kernel("0.0.0.0/0", Some("192.168.178.1"), 101, 100, 2, 4),
            // Another interface, another protocol (the hook's, the kernel's), another table.
            kernel("0.0.0.0/0", Some("192.168.178.1"), 101, 100, 3, 4),
            kernel("0.0.0.0/0", Some("192.168.178.1"), 101, 0, 2, 77),
            kernel("0.0.0.0/0", Some("192.168.178.1"), 200, 100, 2, 4),
            kernel("0.0.0.0/0", Some("192.168.178.2"), 101, 100, 2, 4),
        ];
        assert_eq!(left_behind(&routes, 2, &dropped), vec![&routes[0]]);
        // A metric in the profile must match.
        let with_metric = vec![Route { metric: Some(5), ..dropped[0].clone() }];
        assert!(left_behind(&routes, 2, &with_metric).is_empty());
    }
}
