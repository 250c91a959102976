//! The daemon's failover routes: copies of the carrying uplinks' default and link routes in the
//! main table, just in front of the uplinks' own (metrics 68..=99 against their 100, 101, ...),
//! present only while an uplink is demoted. What they should be is pure ([`desired`]); making the
//! kernel match is a mark and sweep over the routes tagged with `plan::PROTOCOL` in main, never a
//! route networkd, NetworkManager, a VPN or the administrator owns.
//!
//! Why main, and why only these destinations (issue 8): a table of its own behind a rule ahead of
//! main answered every lookup with its default routes, so main's more specific routes (a Docker
//! bridge, static routes, a split-tunnel VPN's routes) and a full-tunnel VPN's default route at a
//! better metric were never consulted, and wg-quick's rules at 32764/32765 came too late. Copies
//! in main compete only where the uplinks' own routes compete: at exactly their destinations, by
//! metric. The longest prefix still wins, a lower metric (a VPN at 50) still wins, every rule
//! still runs in its order. A demoted uplink's routes stay where its manager put them, one place
//! behind the copies, so the copies decide; with nothing demoted there are no copies and the
//! host resolves exactly as without the daemon.
//!
//! A carrier-dead uplink needs no copies: the kernel already skips its routes
//! (`ignore_routes_with_linkdown`, set by the plan's sysctls) — except an IPv6 side behind a
//! global router, which keeps that sysctl at 0 and so gets copies in front while its carrier is
//! gone (see `side::shadowed`).

use ipnet::Ipv4Net;

use crate::netlink::{self, KernelRoute, Netlink, RouteFamily};
use crate::plan::{FAILOVER_METRIC_SLOTS, LEGACY_DAEMON_RULE_PRIORITY, LEGACY_DAEMON_TABLE, METRIC_BASE, Prefix, Route, Rule, Table};

/// An uplink that carries traffic (of one family: IPv4 unless said), as far as its routes need
/// to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carrying<N: Prefix = Ipv4Net> {
    pub ifindex: u32,
    pub address: N,
    pub gateway: N::Addr,
    /// The plan's main-table metric: the uplinks' order.
    pub metric: u32,
}

/// A route of the daemon and the interface it leaves through.
pub type FailoverRoute<N = Ipv4Net> = (Route<N>, u32);

/// A route in main that is not multihome's: its destination and metric.
pub type Foreign<N = Ipv4Net> = (N, u32);

/// The copies main should hold. `carrying` in any order; `demoted` the addresses of the uplinks
/// that have an address and a carrier but must not be used (their routes in main are live);
/// `foreign` the other routes in main. For each destination that a demoted uplink has a route
/// to (the default, its link's prefix), the carrying uplinks with a route there get a copy, best
/// first, at the highest free metrics below the uplinks' own and above every foreign route to the
/// same destination that is in front of the uplinks (so a VPN's default route stays in front).
/// The same for both families: IPv6 gets its `::/0` and prefix copies from its own verdicts.
pub fn desired<N: Prefix>(carrying: &[Carrying<N>], demoted: &[N], foreign: &[Foreign<N>]) -> Vec<FailoverRoute<N>> {
    if demoted.is_empty() || carrying.is_empty() {
        return Vec::new();
    }
    let mut ranked: Vec<&Carrying<N>> = carrying.iter().collect();
    ranked.sort_by_key(|c| c.metric);
    let mut routes = Vec::new();
    let default_users: Vec<&Carrying<N>> = ranked.clone();
    push_copies(&mut routes, N::DEFAULT, &default_users, foreign, |c| Some(c.gateway));
    // Host addresses (/32, /128) have no prefix route to copy.
    let mut prefixes: Vec<N> = demoted.iter().filter(|a| a.prefix_len() < N::host(a.addr()).prefix_len()).map(Prefix::trunc).collect();
    prefixes.sort_by_key(|p| -> (std::net::IpAddr, u8) { (p.addr().into(), p.prefix_len()) });
    prefixes.dedup();
    for prefix in prefixes {
        let users: Vec<&Carrying<N>> = ranked.iter().copied().filter(|c| c.address.trunc() == prefix).collect();
        push_copies(&mut routes, prefix, &users, foreign, |_| None);
    }
    routes
}

fn push_copies<N: Prefix>(
    routes: &mut Vec<FailoverRoute<N>>,
    destination: N,
    users: &[&Carrying<N>],
    foreign: &[Foreign<N>],
    gateway: impl Fn(&Carrying<N>) -> Option<N::Addr>,
) {
    let floor = METRIC_BASE - FAILOVER_METRIC_SLOTS;
    let in_front = foreign.iter().filter(|(d, m)| *d == destination && *m < METRIC_BASE).map(|(_, m)| m + 1).max().unwrap_or(0);
    let slots = (METRIC_BASE - floor.max(in_front)) as usize;
    let k = users.len().min(slots);
    for (i, c) in users[..k].iter().enumerate() {
        let metric = METRIC_BASE - (k - i) as u32;
        let route = Route { destination, gateway: gateway(c), table: Table::Main, metric: Some(metric), preferred_source: Some(c.address.addr()) };
        routes.push((route, c.ifindex));
    }
}

/// The daemon's routes of the family in main now.
pub async fn current<N: RouteFamily>(nl: &Netlink) -> Result<Vec<KernelRoute<N>>, netlink::Error> {
    Ok(nl.routes_of_table::<N>(Table::Main).await?.into_iter().filter(KernelRoute::is_ours).collect())
}

/// Every route in main that is not multihome's, as [`desired`] takes them.
pub fn foreign<N: RouteFamily>(main: &[KernelRoute<N>]) -> Vec<Foreign<N>> {
    main.iter().filter(|r| !r.is_ours() && r.table() == Table::Main).map(|r| (r.destination, r.metric)).collect()
}

/// Makes main hold exactly `want` of ours (of `want`'s family): adds first, then removes, so a
/// switch never leaves a moment where the demoted uplink's route is the best. Returns whether
/// anything changed.
pub async fn reconcile<N: RouteFamily>(nl: &Netlink, want: &[FailoverRoute<N>]) -> Result<bool, netlink::Error> {
    let have = current::<N>(nl).await?;
    let mut changed = false;
    for (route, ifindex) in want {
        if !have.iter().any(|k| k.is_installed_as(route, *ifindex)) {
            // Replace: the slot may hold our copy for another uplink (a switch in place). It
            // never holds a foreign route: `desired` only picks metrics above those.
            nl.replace_route(route, *ifindex).await?;
            changed = true;
        }
    }
    for k in &have {
        // A route whose flags the replace above brought up to date is kept, not deleted.
        if !want.iter().any(|(route, ifindex)| k.is_same(route, *ifindex)) {
            let Some(ifindex) = k.ifindex else { continue };
            match nl.delete_route(&k.as_plan_route(), ifindex).await {
                Ok(()) => changed = true,
                // Gone already (its address or link went away), or replaced by a copy above.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(changed)
}

/// Removes the daemon's copies of the family: the plain policy remains.
pub async fn remove_all<N: RouteFamily>(nl: &Netlink) -> Result<(), netlink::Error> {
    reconcile::<N>(nl, &[]).await.map(|_| ())
}

/// Removes what a daemon before 0.2 left: its rule ahead of main and its table's routes of ours.
/// Returns whether there was any.
pub async fn remove_legacy(nl: &Netlink) -> Result<bool, netlink::Error> {
    let rule = Rule { priority: LEGACY_DAEMON_RULE_PRIORITY, from: None, to: None, table: Table::Id(LEGACY_DAEMON_TABLE) };
    let mut found = false;
    loop {
        match nl.delete_rule(&rule).await {
            Ok(()) => found = true,
            Err(e) if e.is_not_found() => break,
            Err(e) => return Err(e),
        }
    }
    for k in nl.routes_in(Table::Id(LEGACY_DAEMON_TABLE)).await?.into_iter().filter(KernelRoute::is_ours) {
        let Some(ifindex) = k.ifindex else { continue };
        match nl.delete_route(&k.as_plan_route(), ifindex).await {
            Ok(()) => found = true,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::DEFAULT_DESTINATION;

    fn uplink(ifindex: u32, address: &str, metric: u32) -> Carrying {
        Carrying { ifindex, address: address.parse().unwrap(), gateway: "192.168.178.1".parse().unwrap(), metric }
    }

    fn shown(routes: &[FailoverRoute]) -> Vec<String> {
        routes.iter().map(|(r, i)| crate::plan::show_route(r, &format!("#{i}"))).collect()
    }

    const LAN: &str = "192.168.178.0/24";

    #[test]
    fn nothing_demoted_means_no_copies() {
        let all = [uplink(2, "192.168.178.99/24", 100), uplink(3, "192.168.178.98/24", 101)];
        assert!(desired(&all, &[], &[]).is_empty());
    }

    #[test]
    fn nothing_carrying_means_no_copies_and_main_decides() {
        assert!(desired::<Ipv4Net>(&[], &["192.168.178.99/24".parse().unwrap()], &[]).is_empty());
    }

    #[test]
    fn a_demoted_best_uplink_puts_the_others_in_front_in_their_order() {
        let carrying = [uplink(4, "192.168.178.97/24", 102), uplink(3, "192.168.178.98/24", 101)];
        let routes = desired(&carrying, &["192.168.178.99/24".parse().unwrap()], &[]);
        assert_eq!(
            shown(&routes),
            [
                "default via 192.168.178.1 dev #3 src 192.168.178.98 metric 98 onlink",
                "default via 192.168.178.1 dev #4 src 192.168.178.97 metric 99 onlink",
                "192.168.178.0/24 dev #3 scope link src 192.168.178.98 metric 98",
                "192.168.178.0/24 dev #4 scope link src 192.168.178.97 metric 99",
            ]
        );
        assert!(routes.iter().all(|(r, _)| r.table == Table::Main && r.metric.unwrap() < METRIC_BASE));
    }

    #[test]
    fn a_vpn_default_route_in_front_stays_in_front() {
        let carrying = [uplink(3, "192.168.178.98/24", 101)];
        let demoted = ["192.168.178.99/24".parse().unwrap()];
        for vpn_metric in [0, 50, 90, 98] {
            let routes = desired(&carrying, &demoted, &[(DEFAULT_DESTINATION, vpn_metric)]);
            let default = routes.iter().find(|(r, _)| r.is_default()).unwrap();
            assert!(default.0.metric.unwrap() > vpn_metric, "{vpn_metric}: {:?}", shown(&routes));
        }
        // No room left in front of the uplinks: the VPN (and main's order) decide, nothing is
        // put ahead of the VPN.
        let routes = desired(&carrying, &demoted, &[(DEFAULT_DESTINATION, 99)]);
        assert!(routes.iter().all(|(r, _)| !r.is_default()), "{:?}", shown(&routes));
    }

    #[test]
    fn routes_behind_the_uplinks_or_to_other_destinations_leave_the_band_alone() {
        let carrying = [uplink(3, "192.168.178.98/24", 101)];
        let foreign = [(DEFAULT_DESTINATION, 1024), ("172.17.0.0/16".parse().unwrap(), 0), (LAN.parse().unwrap(), 100)];
        let routes = desired(&carrying, &["192.168.178.99/24".parse().unwrap()], &foreign);
        assert_eq!(routes.iter().map(|(r, _)| r.metric.unwrap()).collect::<Vec<_>>(), [99, 99]);
    }

    #[test]
    fn only_the_demoted_uplinks_prefixes_get_copies() {
        let carrying = [uplink(2, "192.168.178.99/24", 100), uplink(3, "10.0.0.5/24", 101)];
        let routes = desired(&carrying, &["10.1.0.5/24".parse().unwrap()], &[]);
        assert_eq!(routes.iter().filter(|(r, _)| !r.is_default()).count(), 0, "{:?}", shown(&routes));
        let routes = desired(&carrying, &["192.168.178.97/24".parse().unwrap()], &[]);
        assert_eq!(shown(&routes)[2..], ["192.168.178.0/24 dev #2 scope link src 192.168.178.99 metric 99"]);
    }

    #[test]
    fn more_carrying_uplinks_than_slots_keeps_the_best() {
        let carrying: Vec<Carrying> = (0..50).map(|i| uplink(10 + i, &format!("10.{i}.0.2/24"), 100 + i)).collect();
        let routes = desired(&carrying, &["10.200.0.2/24".parse().unwrap()], &[]);
        assert_eq!(routes.len(), FAILOVER_METRIC_SLOTS as usize);
        assert_eq!(routes[0].1, 10);
        assert_eq!(routes[0].0.metric, Some(METRIC_BASE - FAILOVER_METRIC_SLOTS));
        assert_eq!(routes.last().unwrap().0.metric, Some(METRIC_BASE - 1));
    }

    #[test]
    fn ipv6_gets_the_same_copies_from_its_own_verdicts() {
        let six = |ifindex: u32, address: &str, gateway: &str, metric: u32| Carrying::<ipnet::Ipv6Net> {
            ifindex,
            address: address.parse().unwrap(),
            gateway: gateway.parse().unwrap(),
            metric,
        };
        let carrying = [six(4, "2001:db8:178::97/64", "fe80::1", 102), six(3, "2001:db8:178::98/64", "2001:db8:178::1", 101)];
        let demoted: [ipnet::Ipv6Net; 1] = ["2001:db8:178::99/64".parse().unwrap()];
        let routes = desired(&carrying, &demoted, &[("::/0".parse().unwrap(), 1024)]);
        let shown: Vec<(String, Option<String>, u32, u32)> =
            routes.iter().map(|(r, i)| (r.destination.to_string(), r.gateway.map(|g| g.to_string()), r.metric.unwrap(), *i)).collect();
        assert_eq!(
            shown,
            [
                ("::/0".to_string(), Some("2001:db8:178::1".to_string()), 98, 3),
                ("::/0".to_string(), Some("fe80::1".to_string()), 99, 4),
                ("2001:db8:178::/64".to_string(), None, 98, 3),
                ("2001:db8:178::/64".to_string(), None, 99, 4),
            ]
        );
        assert_eq!(routes[0].0.preferred_source, Some("2001:db8:178::98".parse().unwrap()), "new connections take the carrying uplink's address");
        assert!(desired::<ipnet::Ipv6Net>(&carrying, &[], &[]).is_empty(), "nothing demoted over IPv6: no copies, whatever IPv4 says");
    }
}
