//! What the daemon needs of an address family, so that one body (`Daemon::feed_side`,
//! `on_round`, `sync_probers`, `converge_family`, ...) serves both: where the plan keeps the
//! family's router, targets and addresses (IPv4 inline in [`UplinkPlan`], IPv6 in its
//! `ipv6`), how a side chooses its address, which probe sockets it opens, and where its side
//! and its state are. Everything else about a family is the same: the netlink and plan layers
//! are generic already ([`RouteFamily`], `Route<N>`).

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::family_state::{FamilyState, States};
use super::link::Link;
use super::probe::{Family, Wire, Wire4};
use super::probe6::Wire6;
use super::side::Side;
use crate::netlink::{self, Netlink, RouteFamily};
use crate::plan::{Addresses, Ipv6Router, UplinkPlan};

pub(super) trait IpFamily: RouteFamily<Addr: Send + Sync + 'static> {
    /// Its probe sockets.
    type Wire: Wire<Addr = Self::Addr> + Send + 'static;
    const WHICH: Family = <Self::Wire as Wire>::FAMILY;
    /// Before "routes", "addresses", "main table" in a log line: "" or "IPv6 ".
    const BEFORE_NOUN: &'static str;
    /// Whether a prober runs with nothing to ask (its rounds are skipped then): IPv4's always
    /// ran; an IPv6 side without targets and router has none.
    const PROBES_WITHOUT_QUESTION: bool;
    /// Whether a side's last address stands in for one the manager removed before its routes
    /// (see [`Side::last_address`]).
    const KEEPS_LAST_ADDRESS: bool;
    /// Whether the uplink has this family in the policy.
    fn planned(plan: &UplinkPlan) -> bool;
    /// The policy's router of the family; `None` where the kernel's is learnt.
    fn planned_gateway(plan: &UplinkPlan) -> Option<Self::Addr>;
    /// The targets of its probes.
    fn targets(plan: &UplinkPlan) -> &[Self::Addr];
    /// The address to probe and route from among those the kernel has (`present`).
    fn choose_address(plan: &UplinkPlan, present: &[Self]) -> Option<Self>;
    /// Whether the kernel keeps using its routes after carrier loss (see `side::shadowed`).
    fn routes_outlive_carrier(plan: &UplinkPlan) -> bool;
    /// The interface's addresses of the family.
    fn addresses(nl: &Netlink, ifindex: u32) -> impl Future<Output = Result<Vec<Self>, netlink::Error>>;
    fn side(link: &Link) -> Option<&Side<Self>>;
    fn side_mut(link: &mut Link) -> Option<&mut Side<Self>>;
    fn state(states: &States) -> &FamilyState<Self>;
    fn state_mut(states: &mut States) -> &mut FamilyState<Self>;
}

impl IpFamily for Ipv4Net {
    type Wire = Wire4;
    const BEFORE_NOUN: &'static str = "";
    const PROBES_WITHOUT_QUESTION: bool = true;
    const KEEPS_LAST_ADDRESS: bool = false;

    fn planned(_: &UplinkPlan) -> bool {
        true
    }

    fn planned_gateway(plan: &UplinkPlan) -> Option<Ipv4Addr> {
        plan.gateway
    }

    fn targets(plan: &UplinkPlan) -> &[Ipv4Addr] {
        &plan.probe.targets
    }

    /// A static uplink's planned address once the kernel has it, a DHCP uplink's first
    /// (primary) address.
    fn choose_address(plan: &UplinkPlan, present: &[Ipv4Net]) -> Option<Ipv4Net> {
        match &plan.addresses {
            Addresses::Static(planned) => planned.iter().find(|p| present.iter().any(|k| k.addr() == p.addr())).copied(),
            Addresses::Dhcp(_) => present.first().copied(),
        }
    }

    fn routes_outlive_carrier(_: &UplinkPlan) -> bool {
        false
    }

    fn addresses(nl: &Netlink, ifindex: u32) -> impl Future<Output = Result<Vec<Ipv4Net>, netlink::Error>> {
        nl.ipv4_addresses(ifindex)
    }

    fn side(link: &Link) -> Option<&Side<Ipv4Net>> {
        Some(&link.v4)
    }

    fn side_mut(link: &mut Link) -> Option<&mut Side<Ipv4Net>> {
        Some(&mut link.v4)
    }

    fn state(states: &States) -> &FamilyState<Ipv4Net> {
        &states.v4
    }

    fn state_mut(states: &mut States) -> &mut FamilyState<Ipv4Net> {
        &mut states.v4
    }
}

impl IpFamily for Ipv6Net {
    type Wire = Wire6;
    const BEFORE_NOUN: &'static str = "IPv6 ";
    const PROBES_WITHOUT_QUESTION: bool = false;
    const KEEPS_LAST_ADDRESS: bool = true;

    fn planned(plan: &UplinkPlan) -> bool {
        plan.ipv6.is_some()
    }

    fn planned_gateway(plan: &UplinkPlan) -> Option<Ipv6Addr> {
        plan.ipv6.as_ref()?.gateway
    }

    /// Its own IPv6 `ProbeTarget=`, else [Probe]'s IPv6 targets (see `plan::UplinkProbe`).
    fn targets(plan: &UplinkPlan) -> &[Ipv6Addr] {
        &plan.probe.targets6
    }

    /// The first static address the kernel has, else (SLAAC, DHCPv6) the lowest global one,
    /// stable across temporary addresses.
    fn choose_address(plan: &UplinkPlan, present: &[Ipv6Net]) -> Option<Ipv6Net> {
        let plan = plan.ipv6.as_ref()?;
        plan.addresses.iter().find(|p| present.iter().any(|k| k.addr() == p.addr())).copied().or_else(|| {
            if plan.accept_ra || plan.dhcp {
                let mut dynamic = present.to_vec();
                dynamic.sort_by_key(|n| n.addr());
                dynamic.first().copied()
            } else {
                None
            }
        })
    }

    /// A global router's: the plan keeps its `ignore_routes_with_linkdown` at 0 (the kernel would
    /// refuse that router's route while carrier returns), so the kernel goes on using its
    /// routes after carrier loss until the manager deletes them (networkd within milliseconds,
    /// NetworkManager about 6 s later).
    fn routes_outlive_carrier(plan: &UplinkPlan) -> bool {
        plan.ipv6.as_ref().is_some_and(|p| p.router() == Ipv6Router::Global)
    }

    fn addresses(nl: &Netlink, ifindex: u32) -> impl Future<Output = Result<Vec<Ipv6Net>, netlink::Error>> {
        nl.ipv6_addresses(ifindex)
    }

    fn side(link: &Link) -> Option<&Side<Ipv6Net>> {
        link.v6.as_ref()
    }

    fn side_mut(link: &mut Link) -> Option<&mut Side<Ipv6Net>> {
        link.v6.as_mut()
    }

    fn state(states: &States) -> &FamilyState<Ipv6Net> {
        &states.v6
    }

    fn state_mut(states: &mut States) -> &mut FamilyState<Ipv6Net> {
        &mut states.v6
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Ipv6Plan;

    fn uplink6(addresses: &[&str], accept_ra: bool, gateway: Option<&str>) -> UplinkPlan {
        let policy = crate::policy::parse("seed", include_str!("../../examples/seed.conf")).unwrap();
        let mut u = crate::plan::plan(&policy).uplinks()[0].clone();
        u.ipv6 = Some(Ipv6Plan {
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            gateway: gateway.map(|g| g.parse().unwrap()),
            dhcp: false,
            accept_ra,
            routes: Vec::new(),
            rules: Vec::new(),
        });
        u
    }

    fn nets(s: &[&str]) -> Vec<Ipv6Net> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn a_static_address_wins_over_slaac_and_slaac_serves_without_one() {
        let present = nets(&["2001:db8:178:0:ffff::1/64", "2001:db8:178::99/64"]);
        let choose = |u: &UplinkPlan, present: &[Ipv6Net]| <Ipv6Net as IpFamily>::choose_address(u, present);
        assert_eq!(choose(&uplink6(&["2001:db8:178::99/64"], true, None), &present), Some(present[1]));
        assert_eq!(choose(&uplink6(&[], true, None), &present), Some(present[1]), "the lowest global address, stable across temporary ones");
        assert_eq!(choose(&uplink6(&["2001:db8:178::98/64"], false, None), &present), None, "a static uplink waits for its own address");
        assert_eq!(choose(&uplink6(&[], true, None), &[]), None);
    }

    #[test]
    fn only_a_global_ipv6_routers_routes_outlive_the_carrier() {
        assert!(<Ipv6Net as IpFamily>::routes_outlive_carrier(&uplink6(&[], false, Some("2001:db8:178::1"))));
        assert!(!<Ipv6Net as IpFamily>::routes_outlive_carrier(&uplink6(&[], true, Some("fe80::1"))));
        assert!(!<Ipv6Net as IpFamily>::routes_outlive_carrier(&uplink6(&[], true, None)));
        assert!(!<Ipv4Net as IpFamily>::routes_outlive_carrier(&uplink6(&[], false, Some("2001:db8:178::1"))));
    }
}
