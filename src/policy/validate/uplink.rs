//! One `[Uplink]` of routes mode: each key read into a typed draft ([`read`]), then the checks
//! between its keys, each a named rule over that draft ([`CHECKS`]), then the uplink.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::addresses::{Use, is_link_local};
use super::{Checker, Keys, Located, bounds, first, is_host_of, parse_bool, parse_ipv4, targets, uplink_interface, uplink_priority, zero_prefix};
use crate::numbers::{KERNEL_TABLES, LEGACY_DAEMON_TABLE, MAX_ADDRESSES};
use crate::policy::unit_file::{Entry, Section};
use crate::policy::{Addressing, Dhcp, Ipv6, Subflows, Uplink};

/// Gateway= is repeatable for its two families; a second one of the same family is refused.
pub(super) const KEYS: Keys =
    Keys { single: &["Interface", "Priority", "DHCP", "IPv6AcceptRA", "Table", "MPTCP", "ProbeInterval"], repeatable: &["Address", "Gateway", "ProbeTarget"] };

/// An `[Uplink]` read key by key, before the checks between its keys.
struct Draft<'s> {
    section: &'s Section,
    map: HashMap<&'s str, Vec<&'s Entry>>,
    interface: Option<String>,
    priority: Option<u32>,
    addresses: Vec<Ipv4Net>,
    address_lines: Vec<usize>,
    addresses6: Vec<Ipv6Net>,
    address6_lines: Vec<usize>,
    dhcp4: bool,
    dhcp6: bool,
    /// As given; `None` when the uplink does not say.
    accept_ra: Option<bool>,
    gateway: Option<Ipv4Addr>,
    gateway6: Option<Ipv6Addr>,
    gateway_lines: (Option<usize>, Option<usize>),
    table: Option<u32>,
    mptcp: Option<Subflows>,
}

impl Draft<'_> {
    fn addressing(&self) -> Addressing {
        match (self.dhcp4, self.dhcp6) {
            (true, true) => Addressing::Dhcp(Dhcp::Yes),
            (true, false) => Addressing::Dhcp(Dhcp::Ipv4),
            (false, _) => Addressing::Static(self.addresses.clone()),
        }
    }

    /// DHCPv6 and SLAAC give no router of their own: the advertisements name it. Without an
    /// explicit IPv6AcceptRA= they are wanted whenever the uplink has dynamic IPv6.
    fn accept_ra(&self) -> bool {
        self.accept_ra.unwrap_or(self.dhcp6)
    }

    /// `DHCP=yes` alone keeps its meaning from before IPv6 was in the policy: IPv6 as the network
    /// manager does it. `DHCP=ipv6`, or any IPv6 key beside `DHCP=yes`, puts it in the policy.
    fn ipv6(&self) -> Option<Ipv6> {
        let says_ipv6 = !self.addresses6.is_empty() || self.gateway6.is_some() || (self.dhcp6 && !self.dhcp4) || self.map.contains_key("IPv6AcceptRA");
        says_ipv6.then(|| Ipv6 { addresses: self.addresses6.clone(), gateway: self.gateway6, dhcp: self.dhcp6, accept_ra: self.accept_ra() })
    }

    fn has4(&self) -> bool {
        self.dhcp4 || !self.addresses.is_empty()
    }

    fn has6(&self) -> bool {
        self.ipv6().is_some_and(|v6| !v6.addresses.is_empty() || v6.dhcp || v6.accept_ra)
    }

    /// " of eth0" for messages about the whole section.
    fn of(&self) -> String {
        self.interface.as_deref().map_or(String::new(), |n| format!(" of {n}"))
    }

    fn dhcp_value(&self) -> &str {
        first(&self.map, "DHCP").map_or("", |e| e.value.as_str())
    }

    fn line_of(&self, key: &str) -> Option<usize> {
        first(&self.map, key).map(|e| e.line)
    }
}

/// A check between an uplink's keys. `clean`: it speaks only when nothing before it in this
/// section was wrong, since an earlier problem (a bad address) would make it misleading.
struct Check {
    clean: bool,
    check: fn(&mut Checker, &Draft),
}

/// The checks, in the order they speak.
const CHECKS: &[Check] = &[
    Check { clean: false, check: static_and_dhcp4 },
    Check { clean: false, check: static_and_dhcp6 },
    Check { clean: true, check: some_address },
    Check { clean: true, check: gateway_with_lease },
    Check { clean: true, check: gateway_without_address },
    Check { clean: true, check: address_without_gateway },
    Check { clean: true, check: gateway6_without_address },
    Check { clean: true, check: address6_without_router },
    Check { clean: false, check: dhcp6_without_ra },
];

/// Returns the uplink with the lines of its section, keys and addresses, for cross-checks.
pub(super) fn section<'s>(c: &mut Checker, section: &'s Section) -> Option<Located<'s>> {
    let map = c.entries(section, &KEYS);
    // An unknown key is reported on its own; the checks below still speak.
    let before = c.problems.len();
    let draft = read(c, section, map);
    for check in CHECKS {
        if !check.clean || c.problems.len() == before {
            (check.check)(c, &draft);
        }
    }
    let own = targets(c, &draft.map, "ProbeTarget", "each probed through this uplink in every round");
    // Each family of the uplink is judged on targets of that family: one it lacks is never probed.
    if let (Some(line), false) = (own.lines.ipv6, draft.has6()) {
        c.problem(
            line,
            "ProbeTarget= is an IPv6 address, but this uplink has no IPv6; give it an IPv6 Address=, DHCP=ipv6 or IPv6AcceptRA=yes, or an IPv4 target",
        );
    }
    if let (Some(line), false) = (own.lines.ipv4, draft.has4()) {
        c.problem(line, "ProbeTarget= is an IPv4 address, but this uplink has no IPv4; give it an IPv4 Address= or DHCP=ipv4, or an IPv6 target");
    }
    let probe_interval = c.span_of(&draft.map, &bounds::PROBE_INTERVAL);
    if c.problems.len() != before {
        return None;
    }
    let keys = draft.map.iter().filter_map(|(k, v)| v.first().map(|e| (*k, e.line))).collect();
    let uplink = Uplink {
        interface: draft.interface.clone()?,
        priority: draft.priority?,
        addressing: draft.addressing(),
        gateway: draft.gateway,
        ipv6: draft.ipv6(),
        table: draft.table,
        mptcp: draft.mptcp,
        probe_targets: own.v4,
        probe_targets6: own.v6,
        probe_interval,
    };
    Some(Located {
        uplink,
        line: section.line,
        keys,
        address_lines: draft.address_lines,
        address6_lines: draft.address6_lines,
        gateway_lines: draft.gateway_lines,
    })
}

/// Each key on its own: its value parsed and checked, a problem recorded for each bad one.
fn read<'s>(c: &mut Checker, section: &'s Section, map: HashMap<&'s str, Vec<&'s Entry>>) -> Draft<'s> {
    let interface = uplink_interface(c, section, &map).map(|(name, _)| name);
    let priority = uplink_priority(c, section, &map).map(|(p, _)| p);
    let mut d = Draft {
        section,
        interface,
        priority,
        addresses: Vec::new(),
        address_lines: Vec::new(),
        addresses6: Vec::new(),
        address6_lines: Vec::new(),
        dhcp4: false,
        dhcp6: false,
        accept_ra: None,
        gateway: None,
        gateway6: None,
        gateway_lines: (None, None),
        table: None,
        mptcp: None,
        map: HashMap::new(),
    };
    for e in map.get("Address").into_iter().flatten() {
        if e.value.contains(':') { address6(c, e, &mut d) } else { address4(c, e, &mut d) }
    }
    // (DHCPv4, DHCPv6); both off when the value is invalid.
    (d.dhcp4, d.dhcp6) = c
        .parse_one(first(&map, "DHCP"), "yes, ipv4, ipv6 or no", |s| match s {
            "ipv4" => Some((true, false)),
            "ipv6" => Some((false, true)),
            s => parse_bool(s).map(|b| (b, b)),
        })
        .unwrap_or((false, false));
    d.accept_ra = c.parse_one(first(&map, "IPv6AcceptRA"), "yes or no", parse_bool);
    for e in map.get("Gateway").into_iter().flatten() {
        gateway(c, e, &mut d);
    }
    d.table = table(c, first(&map, "Table"));
    d.mptcp = c.parse_one(first(&map, "MPTCP"), "subflow, backup or no", |s| match s {
        "subflow" => Some(Subflows::Subflow),
        "backup" => Some(Subflows::Backup),
        s => parse_bool(s).filter(|b| !b).map(|_| Subflows::No),
    });
    d.map = map;
    d
}

fn address6(c: &mut Checker, e: &Entry, d: &mut Draft) {
    match e.value.parse::<Ipv6Net>() {
        Ok(net) if is_link_local(IpAddr::V6(net.addr())) => {
            c.problem(e.line, format!("Address={}: a link-local address; the kernel gives every link one itself, give a global address", e.value))
        }
        Ok(net) if !c.fit(e, IpAddr::V6(net.addr()), Use::Address) => {}
        Ok(net) if net.prefix_len() == 0 => c.problem(e.line, zero_prefix(&e.value)),
        Ok(_) if d.addresses6.len() == MAX_ADDRESSES => c.problem(
            e.line,
            format!("Address={}: an uplink has room for {MAX_ADDRESSES} IPv6 addresses (each takes two rule priorities of the uplink's range)", e.value),
        ),
        Ok(net) => {
            d.addresses6.push(net);
            d.address6_lines.push(e.line);
        }
        Err(_) if e.value.parse::<Ipv6Addr>().is_ok() => {
            c.problem(e.line, format!("Address={}: the prefix length is missing; add the subnet's, such as {}/64", e.value, e.value))
        }
        Err(_) => c.bad_value(e, "an IPv6 address with prefix length such as 2001:db8:178::99/64"),
    }
}

fn address4(c: &mut Checker, e: &Entry, d: &mut Draft) {
    match e.value.parse::<Ipv4Net>() {
        Ok(net) if !c.fit(e, IpAddr::V4(net.addr()), Use::Address) => {}
        Ok(net) if net.prefix_len() == 0 => c.problem(e.line, zero_prefix(&e.value)),
        Ok(net) if !is_host_of(&net, net.addr()) => c.problem(
            e.line,
            format!(
                "Address={}: that is the {} address of {}, not a host address",
                e.value,
                if net.addr() == net.network() { "network" } else { "broadcast" },
                net.trunc()
            ),
        ),
        Ok(_) if d.addresses.len() == MAX_ADDRESSES => c.problem(
            e.line,
            format!("Address={}: an uplink has room for {MAX_ADDRESSES} addresses (each takes two rule priorities of the uplink's range)", e.value),
        ),
        Ok(net) => {
            d.addresses.push(net);
            d.address_lines.push(e.line);
        }
        Err(_) if parse_ipv4(&e.value).is_some() => {
            c.problem(e.line, format!("Address={}: the prefix length is missing; add the subnet's, such as {}/24", e.value, e.value))
        }
        Err(_) => c.bad_value(e, "an IPv4 or IPv6 address with prefix length such as 192.168.178.99/24 or 2001:db8:178::99/64"),
    }
}

/// One router per family: Gateway= may be given twice, once for each.
fn gateway(c: &mut Checker, e: &Entry, d: &mut Draft) {
    match e.value.parse::<IpAddr>() {
        Ok(a) if !c.fit(e, a, Use::Gateway) => {}
        Ok(IpAddr::V4(a)) if d.gateway.is_some() => c.problem(
            e.line,
            format!("Gateway={a}: an IPv4 Gateway= is already set on line {}; an uplink has one router per family", d.gateway_lines.0.unwrap_or(0)),
        ),
        Ok(IpAddr::V6(a)) if d.gateway6.is_some() => c.problem(
            e.line,
            format!("Gateway={a}: an IPv6 Gateway= is already set on line {}; an uplink has one router per family", d.gateway_lines.1.unwrap_or(0)),
        ),
        Ok(IpAddr::V4(a)) => {
            d.gateway = Some(a);
            d.gateway_lines.0 = Some(e.line);
        }
        Ok(IpAddr::V6(a)) => {
            d.gateway6 = Some(a);
            d.gateway_lines.1 = Some(e.line);
        }
        Err(_) => c.bad_value(e, "an IPv4 address such as 192.168.178.1 or an IPv6 one such as fe80::1"),
    }
}

/// Table=: a number, or one of the kernel's names, understood so that `Table=main` is refused
/// for the right reason.
fn table(c: &mut Checker, entry: Option<&&Entry>) -> Option<u32> {
    let t = c.parse_one(entry, &bounds::TABLE.expected(), |s| match KERNEL_TABLES.iter().find(|(_, name)| *name == s) {
        Some((n, _)) => Some(*n),
        // The table's bounds fit a u32.
        None => bounds::TABLE.whole(s).map(|n| n as u32),
    });
    if let (Some(t), Some(e)) = (t, entry) {
        if let Some((_, name)) = KERNEL_TABLES.iter().find(|(n, _)| *n == t) {
            c.problem(
                e.line,
                format!("Table={}: that is the kernel's {name} table ({t}); choose a number from 1 to 4294967295 other than 253, 254 and 255", e.value),
            );
        } else if t == LEGACY_DAEMON_TABLE {
            c.problem(
                e.line,
                format!(
                    "Table={t}: reserved (the failover daemon before multihome 0.2 used it, and a new daemon clears its routes there); choose another number"
                ),
            );
        }
    }
    t
}

/// Per family: static addresses or DHCP, not both (a lease beside fixed addresses would add one
/// without rules, and a default route outside the order).
fn static_and_dhcp4(c: &mut Checker, d: &Draft) {
    if let (true, Some(&first_line), Some(line)) = (d.dhcp4, d.address_lines.first(), d.line_of("DHCP")) {
        c.problem(
            line,
            format!("DHCP={}: this [Uplink] also has an IPv4 Address= (line {first_line}); give either static addresses or DHCP=, not both", d.dhcp_value()),
        );
    }
}

fn static_and_dhcp6(c: &mut Checker, d: &Draft) {
    if let (true, Some(&first_line), Some(line)) = (d.dhcp6, d.address6_lines.first(), d.line_of("DHCP")) {
        c.problem(
            line,
            format!("DHCP={}: this [Uplink] also has an IPv6 Address= (line {first_line}); give either static IPv6 addresses or DHCP=ipv4", d.dhcp_value()),
        );
    }
}

fn some_address(c: &mut Checker, d: &Draft) {
    if !d.has4() && !d.has6() && !d.map.contains_key("Address") {
        c.problem(d.section.line, format!("[Uplink]{} gets no address: give Address= with Gateway=, or DHCP=ipv4, ipv6 or yes, or IPv6AcceptRA=yes", d.of()));
    }
}

/// The lease names the router and may change it; a fixed one beside it would go stale.
fn gateway_with_lease(c: &mut Checker, d: &Draft) {
    if let (true, Some(line)) = (d.dhcp4, d.gateway_lines.0) {
        c.problem(line, "Gateway= on a DHCP uplink: the lease's router is used; remove Gateway= or give a static Address=");
    }
}

fn gateway_without_address(c: &mut Checker, d: &Draft) {
    if let (false, Some(line)) = (d.has4(), d.gateway_lines.0) {
        let gateway = d.gateway.map_or(String::new(), |g| g.to_string());
        c.problem(line, format!("Gateway={gateway}: [Uplink]{} has no IPv4 address; give an IPv4 Address= or remove this Gateway=", d.of()));
    }
}

fn address_without_gateway(c: &mut Checker, d: &Draft) {
    if !d.dhcp4 && !d.addresses.is_empty() && d.gateway.is_none() && d.gateway_lines.0.is_none() {
        c.problem(d.section.line, format!("[Uplink]{} has a static Address= but no Gateway=; give the address of the router on its subnet", d.of()));
    }
}

fn gateway6_without_address(c: &mut Checker, d: &Draft) {
    let Some(v6) = d.ipv6() else { return };
    if let (Some(g), Some(line), true) = (v6.gateway, d.gateway_lines.1, v6.addresses.is_empty()) {
        let fix = if v6.accept_ra || v6.dhcp {
            "the router advertisements name the router, remove this Gateway="
        } else {
            "give an IPv6 Address= or remove this Gateway="
        };
        c.problem(line, format!("Gateway={g}: [Uplink]{} has no static IPv6 Address=; {fix}", d.of()));
    }
}

fn address6_without_router(c: &mut Checker, d: &Draft) {
    let Some(v6) = d.ipv6() else { return };
    if !v6.addresses.is_empty() && v6.gateway.is_none() && !v6.accept_ra && d.gateway_lines.1.is_none() {
        c.problem(
            d.section.line,
            format!(
                "[Uplink]{} has a static IPv6 Address= but no IPv6 Gateway=; give the router (its link-local address such as fe80::1 will do), or IPv6AcceptRA=yes",
                d.of()
            ),
        );
    }
}

fn dhcp6_without_ra(c: &mut Checker, d: &Draft) {
    let Some(v6) = d.ipv6() else { return };
    if v6.dhcp && !v6.accept_ra {
        let line = d.line_of("IPv6AcceptRA").unwrap_or(d.section.line);
        c.problem(
            line,
            format!("IPv6AcceptRA=no with DHCP={}: DHCPv6 names no router, only the router advertisements do; remove IPv6AcceptRA=no", d.dhcp_value()),
        );
    }
}
