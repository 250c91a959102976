//! The daemon's own routing table (`plan::DAEMON_TABLE`) behind its one rule: what it should
//! hold (pure), and making the kernel's copy match by mark and sweep over the routes tagged with
//! `plan::PROTOCOL` — never a route networkd, NetworkManager or the administrator owns.
//!
//! The table holds, for every uplink that carries traffic, its default route (on-link, as
//! every gateway route of the plan) and its link route, both with the plan's metric (best uplink first) and the uplink's own address as
//! source. The link route matters in the seed's topology (every uplink on one subnet): without
//! it, traffic to the LAN would go via the gateway, and a silently dead uplink would still be
//! chosen for LAN destinations by main. With no uplink carrying traffic the table is empty and
//! lookups fall through to main: the daemon never black-holes. A carrier-dead uplink's routes
//! stay until the daemon hears of it, but the kernel already skips them
//! (`ignore_routes_with_linkdown`, set by the plan's sysctls).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::netlink::{self, KernelRoute, Netlink};
use crate::plan::{Route, Rule, Table, DAEMON_RULE_PRIORITY, DAEMON_TABLE, DEFAULT_DESTINATION};

/// An uplink that carries traffic, as far as its routes need to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carrying {
    pub ifindex: u32,
    pub address: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub metric: u32,
}

/// A route of the daemon's table and the interface it leaves through.
pub type TableRoute = (Route, u32);

/// The routes the table should hold, best uplink first.
pub fn desired(carrying: &[Carrying]) -> Vec<TableRoute> {
    let mut routes = Vec::new();
    for c in carrying {
        routes.push((
            Route { destination: DEFAULT_DESTINATION, gateway: Some(c.gateway), table: Table::Id(DAEMON_TABLE), metric: Some(c.metric), preferred_source: Some(c.address.addr()) },
            c.ifindex,
        ));
        if c.address.prefix_len() < 32 {
            routes.push((
                Route { destination: c.address.trunc(), gateway: None, table: Table::Id(DAEMON_TABLE), metric: Some(c.metric), preferred_source: Some(c.address.addr()) },
                c.ifindex,
            ));
        }
    }
    routes
}

/// The daemon's rule: after every uplink's `from`/`to` rules, before main.
pub fn rule() -> Rule {
    Rule { priority: DAEMON_RULE_PRIORITY, from: None, to: None, table: Table::Id(DAEMON_TABLE) }
}

/// The routes of ours that the table holds now.
pub async fn current(nl: &Netlink) -> Result<Vec<KernelRoute>, netlink::Error> {
    Ok(nl.routes_in(Table::Id(DAEMON_TABLE)).await?.into_iter().filter(KernelRoute::is_ours).collect())
}

/// Makes the table hold exactly `want` (of ours): adds first, then removes, so a switch never
/// leaves a moment with neither route. Returns whether anything changed.
pub async fn reconcile(nl: &Netlink, want: &[TableRoute]) -> Result<bool, netlink::Error> {
    let have = current(nl).await?;
    let mut changed = false;
    for (route, ifindex) in want {
        if !have.iter().any(|k| k.is_installed_as(route, *ifindex)) {
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
                // Gone already (its address or link went away): that is what we wanted.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(changed)
}

/// Puts the rule in place unless it is there.
pub async fn ensure_rule(nl: &Netlink) -> Result<(), netlink::Error> {
    let want = rule();
    if nl.our_rules().await?.iter().any(|r| r.as_plan_rule().as_ref() == Some(&want)) {
        return Ok(());
    }
    match nl.add_rule(&want).await {
        Err(e) if e.is_already_exists() => Ok(()),
        other => other,
    }
}

/// Whether the rule of a previous daemon is in place (a restart, not a first start).
pub async fn rule_present(nl: &Netlink) -> Result<bool, netlink::Error> {
    let want = rule();
    Ok(nl.our_rules().await?.iter().any(|r| r.as_plan_rule().as_ref() == Some(&want)))
}

/// Removes the rule and every route of ours in the table: the plain policy remains.
pub async fn remove_all(nl: &Netlink) -> Result<(), netlink::Error> {
    loop {
        match nl.delete_rule(&rule()).await {
            Ok(()) => continue,
            Err(e) if e.is_not_found() => break,
            Err(e) => return Err(e),
        }
    }
    reconcile(nl, &[]).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_carrying_uplink_gets_a_default_and_a_link_route_with_its_metric() {
        let eth0 = Carrying { ifindex: 2, address: "192.168.178.99/24".parse().unwrap(), gateway: "192.168.178.1".parse().unwrap(), metric: 100 };
        let wlan1 = Carrying { ifindex: 3, address: "192.168.178.98/24".parse().unwrap(), gateway: "192.168.178.1".parse().unwrap(), metric: 101 };
        let routes = desired(&[eth0, wlan1]);
        let shown: Vec<String> = routes.iter().map(|(r, i)| crate::plan::show_route(r, &format!("#{i}"))).collect();
        assert_eq!(shown.len(), 4);
        assert_eq!(routes[0].0.gateway, Some("192.168.178.1".parse().unwrap()));
        assert_eq!(routes[0].0.metric, Some(100));
        assert_eq!(routes[1].0.destination, "192.168.178.0/24".parse::<Ipv4Net>().unwrap());
        assert_eq!(routes[1].0.preferred_source, Some("192.168.178.99".parse().unwrap()));
        assert_eq!(routes[3].1, 3);
        assert!(routes.iter().all(|(r, _)| r.table == Table::Id(DAEMON_TABLE)));
    }

    #[test]
    fn nothing_carrying_means_an_empty_table() {
        assert!(desired(&[]).is_empty());
    }

    #[test]
    fn the_rule_sits_before_main() {
        assert!(rule().priority < 32766);
        assert_eq!(rule().table, Table::Id(DAEMON_TABLE));
    }
}
