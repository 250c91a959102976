//! The routes and rules of one uplink, given its addresses. Shared by the planner (static
//! addresses, known now) and the dispatcher hook (DHCP addresses, known when the lease arrives).

use super::numbers::rule_priority;
use super::{Prefix, Route, Rule, Table};

/// For each address: `from ADDR` and `to ADDR` rules into the uplink's table (replies to a
/// connection made to ADDR leave where ADDR lives), the link route in that table carrying ADDR
/// as source; then the table's default route and the main-table default ordered by `metric`.
/// The same for both families: IPv6 rules live in their own list, with the same priorities.
pub fn rules_and_routes<N: Prefix>(rank: usize, table: u32, metric: u32, addresses: &[N], gateway: Option<N::Addr>) -> (Vec<Rule<N>>, Vec<Route<N>>) {
    let mut rules = Vec::new();
    let mut routes = Vec::new();
    for (i, net) in addresses.iter().enumerate() {
        let host = N::host(net.addr());
        let priority = rule_priority(rank, i);
        rules.push(Rule { priority, from: Some(host), to: None, table: Table::Id(table) });
        rules.push(Rule { priority: priority + 1, from: None, to: Some(host), table: Table::Id(table) });
        let link = Route { destination: net.trunc(), gateway: None, table: Table::Id(table), metric: None, preferred_source: Some(net.addr()) };
        if !routes.contains(&link) {
            routes.push(link);
        }
    }
    if let Some(gw) = gateway {
        routes.push(Route { destination: N::DEFAULT, gateway: Some(gw), table: Table::Id(table), metric: None, preferred_source: None });
        routes.push(Route { destination: N::DEFAULT, gateway: Some(gw), table: Table::Main, metric: Some(metric), preferred_source: None });
    }
    (rules, routes)
}

/// What the dispatcher hook keeps in place for a DHCP uplink: its rules and its table's link
/// route. The default routes come from the manager's DHCP client (networkd `RouteTable`,
/// NetworkManager `route-table`), which knows the lease's router; the main-table prefix route is
/// the kernel's own.
pub fn dynamic_rules_and_routes<N: Prefix>(rank: usize, table: u32, addresses: &[N]) -> (Vec<Rule<N>>, Vec<Route<N>>) {
    rules_and_routes(rank, table, 0, addresses, None)
}
