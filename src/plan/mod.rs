//! The desired state: what the policy means for routes, rules and sysctls, as a plain value.
//!
//! [`plan`] is a pure function of the policy (no clock, files or kernel); every backend renders
//! or applies the [`Plan`] it returns, so networkd, NetworkManager, the dispatcher hooks and the
//! daemon can never disagree about a table number or a metric.

pub mod bond;
mod family;
pub mod mptcp;
mod numbers;
mod show;
mod sysctl;
mod uplink;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::policy::{Addressing, Dhcp, Policy, Probe, timespan};

pub use family::Prefix;

pub use crate::numbers::{
    FAILOVER_METRIC_SLOTS, LEGACY_DAEMON_RULE_PRIORITY, LEGACY_DAEMON_TABLE, MAX_ADDRESSES, MAX_UPLINKS, METRIC_BASE, PROTOCOL, RULE_PRIORITY_END,
};
pub use numbers::rule_priority;
pub use show::route as show_route;
pub use sysctl::{Ipv6Router, Sysctl};
pub use uplink::dynamic_rules_and_routes;

/// A routing table: the kernel's main table or one of the numbered ones. In JSON its number, as
/// the kernel knows it (`"table": 101`, main is 254).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Main,
    Id(u32),
}

impl Serialize for Table {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.number())
    }
}

impl Table {
    pub fn number(self) -> u32 {
        match self {
            Table::Main => 254,
            Table::Id(n) => n,
        }
    }
}

/// A route the plan wants on an uplink's interface: IPv4 unless said (`Route<Ipv6Net>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Route<N: Prefix = Ipv4Net> {
    pub destination: N,
    /// Always on the uplink's own link (validation puts it inside the uplink's prefix), so
    /// backends install it as on-link: otherwise the kernel refuses a gateway route while the
    /// link route it would resolve through is missing or skipped as linkdown, which is exactly
    /// the moment carrier returns (seen in the lab: networkd failed the link). IPv6 is the
    /// exception, see [`Prefix::GATEWAY_ONLINK`].
    pub gateway: Option<N::Addr>,
    pub table: Table,
    /// `None` leaves the kernel's default (0) where order does not matter (inside an uplink's
    /// own table there is one route per destination).
    pub metric: Option<u32>,
    /// Set on link routes so that the table's own traffic leaves with this uplink's address.
    pub preferred_source: Option<N::Addr>,
}

/// The destination of a default route, `0.0.0.0/0`.
pub const DEFAULT_DESTINATION: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0);

impl<N: Prefix> Route<N> {
    pub fn is_default(&self) -> bool {
        self.destination.prefix_len() == 0
    }
}

/// A routing-policy rule (`ip rule`; `ip -6 rule` for `Rule<Ipv6Net>`). The two families have
/// separate rule lists in the kernel, so an uplink's IPv6 rules reuse its IPv4 priorities.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Rule<N: Prefix = Ipv4Net> {
    pub priority: u32,
    pub from: Option<N>,
    pub to: Option<N>,
    pub table: Table,
}

/// Where an uplink's address comes from, as far as the plan needs to know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Addresses {
    Static(Vec<Ipv4Net>),
    /// Known only when the lease arrives: the dispatcher hook adds the rules then, from
    /// [`dynamic_rules_and_routes`].
    Dhcp(Dhcp),
}

/// Everything the plan wants for one uplink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UplinkPlan {
    pub interface: String,
    /// 0 for the most preferred uplink.
    pub rank: usize,
    /// This uplink's own routing table, for traffic that is bound to its address.
    pub table: u32,
    /// Metric of this uplink's routes in the main table (its default route and its prefix
    /// routes), which orders the uplinks for connections with a wildcard source.
    pub metric: u32,
    pub addresses: Addresses,
    /// `None` only for DHCP uplinks that take the lease's router.
    pub gateway: Option<Ipv4Addr>,
    /// Routes known now (all of them for static uplinks; for DHCP ones none, see `Addresses`).
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
    /// The uplink's IPv6 side, in the same table; `None` when the policy leaves IPv6 to the
    /// network manager.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Ipv6Plan>,
    /// Its MPTCP endpoint; `None` without one.
    pub mptcp: Option<mptcp::Endpoint>,
    /// How the daemon probes this uplink.
    pub probe: UplinkProbe,
}

/// One uplink's IPv6: the same table and main-table metric as its IPv4, so one order holds for
/// both families.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ipv6Plan {
    /// Static global addresses; SLAAC and DHCPv6 ones get their rules when they appear.
    pub addresses: Vec<Ipv6Net>,
    /// `None`: the router named by the advertisements (`accept_ra`), or none at all.
    pub gateway: Option<Ipv6Addr>,
    pub dhcp: bool,
    /// SLAAC, and the advertised router as default route (in main at the uplink's metric and
    /// in its table) unless `gateway` names one.
    pub accept_ra: bool,
    /// Routes known now: the static addresses' prefixes and, with a static gateway, the defaults.
    pub routes: Vec<Route<Ipv6Net>>,
    pub rules: Vec<Rule<Ipv6Net>>,
}

impl Ipv6Plan {
    /// Its router's kind: what decides its `ignore_routes_with_linkdown` (see [`sysctl`]) and
    /// so whether the kernel skips its routes at carrier loss or the daemon has to.
    pub fn router(&self) -> Ipv6Router {
        match self.gateway {
            Some(g) if g.segments()[0] & 0xffc0 != 0xfe80 => Ipv6Router::Global,
            _ => Ipv6Router::LinkLocal,
        }
    }
}

/// One uplink's probe rounds: its own `ProbeTarget=` and `ProbeInterval=` where the policy
/// gives them, `[Probe]`'s (or its defaults) otherwise. Everything else of `[Probe]` (FailAfter,
/// the hold, the quality limits) is the same for every uplink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UplinkProbe {
    pub targets: Vec<Ipv4Addr>,
    /// Its IPv6 side's targets: its own IPv6 `ProbeTarget=`, else `[Probe]`'s IPv6 `Target=`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets6: Vec<Ipv6Addr>,
    #[serde(rename = "interval_ms", serialize_with = "timespan::serialize_ms")]
    pub interval: Duration,
    /// How long one probe waits: `[Probe] Timeout=`, or the uplink's interval when shorter.
    #[serde(rename = "timeout_ms", serialize_with = "timespan::serialize_ms")]
    pub timeout: Duration,
    /// Whether the targets or the interval are the uplink's own.
    pub own: bool,
}

impl UplinkProbe {
    fn of(uplink: &crate::policy::Uplink, probe: &Probe) -> UplinkProbe {
        // Each family's own targets replace [Probe]'s of that family alone.
        let targets = if uplink.probe_targets.is_empty() { probe.targets.clone() } else { uplink.probe_targets.clone() };
        let targets6 = if uplink.probe_targets6.is_empty() { probe.targets6.clone() } else { uplink.probe_targets6.clone() };
        let interval = uplink.probe_interval.unwrap_or(probe.interval);
        let own = !uplink.probe_targets.is_empty() || !uplink.probe_targets6.is_empty() || uplink.probe_interval.is_some();
        UplinkProbe { targets, targets6, interval, timeout: probe.timeout.min(interval), own }
    }
}

/// How the plan fails over: routes over its uplinks, or one bond over their interfaces. Bond mode
/// has no uplinks of its own (their interfaces are the bond's slaves), so it holds none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failover {
    /// A table, rules and a metric-ordered default route per uplink, most preferred first.
    Routes(Vec<UplinkPlan>),
    /// One active-backup bond.
    Bond(bond::BondPlan),
}

/// The desired state for the whole host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub failover: Failover,
    pub sysctls: Vec<Sysctl>,
    pub probe: Option<Probe>,
    /// The MPTCP path manager's limits; `None` with `MPTCP=no` (multihome then removes only the
    /// endpoints it made and leaves the kernel's MPTCP settings alone).
    pub mptcp: Option<mptcp::Limits>,
    /// The policy file the plan came from, named in generated files.
    pub source: String,
}

impl Plan {
    /// The plan of a host without multihome, for `multihome reset`: applied, it takes away what
    /// earlier plans made and adds nothing.
    pub fn nothing(source: &str) -> Plan {
        Plan { failover: Failover::Routes(Vec::new()), sysctls: Vec::new(), probe: None, mptcp: None, source: source.to_string() }
    }

    /// The uplinks, most preferred first; none in bond mode.
    pub fn uplinks(&self) -> &[UplinkPlan] {
        match &self.failover {
            Failover::Routes(uplinks) => uplinks,
            Failover::Bond(_) => &[],
        }
    }

    /// The bond, in bond mode.
    pub fn bond(&self) -> Option<&bond::BondPlan> {
        match &self.failover {
            Failover::Routes(_) => None,
            Failover::Bond(b) => Some(b),
        }
    }

    pub fn uplink(&self, interface: &str) -> Option<&UplinkPlan> {
        self.uplinks().iter().find(|u| u.interface == interface)
    }
}

/// The plan's JSON (`check --json`, `plan --json`) keeps the shape it had before the failover
/// was a sum type: `uplinks` always (empty in bond mode), `bond` only in bond mode.
impl Serialize for Plan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Plan", 6)?;
        st.serialize_field("uplinks", self.uplinks())?;
        st.serialize_field("sysctls", &self.sysctls)?;
        st.serialize_field("probe", &self.probe)?;
        st.serialize_field("mptcp", &self.mptcp)?;
        st.serialize_field("source", &self.source)?;
        match self.bond() {
            Some(b) => st.serialize_field("bond", b)?,
            None => st.skip_field("bond")?,
        }
        st.end()
    }
}

/// Policy -> desired state. Pure: the same policy always gives the same plan.
pub fn plan(policy: &Policy) -> Plan {
    let ranked = policy.ranked();
    let tables = numbers::tables(&ranked);
    let uplinks: Vec<UplinkPlan> = ranked
        .iter()
        .enumerate()
        .map(|(rank, u)| {
            let table = tables[rank];
            let metric = numbers::metric(rank);
            let first_address = match &u.addressing {
                Addressing::Static(nets) => nets.first().map(|n| n.addr()),
                Addressing::Dhcp(_) => None,
            };
            // Endpoints are IPv4 (the kernel's path manager takes IPv6 too, but multihome's
            // endpoints follow the IPv4 addresses); an IPv6-only uplink has none.
            let has_ipv4 = match &u.addressing {
                Addressing::Static(nets) => !nets.is_empty(),
                Addressing::Dhcp(_) => true,
            };
            let endpoint = if policy.mptcp && has_ipv4 { mptcp::endpoint(rank, u.mptcp, first_address) } else { None };
            let (addresses, routes, rules) = match &u.addressing {
                Addressing::Static(nets) => {
                    // Validation requires a gateway for static IPv4 addresses; an IPv6-only
                    // uplink has neither, and no IPv4 routes.
                    let (rules, routes) = uplink::rules_and_routes(rank, table, metric, nets, u.gateway);
                    (Addresses::Static(nets.clone()), routes, rules)
                }
                Addressing::Dhcp(d) => (Addresses::Dhcp(*d), Vec::new(), Vec::new()),
            };
            let ipv6 = u.ipv6.as_ref().map(|v6| {
                let (rules, routes) = uplink::rules_and_routes(rank, table, metric, &v6.addresses, v6.gateway);
                Ipv6Plan { addresses: v6.addresses.clone(), gateway: v6.gateway, dhcp: v6.dhcp, accept_ra: v6.accept_ra, routes, rules }
            });
            let probe = UplinkProbe::of(u, policy.probe.as_ref().unwrap_or(&Probe::default()));
            UplinkPlan { interface: u.interface.clone(), rank, table, metric, addresses, gateway: u.gateway, routes, rules, ipv6, mptcp: endpoint, probe }
        })
        .collect();
    // A bond has one address and its own routes: none of the uplinks' sysctls are wanted, and
    // its slaves carry no MPTCP endpoints of their own.
    let sysctls = if policy.bond().is_some() {
        Vec::new()
    } else {
        sysctl::for_uplinks(uplinks.iter().map(|u| (u.interface.as_str(), u.ipv6.as_ref().map(Ipv6Plan::router))))
    };
    let mptcp = (policy.mptcp && policy.bond().is_none()).then(|| mptcp::limits(uplinks.iter().filter(|u| u.mptcp.is_some()).count()));
    let failover = match policy.bond() {
        Some(b) => Failover::Bond(bond::plan(b, policy.probe.as_ref())),
        None => Failover::Routes(uplinks),
    };
    Plan { failover, sysctls, probe: policy.probe.clone(), mptcp, source: policy.source.clone() }
}

#[cfg(test)]
mod tests;
