//! The hook's IPv6 half: an uplink whose IPv6 addresses come and go on their own (SLAAC from
//! router advertisements, its temporary addresses that change every day, DHCPv6) gets a
//! `from`/`to` rule pair into its table for each global address the kernel has now, after the
//! priorities of its static IPv6 addresses (networkd's rules); the pairs of addresses that went
//! are removed. Its table's default route through the advertised router is networkd's own
//! (`Gateway=_ipv6ra`); NetworkManager puts that router in one table only, main (where
//! `ipv6.route-metric` orders the uplinks), so under it the hook copies the router into the
//! uplink's table ([`AdvertisedRouter::Hook`]) and takes the copy away when the router goes
//! from main (lifetime 0, a new router) or the uplink goes down.
//!
//! Reconciled from the kernel's addresses, not from the event's: a dispatcher names at most
//! some of them, and whatever runs the hook (an event of the uplink, `apply`) then sees them all.

use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

use super::event::MAX_ADDRESSES;
use super::rule_range::is_uplink_rule;
use crate::netlink::{self, DefaultRoute6, KernelRule, Netlink};
use crate::plan::{self, Plan, Rule, Table, UplinkPlan};
use crate::policy;

/// Whether the policy gives `u` IPv6 addresses that only the kernel knows.
pub fn has_dynamic_ipv6(u: &UplinkPlan) -> bool {
    u.ipv6.as_ref().is_some_and(|v6| v6.accept_ra || v6.dhcp)
}

/// The rules for the dynamic addresses among the uplink's global IPv6 addresses `on_link`,
/// in address order (so a new temporary address moves as few pairs as possible), up to the
/// uplink's room for addresses. Pure.
pub fn wanted_rules(u: &UplinkPlan, on_link: &[Ipv6Net]) -> (Vec<Ipv6Net>, Vec<Rule<Ipv6Net>>) {
    let statics = u.ipv6.as_ref().map_or(&[][..], |v6| &v6.addresses[..]);
    let mut dynamic: Vec<Ipv6Net> = on_link.iter().filter(|n| !statics.iter().any(|s| s.addr() == n.addr())).copied().collect();
    dynamic.sort_by_key(|n| n.addr());
    dynamic.dedup_by_key(|n| n.addr());
    dynamic.truncate(MAX_ADDRESSES.saturating_sub(statics.len()));
    let mut rules = Vec::new();
    for (i, net) in dynamic.iter().enumerate() {
        let priority = plan::rule_priority(u.rank, statics.len() + i);
        let host = Ipv6Net::from(net.addr());
        rules.push(Rule { priority, from: Some(host), to: None, table: Table::Id(u.table) });
        rules.push(Rule { priority: priority + 1, from: None, to: Some(host), table: Table::Id(u.table) });
    }
    (dynamic, rules)
}

/// Who puts an uplink's advertised router into its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdvertisedRouter {
    /// The network manager itself (networkd's `[Route] Gateway=_ipv6ra` in the uplink's table):
    /// the hook leaves the table's default route alone.
    Manager,
    /// The hook: a copy of the manager's advertised default route in main (NetworkManager's,
    /// protocol `ra`, at the uplink's metric), tagged with multihome's protocol.
    Hook,
}

impl AdvertisedRouter {
    /// Who puts the advertised router into the uplinks' tables on this host, for the daemon
    /// (which has no dispatcher to tell it): the choice `apply` makes of its backend, from the
    /// policy's `Backend=`, and with `auto` whether NetworkManager owns its name on the bus.
    pub async fn on_this_host(backend: policy::Backend) -> AdvertisedRouter {
        let nm = match backend {
            policy::Backend::NetworkManager => true,
            policy::Backend::Networkd => false,
            policy::Backend::Auto => crate::bus::runs_on_system_bus(crate::bus::NETWORK_MANAGER).await,
        };
        if nm { AdvertisedRouter::Hook } else { AdvertisedRouter::Manager }
    }
}

/// The router the uplink's table should have a copy of: the uplink takes the advertised router
/// (no static IPv6 `Gateway=`) and main has a default route of someone else's through a router
/// on its interface (the best one, should there be several). Pure.
pub fn advertised_router(u: &UplinkPlan, ifindex: u32, routes: &[DefaultRoute6]) -> Option<Ipv6Addr> {
    u.ipv6.as_ref().filter(|v6| v6.accept_ra && v6.gateway.is_none())?;
    routes.iter().filter(|r| r.table == Table::Main.number() && r.ifindex == ifindex && !r.is_ours()).min_by_key(|r| (r.metric, r.gateway)).map(|r| r.gateway)
}

/// What one IPv6 reconcile did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome6 {
    pub addresses: Vec<Ipv6Net>,
    pub rules_added: usize,
    pub rules_removed: usize,
    pub routes_set: usize,
    pub routes_removed: usize,
}

/// Makes `u`'s IPv6 rules of multihome's match the addresses on `ifindex` now, and, where the
/// hook copies the advertised router, its table's default route the router in main; `None`
/// (down, or gone): removes them all. Adds before it removes, so a changed address set or
/// router never leaves a moment without its rules or route.
pub async fn reconcile(u: &UplinkPlan, ifindex: Option<u32>, router: AdvertisedRouter, nl: &Netlink) -> Result<Outcome6, netlink::Error> {
    let on_link = match ifindex {
        Some(i) => nl.ipv6_addresses(i).await?,
        None => Vec::new(),
    };
    let (addresses, wanted) = wanted_rules(u, &on_link);
    let mut out = Outcome6 { addresses, ..Outcome6::default() };
    let existing: Vec<Rule<Ipv6Net>> =
        nl.our_rules6().await?.iter().filter(|r| is_uplink_rule(r.table, r.priority, r.is_ours(), u.table)).filter_map(KernelRule::as_plan_rule).collect();
    for want in &wanted {
        if !existing.contains(want) {
            match nl.add_rule6(want).await {
                Ok(()) => out.rules_added += 1,
                Err(e) if e.is_already_exists() => {}
                Err(e) => return Err(e),
            }
        }
    }
    for have in existing.iter().filter(|r| !wanted.contains(r)) {
        match nl.delete_rule6(have).await {
            Ok(()) => out.rules_removed += 1,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    if router == AdvertisedRouter::Hook {
        reconcile_router(u, ifindex, nl, &mut out).await?;
    }
    Ok(out)
}

/// The copy of the advertised router in `u`'s table: set to the router main has on `ifindex`
/// now, removed when there is none (or `ifindex` is `None`).
async fn reconcile_router(u: &UplinkPlan, ifindex: Option<u32>, nl: &Netlink, out: &mut Outcome6) -> Result<(), netlink::Error> {
    let routes = nl.default_routes6().await?;
    let wanted = ifindex.and_then(|i| Some((advertised_router(u, i, &routes)?, i)));
    let existing: Vec<&DefaultRoute6> = routes.iter().filter(|r| r.table == u.table && r.is_ours()).collect();
    if let Some((gateway, ifindex)) = wanted
        && !existing.iter().any(|r| r.gateway == gateway && r.ifindex == ifindex)
    {
        nl.replace_default6(gateway, u.table, ifindex).await?;
        out.routes_set += 1;
    }
    for have in existing.iter().filter(|r| wanted != Some((r.gateway, r.ifindex))) {
        match nl.delete_default6(have).await {
            Ok(()) => out.routes_removed += 1,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The hook's IPv6 rules that no uplink with dynamic IPv6 owns any more (an earlier policy's).
pub fn stale_rules(plan: &Plan, kernel: &[KernelRule<Ipv6Net>]) -> Vec<Rule<Ipv6Net>> {
    let owned = |r: &KernelRule<Ipv6Net>| plan.uplinks().iter().filter(|u| has_dynamic_ipv6(u)).any(|u| is_uplink_rule(r.table, r.priority, true, u.table));
    kernel.iter().filter(|r| r.is_ours() && !owned(r)).filter_map(KernelRule::as_plan_rule).collect()
}

/// The hook's copies of advertised routers that no uplink with dynamic IPv6 owns any more (an
/// earlier policy's table); main is the daemon's, never the hook's.
pub fn stale_routers(plan: &Plan, kernel: &[DefaultRoute6]) -> Vec<DefaultRoute6> {
    let owned = |r: &DefaultRoute6| r.table == Table::Main.number() || plan.uplinks().iter().filter(|u| has_dynamic_ipv6(u)).any(|u| u.table == r.table);
    kernel.iter().filter(|r| r.is_ours() && !owned(r)).cloned().collect()
}

/// Removes [`stale_rules`] and [`stale_routers`]; the rules it removed, and how many routes.
pub async fn sweep(plan: &Plan, nl: &Netlink) -> Result<(Vec<Rule<Ipv6Net>>, usize), netlink::Error> {
    let mut swept = Vec::new();
    for rule in stale_rules(plan, &nl.our_rules6().await?) {
        match nl.delete_rule6(&rule).await {
            Ok(()) => swept.push(rule),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    let mut routes = 0;
    for route in stale_routers(plan, &nl.default_routes6().await?) {
        match nl.delete_default6(&route).await {
            Ok(()) => routes += 1,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok((swept, routes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "[Uplink]\nInterface=eth0\nPriority=1\nAddress=192.168.178.99/24\nAddress=2001:db8:178::99/64\nGateway=192.168.178.1\nGateway=fe80::1\nIPv6AcceptRA=yes\n\
                          [Uplink]\nInterface=wlan1\nPriority=2\nAddress=2001:db8:178::98/64\nGateway=fe80::1\n\
                          [Uplink]\nInterface=wlan0\nPriority=3\nDHCP=ipv6\n";

    fn plan() -> Plan {
        plan::plan(&crate::policy::parse("t", POLICY).unwrap())
    }

    fn nets(s: &[&str]) -> Vec<Ipv6Net> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn dynamic_addresses_get_rule_pairs_after_the_static_ones_in_address_order() {
        let plan = plan();
        let eth0 = plan.uplink("eth0").unwrap();
        // The static address (networkd's rules), a temporary and a SLAAC address, unsorted.
        let (addresses, rules) = wanted_rules(eth0, &nets(&["2001:db8:178::99/64", "2001:db8:178:0:ffff::1/64", "2001:db8:178:0:aaaa::1/64"]));
        assert_eq!(addresses, nets(&["2001:db8:178:0:aaaa::1/64", "2001:db8:178:0:ffff::1/64"]));
        let shown: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            shown,
            [
                "10002:\tfrom 2001:db8:178:0:aaaa::1 lookup 101",
                "10003:\tfrom all to 2001:db8:178:0:aaaa::1 lookup 101",
                "10004:\tfrom 2001:db8:178:0:ffff::1 lookup 101",
                "10005:\tfrom all to 2001:db8:178:0:ffff::1 lookup 101"
            ]
        );
        // DHCPv6 (a /128) on an uplink without static IPv6: from the uplink's first priority.
        let wlan0 = plan.uplink("wlan0").unwrap();
        let (_, rules) = wanted_rules(wlan0, &nets(&["2001:db8:178::1234/128"]));
        assert_eq!(rules[0].to_string(), "10200:\tfrom 2001:db8:178::1234 lookup 103");
    }

    #[test]
    fn only_uplinks_with_addresses_of_their_own_are_the_hooks_and_room_is_bounded() {
        let plan = plan();
        let dynamic: Vec<&str> = plan.uplinks().iter().filter(|u| has_dynamic_ipv6(u)).map(|u| u.interface.as_str()).collect();
        assert_eq!(dynamic, ["eth0", "wlan0"]);
        let eth0 = plan.uplink("eth0").unwrap();
        let many: Vec<Ipv6Net> = (1..=80u16).map(|i| Ipv6Net::new(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0x178, 0, 0, 0, 1, i), 64).unwrap()).collect();
        let (addresses, rules) = wanted_rules(eth0, &many);
        assert_eq!(addresses.len(), MAX_ADDRESSES - 1);
        assert!(rules.iter().all(|r| r.priority < plan::rule_priority(1, 0)), "the rules stay in eth0's range");
    }

    #[test]
    fn the_hook_copies_the_best_foreign_router_in_main_on_the_uplinks_interface_only_where_the_uplink_takes_advertisements() {
        let plan = plan();
        let route = |gateway: &str, table: u32, metric: u32, ifindex: u32, protocol: u8| DefaultRoute6 {
            gateway: gateway.parse().unwrap(),
            table,
            metric,
            ifindex,
            protocol,
        };
        let routes = [
            // The daemon's copy in main (ours), another interface's router, another table's.
            route("fe80::9", 254, 98, 3, 77),
            route("fe80::8", 254, 100, 2, netlink::PROTOCOL_RA),
            route("fe80::7", 103, 1024, 3, netlink::PROTOCOL_RA),
            // Two routers advertised on wlan0 (ifindex 3): the better metric wins.
            route("fe80::2", 254, 102, 3, netlink::PROTOCOL_RA),
            route("fe80::1", 254, 101, 3, netlink::PROTOCOL_RA),
        ];
        let wlan0 = plan.uplink("wlan0").unwrap();
        assert_eq!(advertised_router(wlan0, 3, &routes), Some("fe80::1".parse().unwrap()));
        assert_eq!(advertised_router(wlan0, 4, &routes), None, "no router on that interface");
        // eth0 takes advertisements but names its router (Gateway=fe80::1): its table has it already.
        assert_eq!(advertised_router(plan.uplink("eth0").unwrap(), 2, &routes), None);
        // wlan1 is static.
        assert_eq!(advertised_router(plan.uplink("wlan1").unwrap(), 2, &routes), None);
    }

    #[test]
    fn router_copies_in_a_table_no_dynamic_uplink_has_are_stale_and_mains_are_the_daemons() {
        let plan = plan();
        let route = |table: u32, protocol: u8| DefaultRoute6 { gateway: "fe80::1".parse().unwrap(), table, metric: 1024, ifindex: 2, protocol };
        // eth0 (101) and wlan0 (103) take advertisements; wlan1 (102) is static; 104 is no uplink's.
        let kernel = [route(101, 77), route(102, 77), route(103, 77), route(104, 77), route(104, netlink::PROTOCOL_RA), route(254, 77)];
        let stale: Vec<u32> = stale_routers(&plan, &kernel).iter().map(|r| r.table).collect();
        assert_eq!(stale, [102, 104]);
    }

    #[test]
    fn an_earlier_policys_ipv6_rules_are_stale_and_the_current_ones_are_not() {
        let plan = plan();
        let rule = |priority: u32, table: u32, protocol: u8| KernelRule::<Ipv6Net> {
            priority,
            from: Some("2001:db8:178::5/128".parse().unwrap()),
            to: None,
            table,
            action: netlink::RuleAction::ToTable,
            protocol,
            other_selectors: false,
        };
        let kernel = [rule(10002, 101, 77), rule(10200, 103, 77), rule(10100, 102, 77), rule(10100, 102, 4)];
        let stale = stale_rules(&plan, &kernel);
        // wlan1 (table 102) has static IPv6 only now; networkd's own rule (protocol 4) is not ours.
        assert_eq!(stale.iter().map(|r| (r.priority, r.table.number())).collect::<Vec<_>>(), [(10100, 102)]);
    }
}
