//! The hook itself: for a DHCP uplink, make its `from ADDR`/`to ADDR` rules and its table's
//! routes (the link route, and the default route where the manager does not put one) match the
//! addresses it has now, or remove them when it goes down.
//!
//! It reconciles like networkd does (mark what exists, keep what is wanted, remove the rest)
//! and touches only what carries multihome's protocol in this uplink's table and rule
//! priorities, so it is idempotent, leaves the manager's and the administrator's rules alone,
//! and a second run changes nothing. Static uplinks are the manager's business; other
//! interfaces are none of ours.
//!
//! After an apply, [`refresh`] also sweeps what the hook added under an earlier policy (a
//! table or rank that changed, an uplink that went or became static): every rule and route with
//! multihome's protocol that no DHCP uplink of the policy owns now, except the daemon's copies in main.

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::{Ipv4Net, Ipv6Net};

use super::event::Dispatcher;
use super::event::{Event, Kind, MAX_ADDRESSES};
use super::ipv6::{self, AdvertisedRouter, has_dynamic_ipv6};
use super::rule_range::is_uplink_rule;
use crate::netlink::{self, KernelRoute, KernelRule, Netlink, RouteKind};
use crate::plan::{self, Addresses, DEFAULT_DESTINATION, Plan, Route, Rule, Table, UplinkPlan};

/// What one run changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The addresses the rules are for now (empty after down).
    pub addresses: Vec<Ipv4Net>,
    /// Addresses the event named that the interface no longer has (a stale event; the next
    /// one brings the new ones).
    pub gone: Vec<Ipv4Addr>,
    /// The SLAAC and DHCPv6 addresses the IPv6 rules are for now (see [`ipv6`]).
    pub addresses6: Vec<Ipv6Net>,
    pub rules_added: usize,
    pub rules_removed: usize,
    pub routes_set: usize,
    pub routes_removed: usize,
}

impl Outcome {
    pub fn changed_anything(&self) -> bool {
        self.rules_added + self.rules_removed + self.routes_set + self.routes_removed > 0
    }
}

/// Applies `event` for the uplink it names. `None` when the event is not multihome's business
/// (ignored action, not an uplink, a static uplink).
pub async fn apply(plan: &Plan, event: &Event, nl: &Netlink) -> Result<Option<Outcome>, netlink::Error> {
    let Some(uplink) = plan.uplink(&event.interface) else { return Ok(None) };
    let dhcp4 = matches!(uplink.addresses, Addresses::Dhcp(_));
    if !dhcp4 && !has_dynamic_ipv6(uplink) {
        return Ok(None);
    }
    if event.kind == Kind::Ignore {
        return Ok(None);
    }
    let v4_event = matches!(event.kind, Kind::Up { .. } | Kind::Down);
    let mut outcome = if dhcp4 && v4_event { apply_ipv4(uplink, event, nl).await? } else { Outcome::default() };
    if has_dynamic_ipv6(uplink) {
        let ifindex = match (&event.kind, nl.ifindex(&uplink.interface).await) {
            (Kind::Up { .. } | Kind::Ipv6Changed, Ok(i)) => Some(i),
            (_, Err(e)) if !e.is_not_found() => return Err(e),
            _ => None,
        };
        let router = match event.dispatcher {
            Dispatcher::NetworkManager => AdvertisedRouter::Hook,
            Dispatcher::Networkd => AdvertisedRouter::Manager,
        };
        outcome.add_ipv6(ipv6::reconcile(uplink, ifindex, router, nl).await?);
    }
    Ok(Some(outcome))
}

async fn apply_ipv4(uplink: &UplinkPlan, event: &Event, nl: &Netlink) -> Result<Outcome, netlink::Error> {
    match &event.kind {
        Kind::Ignore | Kind::Ipv6Changed => Ok(Outcome::default()),
        Kind::Down => reconcile(uplink, None, &[], None).run(nl).await,
        Kind::Up { addresses, gateway } => {
            let ifindex = match nl.ifindex(&uplink.interface).await {
                Ok(i) => i,
                // Gone between the event and now: nothing of it may stay.
                Err(e) if e.is_not_found() => return reconcile(uplink, None, &[], None).run(nl).await,
                Err(e) => return Err(e),
            };
            let on_link = nl.ipv4_addresses(ifindex).await?;
            let mut current = Vec::new();
            let mut gone = Vec::new();
            for a in addresses {
                // The kernel's prefix length: networkd-dispatcher gives none, and the kernel's is
                // the one its prefix route uses.
                match on_link.iter().find(|n| n.addr() == a.addr) {
                    Some(n) => current.push(*n),
                    None => gone.push(a.addr),
                }
            }
            let mut outcome = reconcile(uplink, Some(ifindex), &current, *gateway).run(nl).await?;
            outcome.gone = gone;
            Ok(outcome)
        }
    }
}

/// What [`refresh`] did: each DHCP uplink's outcome, and what it swept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Refreshed {
    pub uplinks: Vec<(String, Outcome)>,
    pub swept: Swept,
}

/// Rules and routes of multihome's protocol that no DHCP uplink of the policy owns any more,
/// removed by [`refresh`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub rules: Vec<Rule>,
    pub rules6: Vec<Rule<Ipv6Net>>,
    /// Copies of advertised routers in tables no uplink with SLAAC or DHCPv6 has now.
    pub routers6: usize,
    pub routes: Vec<Route>,
}

/// Makes every DHCP uplink's rules and table routes match the addresses its interface has now,
/// without a dispatcher event: for `multihome apply` and a confirmed `multihome try` (a lease
/// that arrived before the policy). IPv4 link-local addresses get no rules: they are no lease.
/// Then sweeps what the hook added under an earlier policy (see [`stale_rules`]). `router`:
/// whether the manager that realised the plan puts the advertised router into the tables itself.
pub async fn refresh(plan: &Plan, router: AdvertisedRouter, nl: &Netlink) -> Result<Refreshed, netlink::Error> {
    let mut refreshed = Refreshed::default();
    for uplink in plan.uplinks().iter().filter(|u| matches!(u.addresses, Addresses::Dhcp(_)) || has_dynamic_ipv6(u)) {
        let ifindex = match nl.ifindex(&uplink.interface).await {
            Ok(i) => Some(i),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let mut outcome = if matches!(uplink.addresses, Addresses::Dhcp(_)) { refresh_ipv4(uplink, nl).await? } else { Outcome::default() };
        if has_dynamic_ipv6(uplink) {
            outcome.add_ipv6(ipv6::reconcile(uplink, ifindex, router, nl).await?);
        }
        refreshed.uplinks.push((uplink.interface.clone(), outcome));
    }
    refreshed.swept = sweep(plan, nl).await?;
    (refreshed.swept.rules6, refreshed.swept.routers6) = ipv6::sweep(plan, nl).await?;
    Ok(refreshed)
}

async fn refresh_ipv4(uplink: &UplinkPlan, nl: &Netlink) -> Result<Outcome, netlink::Error> {
    match nl.ifindex(&uplink.interface).await {
        Ok(ifindex) => refresh_ipv4_on(uplink, ifindex, nl).await,
        Err(e) if e.is_not_found() => reconcile(uplink, None, &[], None).run(nl).await,
        Err(e) => Err(e),
    }
}

/// The rules and routes of the IPv4 addresses `ifindex` has now, as `up` with all of them.
async fn refresh_ipv4_on(uplink: &UplinkPlan, ifindex: u32, nl: &Netlink) -> Result<Outcome, netlink::Error> {
    let current: Vec<Ipv4Net> = nl.ipv4_addresses(ifindex).await?.into_iter().filter(|n| !n.addr().is_link_local()).collect();
    let current = &current[..current.len().min(MAX_ADDRESSES)];
    reconcile(uplink, Some(ifindex), current, None).run(nl).await
}

/// The hook's work for one uplink from the kernel's state instead of a dispatcher's event: what
/// [`apply`] does for the event the link's state would bring now (`up` with every address it
/// has while it has carrier; `down` without carrier, as networkd-dispatcher's `no-carrier`, or
/// when it is gone), IPv4 and IPv6 alike. The daemon runs it at start and on the uplink's link
/// and address events, so a host without a dispatcher (networkd without networkd-dispatcher, a
/// reboot without `apply`) gets the hook's rules as soon as the kernel has the lease; the hook
/// and the daemon compute the same state from the same kernel, so neither undoes the other.
/// `None` for an uplink that is not the hook's business (static addresses only).
pub async fn reconcile_uplink(uplink: &UplinkPlan, router: AdvertisedRouter, nl: &Netlink) -> Result<Option<Outcome>, netlink::Error> {
    let dhcp4 = matches!(uplink.addresses, Addresses::Dhcp(_));
    if !dhcp4 && !has_dynamic_ipv6(uplink) {
        return Ok(None);
    }
    let ifindex = match nl.link(&uplink.interface).await {
        Ok(l) if l.admin_up && l.carrier => Some(l.index),
        Ok(_) => None,
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    let mut outcome = match (dhcp4, ifindex) {
        (false, _) => Outcome::default(),
        (true, Some(i)) => refresh_ipv4_on(uplink, i, nl).await?,
        (true, None) => reconcile(uplink, None, &[], None).run(nl).await?,
    };
    if has_dynamic_ipv6(uplink) {
        outcome.add_ipv6(ipv6::reconcile(uplink, ifindex, router, nl).await?);
    }
    Ok(Some(outcome))
}

fn dhcp_uplinks(plan: &Plan) -> impl Iterator<Item = &UplinkPlan> {
    plan.uplinks().iter().filter(|u| matches!(u.addresses, Addresses::Dhcp(_)))
}

/// Mark and sweep, as networkd does with what it configured: everything of multihome's
/// protocol that the plan's DHCP uplinks do not own goes.
async fn sweep(plan: &Plan, nl: &Netlink) -> Result<Swept, netlink::Error> {
    let mut swept = Swept::default();
    for rule in stale_rules(plan, &nl.our_rules().await?) {
        match nl.delete_rule(&rule).await {
            Ok(()) => swept.rules.push(rule),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    for (route, ifindex) in stale_routes(plan, &nl.routes().await?) {
        match nl.delete_route(&route, ifindex).await {
            Ok(()) => swept.routes.push(route),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(swept)
}

/// The hook's rules that no DHCP uplink of `plan` owns: of multihome's protocol (the daemon has
/// none; a daemon before 0.2 had one, which goes too), and not in a DHCP uplink's table at uplink priorities (those are the uplink's own,
/// which its reconcile keeps right, also while a lease event runs beside the sweep).
pub fn stale_rules(plan: &Plan, kernel: &[KernelRule]) -> Vec<Rule> {
    let owned = |r: &KernelRule| dhcp_uplinks(plan).any(|u| is_uplink_rule(r.table, r.priority, r.is_ours(), u.table));
    kernel.iter().filter(|r| r.is_ours() && !owned(r)).filter_map(KernelRule::as_plan_rule).collect()
}

/// The hook's routes that no DHCP uplink of `plan` owns: of multihome's protocol, outside main
/// (the daemon's copies; the hook never writes there) and outside every DHCP uplink's table
/// (the hook owns those whole), with the interface they are on.
pub fn stale_routes(plan: &Plan, kernel: &[KernelRoute]) -> Vec<(Route, u32)> {
    let owned = |r: &KernelRoute| r.table() == Table::Main || dhcp_uplinks(plan).any(|u| u.table == r.table);
    kernel.iter().filter(|r| r.is_ours() && !owned(r)).filter_map(|r| Some((r.as_plan_route(), r.ifindex?))).collect()
}

struct Reconcile<'a> {
    uplink: &'a UplinkPlan,
    /// `None` when down: the routes go whatever interface they were on.
    ifindex: Option<u32>,
    addresses: Vec<Ipv4Net>,
    /// The lease's router as the dispatcher named it.
    gateway: Option<Ipv4Addr>,
    rules: Vec<Rule>,
    routes: Vec<Route>,
}

fn reconcile<'a>(uplink: &'a UplinkPlan, ifindex: Option<u32>, addresses: &[Ipv4Net], gateway: Option<Ipv4Addr>) -> Reconcile<'a> {
    let (rules, routes) = plan::dynamic_rules_and_routes(uplink.rank, uplink.table, addresses);
    // A router the dispatcher names is used only if it is on one of the uplink's subnets.
    let gateway = gateway.filter(|g| addresses.iter().any(|n| n.contains(g)));
    Reconcile { uplink, ifindex, addresses: addresses.to_vec(), gateway, rules, routes }
}

impl Reconcile<'_> {
    /// A rule the hook added for this uplink: ours, into its table, among the uplink rules.
    fn ours_rule(&self, r: &KernelRule) -> bool {
        is_uplink_rule(r.table, r.priority, r.is_ours(), self.uplink.table)
    }

    async fn run(self, nl: &Netlink) -> Result<Outcome, netlink::Error> {
        let mut out = Outcome { addresses: self.addresses.clone(), ..Outcome::default() };
        let table = Table::Id(self.uplink.table);

        // Rules: add the missing ones first, so a changed lease never leaves a moment without.
        let existing: Vec<KernelRule> = nl.our_rules().await?.into_iter().filter(|r| self.ours_rule(r)).collect();
        let existing_plan: Vec<Option<Rule>> = existing.iter().map(KernelRule::as_plan_rule).collect();
        for want in &self.rules {
            if !existing_plan.iter().any(|r| r.as_ref() == Some(want)) {
                match nl.add_rule(want).await {
                    Ok(()) => out.rules_added += 1,
                    Err(e) if e.is_already_exists() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        for rule in existing_plan.iter().flatten() {
            if !self.rules.contains(rule) {
                match nl.delete_rule(rule).await {
                    Ok(()) => out.rules_removed += 1,
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }

        // Routes: all of ours in the uplink's table. Its default route is the manager's where
        // the manager can put it there (networkd's RouteTable); NetworkManager cannot (its DHCP
        // default goes to one table only, main for the metric order), so the hook adds one via
        // the router the dispatcher named, else that of the manager's main-table default route
        // on this interface (NetworkManager may dispatch `up` before that route is in place).
        let routes = nl.routes().await?;
        let mut wanted = self.routes.clone();
        if let Some(ifindex) = self.ifindex
            && !self.addresses.is_empty()
            && let Some(gateway) = table_default_gateway(&routes, ifindex, self.uplink.table, self.gateway)
        {
            wanted.push(Route { destination: DEFAULT_DESTINATION, gateway: Some(gateway), table, metric: None, preferred_source: None });
        }
        let existing: Vec<_> = routes.into_iter().filter(|r| r.table == self.uplink.table && r.is_ours()).collect();
        if let Some(ifindex) = self.ifindex {
            for want in &wanted {
                if !existing.iter().any(|r| r.is_installed_as(want, ifindex)) {
                    nl.replace_route(want, ifindex).await?;
                    out.routes_set += 1;
                }
            }
        }
        for have in &existing {
            // Kept also when the replace above only updated its flags: deleting the old copy
            // would take the new one with it.
            if self.ifindex.is_some_and(|i| wanted.iter().any(|w| have.is_same(w, i))) {
                continue;
            }
            let Some(ifindex) = have.ifindex else { continue };
            // One that the replace above changed in place no longer matches: NotFound.
            match nl.delete_route(&have.as_plan_route(), ifindex).await {
                Ok(()) => out.routes_removed += 1,
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// The router the uplink's table needs a default route through, when the hook must add it:
/// there is no default route on this interface in the table from anyone else; the router is
/// the one the dispatcher named, else that of the manager's DHCP default route in main.
fn table_default_gateway(routes: &[KernelRoute], ifindex: u32, table: u32, named: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
    let default_here = |r: &&KernelRoute| r.destination.prefix_len() == 0 && r.ifindex == Some(ifindex) && r.kind == RouteKind::Unicast && !r.is_ours();
    if routes.iter().filter(default_here).any(|r| r.table == table) {
        return None;
    }
    if named.is_some() {
        return named;
    }
    routes.iter().filter(default_here).filter(|r| r.table == Table::Main.number()).min_by_key(|r| r.metric).and_then(|r| r.gateway)
}

/// `2 rules and 1 route of an earlier policy removed`, or nothing when there were none.
impl fmt::Display for Swept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (rules, routes) = (self.rules.len() + self.rules6.len(), self.routes.len() + self.routers6);
        let s = |n: usize| if n == 1 { "" } else { "s" };
        write!(f, "{rules} rule{} and {routes} route{} of an earlier policy removed", s(rules), s(routes))?;
        for r in &self.rules {
            write!(f, "\n  rule {r}")?;
        }
        for r in &self.rules6 {
            write!(f, "\n  rule {r}")?;
        }
        for r in &self.routes {
            write!(f, "\n  route {}", plan::show_route(r, "*"))?;
        }
        Ok(())
    }
}

impl Swept {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.rules6.is_empty() && self.routes.is_empty() && self.routers6 == 0
    }
}

impl Outcome {
    fn add_ipv6(&mut self, o: ipv6::Outcome6) {
        self.addresses6 = o.addresses;
        self.rules_added += o.rules_added;
        self.rules_removed += o.rules_removed;
        self.routes_set += o.routes_set;
        self.routes_removed += o.routes_removed;
    }
}

/// The second half of the log line: `rules for 192.168.178.156/24: 2 rules added, 1 route set`.
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let none = self.addresses.is_empty() && self.addresses6.is_empty();
        if none && !self.changed_anything() {
            f.write_str("no addresses, and no rules of multihome's")?;
        } else if none {
            f.write_str("no addresses")?;
        } else {
            f.write_str("rules for")?;
            for a in &self.addresses {
                write!(f, " {a}")?;
            }
            for a in &self.addresses6 {
                write!(f, " {a}")?;
            }
        }
        if !self.changed_anything() {
            if !none {
                f.write_str(": already in place")?;
            }
        } else {
            let parts = [
                (self.rules_added, "rule", "added"),
                (self.rules_removed, "rule", "removed"),
                (self.routes_set, "route", "set"),
                (self.routes_removed, "route", "removed"),
            ];
            let said: Vec<String> =
                parts.iter().filter(|(n, ..)| *n > 0).map(|(n, what, verb)| format!("{n} {what}{} {verb}", if *n == 1 { "" } else { "s" })).collect();
            write!(f, ": {}", said.join(", "))?;
        }
        if !self.gone.is_empty() {
            let gone: Vec<String> = self.gone.iter().map(|a| a.to_string()).collect();
            write!(f, " (no longer on the interface: {})", gone.join(" "))?;
        }
        Ok(())
    }
}
