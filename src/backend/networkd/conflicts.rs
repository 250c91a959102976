//! What an administrator's .network file (and its drop-ins) already says about an uplink, judged
//! against the policy before multihome adds its drop-in. Pure.
//!
//! How networkd merges a drop-in decides what can be settled and what cannot (checked with
//! systemd 252 in the lab):
//! - List settings add up: `Address=`, `Gateway=`, `[Address]`, `[Route]` and
//!   `[RoutingPolicyRule]` sections of the file stay, whatever a drop-in says; an empty
//!   `Gateway=` or `Address=` in a drop-in is rejected ("Invalid Gateway=''"), it does not reset
//!   them. So a default route the administrator gives an uplink cannot be taken away: it is an
//!   error when it competes with the policy's ([Network] Gateway= has metric 0, ahead of them all).
//! - A single value is the last one read: the drop-in's `DHCP=`, `[DHCPv4] RouteMetric=` and
//!   `RouteTable=` replace the file's, so those are settled by the drop-in with a warning, unless
//!   a drop-in that sorts after 60-multihome.conf sets them again (an error then).
//! - An address in both is kept once, the later (the drop-in's, with its route metric); networkd
//!   logs "Duplicated address" for it.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::findings::{Finding, Severity};
use super::names::DROPIN_NAME;
use super::survey::NetworkFile;
use crate::plan::{Addresses, Plan, UplinkPlan};
use crate::policy::Dhcp;
use crate::policy::unit_file::parse_bool;
use crate::policy::unit_file::{Entry, Section};

/// What the drop-in must set beyond the policy's addresses, routes and rules, and what was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Amendment {
    /// `DHCP=` for the drop-in, when the file's value is not what the policy needs.
    pub dhcp: Option<&'static str>,
    /// `[DHCPv4] RouteTable=main` for the drop-in: the file sends the lease's routes elsewhere.
    pub dhcp_route_table_main: bool,
    pub findings: Vec<Finding>,
}

/// One part of the file as networkd reads it: the file itself or one of its foreign drop-ins.
struct Part<'a> {
    path: &'a str,
    /// A drop-in that sorts after multihome's: its single values win over the drop-in's.
    after_ours: bool,
    sections: &'a [Section],
}

fn parts(file: &NetworkFile) -> Vec<Part<'_>> {
    let mut parts = vec![Part { path: &file.path, after_ours: false, sections: &file.sections }];
    parts.extend(file.dropins.iter().filter(|d| !d.ours).map(|d| Part { path: &d.path, after_ours: d.name.as_str() > DROPIN_NAME, sections: &d.sections }));
    parts
}

/// Every assignment of `key` in sections named one of `sections`, in networkd's reading order.
fn assignments<'a>(parts: &'a [Part<'a>], sections: &'a [&'a str], key: &'a str) -> impl Iterator<Item = (&'a Part<'a>, &'a Section, &'a Entry)> + 'a {
    parts.iter().flat_map(move |p| {
        p.sections
            .iter()
            .filter(move |s| sections.contains(&s.name.as_str()))
            .flat_map(move |s| s.entries.iter().filter(move |e| e.key == key).map(move |e| (p, s, e)))
    })
}

/// Where to change a file: itself, or what generates it.
fn here(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    if path.starts_with("/run/systemd/network/") && name.starts_with("10-netplan-") {
        "in the netplan YAML (/etc/netplan) this file is generated from".into()
    } else if name.contains("cloud-init") {
        "in the cloud-init network configuration this file is generated from".into()
    } else {
        "there".into()
    }
}

/// The DHCP families a `DHCP=` value enables (v4, v6); `None` for a value networkd rejects.
fn dhcp_families(value: &str) -> Option<(bool, bool)> {
    Some(match value.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" | "both" => (true, true),
        "no" | "false" | "off" | "0" | "none" | "" => (false, false),
        "ipv4" | "v4" => (true, false),
        "ipv6" | "v6" => (false, true),
        _ => return None,
    })
}

fn dhcp_value(families: (bool, bool)) -> &'static str {
    match families {
        (true, true) => "yes",
        (true, false) => "ipv4",
        (false, true) => "ipv6",
        (false, false) => "no",
    }
}

fn is_main(table: Option<&str>) -> bool {
    matches!(table, None | Some("main") | Some("254"))
}

/// What a rule reads: the file's parts, the link, and the policy's view of it.
struct Context<'a> {
    parts: Vec<Part<'a>>,
    iface: &'a str,
}

impl Context<'_> {
    fn say(&self, out: &mut Amendment, severity: Severity, part: &Part, line: usize, text: String) {
        out.findings.push(Finding::new(severity, self.iface, Some((part.path, line)), text));
    }
}

/// One rule about an uplink's file: reads the context, adds findings and amendments.
type UplinkRule = fn(&Context, &Plan, &UplinkPlan, &mut Amendment);
/// One rule about a bond slave's file.
type SlaveRule = fn(&Context, &str, &mut Amendment);

/// The rules for an uplink in routes mode, in the order their findings are reported.
const UPLINK_RULES: &[UplinkRule] = &[
    |c, _, _, out| unmanaged(c, out, "nothing of the policy would apply to it"),
    dhcp_mode,
    lease_route_metric,
    lease_route_table,
    ipv6_accept_ra,
    ipv6_gateway,
    ipv4_gateway,
    foreign_routes_and_rules,
    addresses,
];

/// The rules for a bond's slave: the drop-in only enslaves the link.
const SLAVE_RULES: &[SlaveRule] = &[|c, bond, out| unmanaged(c, out, &format!("it would never join {bond}")), slave_bond, slave_dhcp, slave_addressing];

/// Judges `file` (the one networkd uses for `slave`'s link) for bond mode, where the drop-in only
/// enslaves the link (`Bond=`, `PrimarySlave=`): the file's other settings keep applying, but
/// networkd gives a bond's slave no address, route or DHCP lease of its own (systemd 252 drops
/// them with "Cannot set addresses when Bond= is specified"), since the bond holds the address.
pub fn judge_slave(bond: &str, slave: &str, file: &NetworkFile) -> Amendment {
    let c = Context { parts: parts(file), iface: slave };
    let mut out = Amendment::default();
    for rule in SLAVE_RULES {
        rule(&c, bond, &mut out);
    }
    out
}

/// Judges `file` (the one networkd uses for `u`'s link) against the plan.
pub fn judge(plan: &Plan, u: &UplinkPlan, file: &NetworkFile) -> Amendment {
    let c = Context { parts: parts(file), iface: &u.interface };
    let mut out = Amendment::default();
    for rule in UPLINK_RULES {
        rule(&c, plan, u, &mut out);
    }
    out
}

/// [Link] Unmanaged=yes: networkd would not configure the link at all.
fn unmanaged(c: &Context, out: &mut Amendment, consequence: &str) {
    let iface = c.iface;
    for (p, _, e) in assignments(&c.parts, &["Link"], "Unmanaged") {
        if parse_bool(&e.value) == Some(true) {
            c.say(
                out,
                Severity::Error,
                p,
                e.line,
                format!(
                    "[Link] Unmanaged={}: networkd leaves {iface} alone with this file, so {consequence}; remove Unmanaged= {}, or take {iface} out of the policy",
                    e.value,
                    here(p.path)
                ),
            );
        }
    }
}

fn slave_bond(c: &Context, bond: &str, out: &mut Amendment) {
    let slave = c.iface;
    for (p, _, e) in assignments(&c.parts, &["Network"], "Bond") {
        if p.after_ours && e.value != bond {
            c.say(
                out,
                Severity::Error,
                p,
                e.line,
                format!(
                    "[Network] Bond={}: this drop-in sorts after {DROPIN_NAME}, so networkd would enslave {slave} to {} instead of {bond}; remove Bond= from it",
                    e.value, e.value
                ),
            );
        } else if e.value != bond {
            c.say(
                out,
                Severity::Warning,
                p,
                e.line,
                format!("[Network] Bond={}: the policy makes {slave} a slave of {bond}; the drop-in says Bond={bond}", e.value),
            );
        }
    }
}

/// DHCP=: the last value read wins. A slave asks for no lease: the bond does.
fn slave_dhcp(c: &Context, bond: &str, out: &mut Amendment) {
    let slave = c.iface;
    let mut last: Option<(&Part, &Entry, bool)> = None;
    for (p, _, e) in assignments(&c.parts, &["Network"], "DHCP") {
        if let Some(f) = dhcp_families(&e.value) {
            last = Some((p, e, f != (false, false)));
        }
    }
    let Some((p, e, true)) = last else { return };
    if p.after_ours {
        c.say(
            out,
            Severity::Error,
            p,
            e.line,
            format!(
                "[Network] DHCP={}: this drop-in sorts after {DROPIN_NAME}, so networkd would keep it for {slave}, a slave of {bond}, which takes no lease of its own; remove DHCP= from it",
                e.value
            ),
        );
    } else {
        out.dhcp = Some("no");
        c.say(
            out,
            Severity::Warning,
            p,
            e.line,
            format!(
                "[Network] DHCP={}: {slave} becomes a slave of {bond}, which holds the address ([Bond] in the policy), so the drop-in sets DHCP=no",
                e.value
            ),
        );
    }
}

fn slave_addressing(c: &Context, bond: &str, out: &mut Amendment) {
    let slave = c.iface;
    let addressing = assignments(&c.parts, &["Network"], "Address")
        .chain(assignments(&c.parts, &["Network"], "Gateway"))
        .chain(assignments(&c.parts, &["Address"], "Address"))
        .chain(assignments(&c.parts, &["Route"], "Gateway"))
        .chain(assignments(&c.parts, &["Route"], "Destination"));
    for (p, s, e) in addressing {
        c.say(
            out,
            Severity::Warning,
            p,
            e.line,
            format!(
                "[{}] {}={}: networkd gives a bond's slave no address or route of its own and ignores this for {slave}; {bond}'s addressing is the policy's [Bond]: remove it {}",
                s.name,
                e.key,
                e.value,
                here(p.path)
            ),
        );
    }
}

fn is_static(u: &UplinkPlan) -> bool {
    matches!(u.addresses, Addresses::Static(_))
}

/// DHCP=: the last value read wins; the drop-in's comes after the file and the drop-ins that
/// sort before it.
fn dhcp_mode(c: &Context, _: &Plan, u: &UplinkPlan, out: &mut Amendment) {
    let iface = c.iface;
    let mut before: Option<((bool, bool), &Part, &Entry)> = None;
    let mut after: Option<((bool, bool), &Part, &Entry)> = None;
    for (p, _, e) in assignments(&c.parts, &["Network"], "DHCP") {
        if let Some(f) = dhcp_families(&e.value) {
            *(if p.after_ours { &mut after } else { &mut before }) = Some((f, p, e));
        }
    }
    let have = before.map_or((false, false), |(f, _, _)| f);
    let want4 = match u.addresses {
        // Static IPv4: a DHCPv4 lease beside the policy's addresses would add an address without
        // rules and a default route outside the metric order.
        Addresses::Static(_) => false,
        Addresses::Dhcp(Dhcp::Ipv4 | Dhcp::Yes) => true,
    };
    // DHCPv6 is the policy's business when it says something about the uplink's IPv6, or
    // asks for it with DHCP=yes; otherwise the file's choice stays.
    let want6 = match &u.ipv6 {
        Some(v6) => v6.dhcp,
        None => have.1 || matches!(u.addresses, Addresses::Dhcp(Dhcp::Yes)),
    };
    let want = (want4, want6);
    match after {
        Some((f, p, e)) if f.0 != want.0 || (want.1 && !f.1) => c.say(
            out,
            Severity::Error,
            p,
            e.line,
            format!(
                "[Network] DHCP={}: this drop-in sorts after {DROPIN_NAME}, so networkd would keep it over the policy's DHCP={} for {iface}; remove DHCP= from it, or rename it to sort before {DROPIN_NAME}",
                e.value,
                dhcp_value(want)
            ),
        ),
        Some(_) => {}
        None if have != want => {
            out.dhcp = Some(dhcp_value(want));
            if let Some((_, p, e)) = before
                && is_static(u)
            {
                c.say(
                    out,
                    Severity::Warning,
                    p,
                    e.line,
                    format!(
                        "[Network] DHCP={}: the policy gives {iface} static addresses, so the drop-in sets DHCP={} (no DHCPv4 lease beside them); set DHCP={} {} to say so, or give {iface} DHCP=ipv4 in the policy",
                        e.value,
                        dhcp_value(want),
                        dhcp_value(want),
                        here(p.path)
                    ),
                );
            }
        }
        None => {}
    }
}

/// The lease's routes: the policy orders uplinks by their metric in main.
fn lease_route_metric(c: &Context, _: &Plan, u: &UplinkPlan, out: &mut Amendment) {
    if is_static(u) {
        return;
    }
    let iface = c.iface;
    for (p, s, e) in assignments(&c.parts, &["DHCPv4", "DHCP"], "RouteMetric") {
        if e.value.parse::<u32>().ok() == Some(u.metric) {
            continue;
        }
        // [DHCP] is the old name; networkd lets [DHCPv4] win over it whatever the order.
        if p.after_ours && s.name == "DHCPv4" {
            c.say(
                out,
                Severity::Error,
                p,
                e.line,
                format!(
                    "[DHCPv4] RouteMetric={}: this drop-in sorts after {DROPIN_NAME}, so networkd would keep it over the policy's metric {} for {iface}, and the uplinks' order breaks; remove it from this drop-in",
                    e.value, u.metric
                ),
            );
        } else if !p.after_ours {
            c.say(
                out,
                Severity::Warning,
                p,
                e.line,
                format!(
                    "[{}] RouteMetric={}: the drop-in replaces it with {} (the policy orders the uplinks by this metric in main); remove it {}",
                    s.name,
                    e.value,
                    u.metric,
                    here(p.path)
                ),
            );
        }
    }
}

fn lease_route_table(c: &Context, _: &Plan, u: &UplinkPlan, out: &mut Amendment) {
    if is_static(u) {
        return;
    }
    let iface = c.iface;
    for (p, s, e) in assignments(&c.parts, &["DHCPv4", "DHCP"], "RouteTable") {
        if is_main(Some(&e.value)) {
            continue;
        }
        if p.after_ours {
            c.say(
                out,
                Severity::Error,
                p,
                e.line,
                format!(
                    "[{}] RouteTable={}: this drop-in sorts after {DROPIN_NAME}, so the lease's default route would miss the main table, where the policy orders {iface} among the uplinks; remove it from this drop-in",
                    s.name, e.value
                ),
            );
        } else {
            out.dhcp_route_table_main = true;
            c.say(
                out,
                Severity::Warning,
                p,
                e.line,
                format!(
                    "[{}] RouteTable={}: the drop-in puts the lease's routes back into main (RouteTable=254), where the policy orders {iface} among the uplinks (its own table {} gets the lease's router from the drop-in too); remove it {}",
                    s.name,
                    e.value,
                    u.table,
                    here(p.path)
                ),
            );
        }
    }
}

/// IPv6AcceptRA= and its section: the drop-in's single values win over the file's and the
/// drop-ins before it, not over a drop-in that sorts after it.
fn ipv6_accept_ra(c: &Context, _: &Plan, u: &UplinkPlan, out: &mut Amendment) {
    let Some(v6) = &u.ipv6 else { return };
    let iface = c.iface;
    let want_ra = if v6.accept_ra { "yes" } else { "no" };
    for (p, _, e) in assignments(&c.parts, &["Network"], "IPv6AcceptRA") {
        if p.after_ours && parse_bool(&e.value) != Some(v6.accept_ra) {
            c.say(
                out,
                Severity::Error,
                p,
                e.line,
                format!(
                    "[Network] IPv6AcceptRA={}: this drop-in sorts after {DROPIN_NAME}, so networkd would keep it over the policy's IPv6AcceptRA={want_ra} for {iface}; remove it from this drop-in",
                    e.value
                ),
            );
        }
    }
    for key in ["RouteMetric", "RouteTable", "UseGateway"] {
        for (p, _, e) in assignments(&c.parts, &["IPv6AcceptRA"], key) {
            if v6.accept_ra && (p.after_ours || (key == "RouteTable" && !is_main(Some(&e.value)))) {
                c.say(
                    out,
                    Severity::Error,
                    p,
                    e.line,
                    format!(
                        "[IPv6AcceptRA] {key}={}: the advertised routes of {iface} belong in main at the policy's metric {}, where the uplinks are ordered, and the policy decides whether its router is used; remove it {}",
                        e.value,
                        u.metric,
                        here(p.path)
                    ),
                );
            }
        }
    }
}

/// An IPv6 [Network] Gateway= gets the kernel's metric 1024: behind the policy's order, but a
/// default route the policy does not know.
fn ipv6_gateway(c: &Context, _: &Plan, u: &UplinkPlan, out: &mut Amendment) {
    if u.ipv6.is_none() {
        return;
    }
    let iface = c.iface;
    for (p, _, e) in assignments(&c.parts, &["Network"], "Gateway") {
        if e.value.parse::<std::net::Ipv6Addr>().is_ok() || e.value == "_ipv6ra" {
            c.say(
                out,
                Severity::Warning,
                p,
                e.line,
                format!(
                    "[Network] Gateway={}: a second IPv6 default route through {iface} that the policy does not know (behind its metric {}); remove it {} (the policy's IPv6 Gateway= or IPv6AcceptRA= gives the default route)",
                    e.value,
                    u.metric,
                    here(p.path)
                ),
            );
        }
    }
}

/// The uplinks in their metric order, as the findings name them ("eth0 100, wlan1 200").
fn metric_order(plan: &Plan) -> String {
    plan.uplinks().iter().map(|x| format!("{} {}", x.interface, x.metric)).collect::<Vec<_>>().join(", ")
}

/// A default route in main that competes with the policy's metric order. Gateway= is a list: a
/// drop-in cannot take it back.
fn ipv4_gateway(c: &Context, plan: &Plan, u: &UplinkPlan, out: &mut Amendment) {
    let iface = c.iface;
    for (p, _, e) in assignments(&c.parts, &["Network"], "Gateway") {
        if e.value.parse::<Ipv4Addr>().is_ok() {
            c.say(
                out,
                Severity::Error,
                p,
                e.line,
                format!(
                    "[Network] Gateway={}: networkd adds a default route through {iface} to main with metric 0, ahead of the policy's metric-ordered ones ({}), so it and not the policy would decide where new connections leave; remove it {} (the policy's Gateway= for {iface} gives the default route, with metric {})",
                    e.value,
                    metric_order(plan),
                    here(p.path),
                    u.metric
                ),
            );
        }
    }
}

/// [Route] and [RoutingPolicyRule] sections, part by part: default routes in main that compete
/// with the policy's order, and routes or rules in multihome's tables, which hold exactly the
/// policy's routes (the failover daemon works in main).
fn foreign_routes_and_rules(c: &Context, plan: &Plan, u: &UplinkPlan, out: &mut Amendment) {
    for p in &c.parts {
        for s in p.sections.iter().filter(|s| s.name == "Route") {
            foreign_route(c, plan, u, p, s, out);
        }
        for s in p.sections.iter().filter(|s| s.name == "RoutingPolicyRule") {
            for e in s.entries.iter().filter(|e| e.key == "Table") {
                if let Ok(t) = e.value.parse::<u32>()
                    && let Some(owner) = table_owner(plan, t)
                {
                    c.say(
                        out,
                        Severity::Error,
                        p,
                        e.line,
                        format!("[RoutingPolicyRule] Table={t}: that is {owner}'s table in the policy; point this rule at another table {}", here(p.path)),
                    );
                }
            }
        }
    }
}

/// The uplink whose table `table` is in the policy.
fn table_owner(plan: &Plan, table: u32) -> Option<&str> {
    plan.uplinks().iter().find(|x| x.table == table).map(|x| x.interface.as_str())
}

fn foreign_route(c: &Context, plan: &Plan, u: &UplinkPlan, p: &Part, s: &Section, out: &mut Amendment) {
    let iface = c.iface;
    let get = |k: &str| s.entries.iter().rev().find(|e| e.key == k);
    let gateway = get("Gateway");
    let destination = get("Destination");
    let table = get("Table");
    if let Some(e) = table
        && let Ok(t) = e.value.parse::<u32>()
        && let Some(owner) = table_owner(plan, t)
    {
        c.say(
            out,
            Severity::Error,
            p,
            e.line,
            format!(
                "[Route] Table={t}: that is {owner}'s table in the policy, which holds exactly the policy's routes; give this route another table {} (or leave Table= out for main)",
                here(p.path)
            ),
        );
        return;
    }
    let v4_gateway = gateway.is_some_and(|g| g.value == "_dhcp4" || g.value.parse::<Ipv4Addr>().is_ok());
    let default = match destination {
        None => v4_gateway,
        Some(d) => d.value.parse::<Ipv4Net>().is_ok_and(|n| n.prefix_len() == 0) || d.value == "0.0.0.0",
    };
    if !default || !is_main(table.map(|t| t.value.as_str())) {
        return;
    }
    let max_metric = plan.uplinks().iter().map(|x| x.metric).max().unwrap_or(u.metric);
    let order = metric_order(plan);
    let metric = get("Metric").and_then(|m| m.value.parse::<u32>().ok()).unwrap_or(0);
    let e = gateway.or(destination).expect("a default route has one of them");
    let what = format!("[Route] {}={}: a default route through {iface} in main with metric {metric}", e.key, e.value);
    if metric <= max_metric {
        c.say(
            out,
            Severity::Error,
            p,
            e.line,
            format!(
                "{what}, among the policy's metric-ordered ones ({order}), so it and not the policy would decide where new connections leave; remove this [Route] {} (the policy's Gateway= for {iface} gives the default route, with metric {})",
                here(p.path),
                u.metric
            ),
        );
    } else {
        c.say(
            out,
            Severity::Warning,
            p,
            e.line,
            format!(
                "{what}: it stays behind the policy's ({order}) but is a second default route the policy does not know; remove this [Route] {}",
                here(p.path)
            ),
        );
    }
}

/// IPv4 addresses: the policy's own are kept once (the drop-in's); others stay without rules.
fn addresses(c: &Context, _: &Plan, u: &UplinkPlan, out: &mut Amendment) {
    let iface = c.iface;
    let policy_addresses: &[Ipv4Net] = match &u.addresses {
        Addresses::Static(nets) => nets,
        Addresses::Dhcp(_) => &[],
    };
    for (p, s, e) in assignments(&c.parts, &["Network", "Address"], "Address") {
        let Some(net) = e.value.parse::<Ipv4Net>().ok().or_else(|| e.value.parse::<Ipv4Addr>().ok().map(Ipv4Net::from)) else {
            continue;
        };
        let key = format!("[{}] Address={}", s.name, e.value);
        let (severity, text) = match policy_addresses.iter().find(|a| a.addr() == net.addr()) {
            Some(a) if *a == net => (
                Severity::Note,
                format!(
                    "{key}: also the policy's; networkd keeps the drop-in's (with the policy's route metric {}) and logs \"Duplicated address\" for this one",
                    u.metric
                ),
            ),
            Some(a) => {
                (Severity::Warning, format!("{key}: the policy has {a}; networkd keeps the drop-in's and drops this one; make the two agree {}", here(p.path)))
            }
            None => (
                Severity::Warning,
                format!(
                    "{key}: not in the policy, so it stays on {iface} without `from`/`to` rules of its own{}; add it to the policy's Address= for {iface}, or remove it {}",
                    if is_static(u) { "" } else { ", beside the lease" },
                    here(p.path)
                ),
            ),
        };
        c.say(out, severity, p, e.line, text);
    }
}
