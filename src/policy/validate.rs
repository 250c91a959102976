//! Raw sections -> [`Policy`]: every key checked against what it may hold, every cross-uplink
//! invariant checked, and every problem reported with its file and line.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::Ipv4Net;

use super::error::{Diagnostic, Diagnostics};
use super::unit_file::{Entry, Section, parse_bool};
use super::{Addressing, Backend, Failover, Policy, Probe, Require, Subflows, Uplink, timespan, valid_uplink_name};
use crate::numbers::MAX_UPLINKS;

mod addresses;
mod bond;
pub(crate) mod bounds;
mod metrics;
mod uplink;

use addresses::{Use, unfit};

/// A valid `[Uplink]` with the lines its checks between uplinks point at.
struct Located<'s> {
    uplink: Uplink,
    /// The `[Uplink]` header.
    line: usize,
    /// The first line of each key.
    keys: HashMap<&'s str, usize>,
    /// The line of each static address, in the order of `Addressing::Static`.
    address_lines: Vec<usize>,
    /// The same for the IPv6 addresses, in the order of `Ipv6::addresses`.
    address6_lines: Vec<usize>,
    /// The line of each family's `Gateway=`.
    gateway_lines: (Option<usize>, Option<usize>),
}

/// The keys a section knows: those that take one value, and those that may repeat (an empty
/// assignment resets such a list).
struct Keys {
    single: &'static [&'static str],
    repeatable: &'static [&'static str],
}

const PROBE_KEYS: Keys = Keys {
    single: &[
        "Interval",
        "Timeout",
        "FailAfter",
        "RecoverAfter",
        "Require",
        "ArpGateway",
        "HoldTime",
        "MaxHoldTime",
        "MaxLoss",
        "RecoverLoss",
        "MaxLatency",
        "RecoverLatency",
    ],
    repeatable: &["Target"],
};

const POLICY_KEYS: Keys = Keys { single: &["Backend", "Mode", "MPTCP"], repeatable: &[] };

struct Checker<'a> {
    file: &'a str,
    problems: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn problem(&mut self, line: usize, message: impl Into<String>) {
        self.problems.push(Diagnostic::new(self.file, line, message));
    }

    fn bad_value(&mut self, e: &Entry, expected: &str) {
        self.problem(e.line, format!("{}={}: expected {expected}", e.key, e.value));
    }

    /// Whether `a`, the value of `e`, can serve as `what`; the problem recorded when not.
    fn fit(&mut self, e: &Entry, a: IpAddr, what: Use) -> bool {
        let why = unfit(a, what);
        if let Some(why) = why {
            self.problem(e.line, format!("{}={}: {why}", e.key, e.value));
        }
        why.is_none()
    }

    /// Groups a section's entries by key, refusing keys the section does not know and repeats of
    /// keys that take one value (systemd would silently keep the last; for a network policy a
    /// silent choice between two values is a trap). An empty assignment resets a repeatable list.
    fn entries<'s>(&mut self, section: &'s Section, keys: &Keys) -> HashMap<&'s str, Vec<&'s Entry>> {
        let (single, repeatable) = (keys.single, keys.repeatable);
        let mut by_key: HashMap<&str, Vec<&Entry>> = HashMap::new();
        for e in &section.entries {
            let key = e.key.as_str();
            if repeatable.contains(&key) {
                let list = by_key.entry(key).or_default();
                if e.value.is_empty() { list.clear() } else { list.push(e) }
            } else if single.contains(&key) {
                let list = by_key.entry(key).or_default();
                if let Some(first) = list.first() {
                    let first_line = first.line;
                    self.problem(
                        e.line,
                        format!("{key}={}: {key}= is already set on line {first_line} of this [{}] section and takes one value", e.value, section.name),
                    );
                } else {
                    list.push(e);
                }
            } else {
                let mut known: Vec<&str> = single.iter().chain(repeatable).copied().collect();
                known.sort();
                let hint = match known.iter().find(|k| k.eq_ignore_ascii_case(key)) {
                    Some(k) => format!(" (keys are case-sensitive: {k}=)"),
                    None => String::new(),
                };
                self.problem(e.line, format!("unknown key {key}= in [{}]{hint}, expected one of {}", section.name, known.join(", ")));
            }
        }
        by_key
    }

    fn parse_one<T>(&mut self, entry: Option<&&Entry>, expected: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
        let e = entry?;
        let parsed = parse(&e.value);
        if parsed.is_none() {
            self.bad_value(e, expected);
        }
        parsed
    }
}

fn first<'a>(map: &'a HashMap<&str, Vec<&'a Entry>>, key: &str) -> Option<&'a &'a Entry> {
    map.get(key).and_then(|v| v.first())
}

fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

/// fe80::/10: the kernel gives every link such an address itself, and a router is known by it.
fn is_link_local6(a: Ipv6Addr) -> bool {
    addresses::is_link_local(IpAddr::V6(a))
}

pub fn policy(file: &str, sections: &[Section]) -> Result<Policy, Diagnostics> {
    let mut c = Checker { file, problems: Vec::new() };
    let mut seen_once: HashMap<&str, usize> = HashMap::new();
    let mut backend = Backend::Auto;
    let mut mptcp = true;
    let mut probe = None;
    let mut target_lines = TargetLines::default();
    let mut uplinks: Vec<Located> = Vec::new();
    let bond_mode = bond::wanted(sections);
    let (mut bond_section, mut slaves, mut mode_line) = (None, Vec::new(), 1);
    let mut probe_at: Option<&Section> = None;
    let mut metrics = super::Metrics::default();

    for section in sections {
        if matches!(section.name.as_str(), "Policy" | "Probe" | "Bond" | "Metrics")
            && let Some(line) = seen_once.insert(section.name.as_str(), section.line)
        {
            c.problem(section.line, format!("[{}] appears twice (first on line {line}); merge them", section.name));
            continue;
        }
        match section.name.as_str() {
            "Policy" => {
                let map = c.entries(section, &POLICY_KEYS);
                if let Some(b) = c.parse_one(first(&map, "MPTCP"), "yes or no", parse_bool) {
                    mptcp = b;
                }
                backend = c
                    .parse_one(first(&map, "Backend"), "auto, networkd or networkmanager", |s| match s {
                        "auto" => Some(Backend::Auto),
                        "networkd" => Some(Backend::Networkd),
                        "networkmanager" | "NetworkManager" => Some(Backend::NetworkManager),
                        _ => None,
                    })
                    .unwrap_or(Backend::Auto);
                if let Some(e) = first(&map, "Mode") {
                    mode_line = e.line;
                    match e.value.as_str() {
                        // Whether it is bond is read before the sections (bond::wanted).
                        "routes" | "bond" => {}
                        _ => c.bad_value(e, "routes or bond"),
                    }
                }
            }
            "Probe" => {
                probe = Some(probe_section(&mut c, section, &mut target_lines));
                probe_at = Some(section);
            }
            "Metrics" => metrics = metrics::section(&mut c, section),
            "Bond" if bond_mode => bond_section = Some(section),
            "Bond" => bond::unused_section(&mut c, section),
            "Uplink" if bond_mode => slaves.extend(bond::slave_section(&mut c, section)),
            "Uplink" => {
                if let Some(u) = uplink::section(&mut c, section) {
                    uplinks.push(u);
                }
            }
            other => {
                let hint = match ["Policy", "Probe", "Uplink", "Bond", "Metrics"].iter().find(|k| k.eq_ignore_ascii_case(other)) {
                    Some(k) => format!(" (section names are case-sensitive: [{k}])"),
                    None => String::new(),
                };
                c.problem(section.line, format!("unknown section [{other}]{hint}, expected [Policy], [Probe], [Uplink], [Bond] or [Metrics]"))
            }
        }
    }

    let bond = if bond_mode { bond::bond(&mut c, bond_section, slaves, mode_line, probe.as_ref().zip(probe_at)) } else { None };
    if !bond_mode {
        cross_check(&mut c, &uplinks, sections);
        check_target_families(&mut c, &uplinks, &target_lines);
        check_targets_are_not_uplinks(&mut c, &uplinks, sections);
    }
    if !mptcp {
        for l in &uplinks {
            if let (Some(Subflows::Subflow | Subflows::Backup), Some(line)) = (l.uplink.mptcp, l.keys.get("MPTCP")) {
                c.problem(
                    *line,
                    format!(
                        "MPTCP={} on {}: [Policy] has MPTCP=no, so no uplink gets an endpoint; remove one of them",
                        subflows_word(l.uplink.mptcp),
                        l.uplink.interface
                    ),
                );
            }
        }
    }
    if let (Some(p), false) = (&probe, bond_mode) {
        probe_against_uplinks(&mut c, p, sections, &uplinks);
    }

    if c.problems.is_empty() {
        let failover = match bond {
            Some(b) => Failover::Bond(b),
            None => Failover::Routes(uplinks.into_iter().map(|l| l.uplink).collect()),
        };
        Ok(Policy { source: file.to_string(), backend, failover, probe, mptcp, metrics })
    } else {
        c.problems.sort_by_key(|d| d.line);
        Err(Diagnostics(c.problems))
    }
}

fn subflows_word(s: Option<Subflows>) -> &'static str {
    match s {
        Some(Subflows::Subflow) => "subflow",
        Some(Subflows::Backup) => "backup",
        _ => "no",
    }
}

/// Targets per [Probe]: each is probed through every uplink every round.
const MAX_TARGETS: usize = 16;

/// The first `Target=` line of each family, for the check that some uplink has that family.
#[derive(Default)]
struct TargetLines {
    ipv4: Option<usize>,
    ipv6: Option<usize>,
}

/// Each family of an uplink is judged on targets of that family, so a family no uplink has
/// would never be probed: a typo or a forgotten `Address=`.
fn check_target_families(c: &mut Checker, uplinks: &[Located], lines: &TargetLines) {
    if uplinks.is_empty() {
        return;
    }
    let has4 = uplinks.iter().any(|l| match &l.uplink.addressing {
        Addressing::Static(nets) => !nets.is_empty(),
        Addressing::Dhcp(_) => true,
    });
    let has6 = uplinks.iter().any(|l| l.uplink.ipv6.as_ref().is_some_and(|v6| !v6.addresses.is_empty() || v6.dhcp || v6.accept_ra));
    if let (Some(line), false) = (lines.ipv4, has4) {
        c.problem(line, "Target= is an IPv4 address, but no uplink has IPv4; give IPv6 targets, or an IPv4 Address= or DHCP=ipv4 to an uplink");
    }
    if let (Some(line), false) = (lines.ipv6, has6) {
        c.problem(
            line,
            "Target= is an IPv6 address, but no uplink has IPv6; give IPv4 targets, or an IPv6 Address=, DHCP=ipv6 or IPv6AcceptRA=yes to an uplink",
        );
    }
}

fn probe_section(c: &mut Checker, section: &Section, target_lines: &mut TargetLines) -> Probe {
    let map = c.entries(section, &PROBE_KEYS);
    let mut p = Probe::default();
    let found = targets(c, &map, "Target", "each probed through every uplink in every round");
    (p.targets, p.targets6, *target_lines) = (found.v4, found.v6, found.lines);
    if let Some(d) = c.span_of(&map, &bounds::INTERVAL) {
        p.interval = d;
        p.timeout = d;
    }
    if let Some(d) = c.span_of(&map, &bounds::TIMEOUT) {
        p.timeout = d;
    }
    // The table's bounds fit a u32.
    if let Some(n) = c.whole_of(&map, &bounds::FAIL_AFTER) {
        p.fail_after = n as u32;
    }
    if let Some(n) = c.whole_of(&map, &bounds::RECOVER_AFTER) {
        p.recover_after = n as u32;
    }
    if let Some(r) = c.parse_one(first(&map, "Require"), "all or a number of targets", |s| {
        if s == "all" { Some(Require::All) } else { s.parse::<usize>().ok().filter(|n| *n >= 1).map(Require::AtLeast) }
    }) {
        p.require = r;
    }
    if let Some(b) = c.parse_one(first(&map, "ArpGateway"), "yes or no", parse_bool) {
        p.arp_gateway = b;
    }
    if let Some(d) = c.span_of(&map, &bounds::HOLD_TIME) {
        p.hold_time = d;
    }
    if let Some(d) = c.span_of(&map, &bounds::MAX_HOLD_TIME) {
        p.max_hold_time = d;
    }
    if p.timeout > p.interval {
        let line = first(&map, "Timeout").map_or(section.line, |e| e.line);
        c.problem(
            line,
            format!(
                "Timeout={} is longer than Interval={}; a probe must finish before the next round starts",
                timespan::format(p.timeout),
                timespan::format(p.interval)
            ),
        );
    }
    if let Some(n) = c.percent_of(&map, &bounds::MAX_LOSS) {
        p.max_loss = n;
    }
    if let Some(n) = c.percent_of(&map, &bounds::RECOVER_LOSS) {
        p.recover_loss = n;
    }
    if p.recover_loss >= p.max_loss {
        let line = first(&map, "RecoverLoss").or(first(&map, "MaxLoss")).map_or(section.line, |e| e.line);
        c.problem(
            line,
            format!("RecoverLoss={}% is not below MaxLoss={}%; an uplink must get clearly better before it is trusted again", p.recover_loss, p.max_loss),
        );
    }
    p.max_latency = c.span_of(&map, &bounds::MAX_LATENCY);
    p.recover_latency = c.span_of(&map, &bounds::RECOVER_LATENCY);
    match (p.max_latency, p.recover_latency, first(&map, "MaxLatency"), first(&map, "RecoverLatency")) {
        (Some(max), _, Some(e), _) if max >= p.timeout => c.problem(
            e.line,
            format!(
                "MaxLatency={} is not below Timeout={}; a probe slower than the timeout already counts as lost",
                timespan::format(max),
                timespan::format(p.timeout)
            ),
        ),
        (Some(max), Some(rec), _, Some(e)) if rec >= max => c.problem(
            e.line,
            format!(
                "RecoverLatency={} is not below MaxLatency={}; an uplink must get clearly better before it is trusted again",
                timespan::format(rec),
                timespan::format(max)
            ),
        ),
        (None, Some(_), _, Some(e)) => c.problem(e.line, "RecoverLatency= without MaxLatency=; give the limit that demotes first"),
        (Some(max), None, _, _) => p.recover_latency = Some(max * 3 / 4),
        _ => {}
    }
    if p.max_hold_time < p.hold_time {
        let line = first(&map, "MaxHoldTime").map_or(section.line, |e| e.line);
        c.problem(
            line,
            format!(
                "MaxHoldTime={} is shorter than HoldTime={}; it caps how long flap damping may stretch the hold",
                timespan::format(p.max_hold_time),
                timespan::format(p.hold_time)
            ),
        );
    }
    p
}

/// A probe to one of this host's own addresses is answered by the host itself through `lo`,
/// never through an uplink: it would keep a dead uplink looking alive.
fn check_targets_are_not_uplinks(c: &mut Checker, uplinks: &[Located], sections: &[Section]) {
    let mut own: HashMap<IpAddr, &str> = HashMap::new();
    for l in uplinks {
        let name = l.uplink.interface.as_str();
        if let Addressing::Static(nets) = &l.uplink.addressing {
            own.extend(nets.iter().map(|n| (IpAddr::V4(n.addr()), name)));
        }
        own.extend(l.uplink.ipv6.iter().flat_map(|v6| &v6.addresses).map(|n| (IpAddr::V6(n.addr()), name)));
    }
    let keyed = |s: &Section| match s.name.as_str() {
        "Probe" => Some("Target"),
        "Uplink" => Some("ProbeTarget"),
        _ => None,
    };
    for section in sections {
        let Some(key) = keyed(section) else { continue };
        for e in section.entries.iter().filter(|e| e.key == key) {
            if let Some(name) = e.value.parse::<IpAddr>().ok().and_then(|a| own.get(&a)) {
                c.problem(e.line, format!("{key}={}: that is {name}'s own address; a probe to it is answered by this host, never through an uplink", e.value));
            }
        }
    }
}

/// The probe targets of `key` (`Target=` in [Probe], `ProbeTarget=` in [Uplink]), by family.
struct Targets {
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
    lines: TargetLines,
}

/// The probe targets of `key`, both with the same rules: unicast, a global IPv6 address, each
/// once, at most [`MAX_TARGETS`].
fn targets(c: &mut Checker, map: &HashMap<&str, Vec<&Entry>>, key: &str, why_bounded: &str) -> Targets {
    let entries: Vec<&&Entry> = map.get(key).into_iter().flatten().collect();
    if entries.len() > MAX_TARGETS {
        c.problem(entries[MAX_TARGETS].line, format!("{} {key}= lines; at most {MAX_TARGETS}, {why_bounded}", entries.len()));
    }
    let mut found = Targets { v4: Vec::new(), v6: Vec::new(), lines: TargetLines::default() };
    let mut seen: HashMap<IpAddr, usize> = HashMap::new();
    for e in entries.into_iter().take(MAX_TARGETS) {
        match e.value.parse::<IpAddr>() {
            Ok(a) if !c.fit(e, a, Use::Target) => {}
            Ok(a) => match seen.insert(a, e.line) {
                // A second copy would count twice towards Require=.
                Some(first) => c.problem(e.line, format!("{key}={a} is already a target (line {first})")),
                None => match a {
                    IpAddr::V4(a) => {
                        found.lines.ipv4.get_or_insert(e.line);
                        found.v4.push(a)
                    }
                    IpAddr::V6(a) => {
                        found.lines.ipv6.get_or_insert(e.line);
                        found.v6.push(a)
                    }
                },
            },
            Err(_) => c.bad_value(e, "an IPv4 or IPv6 address such as 192.168.178.1 or 2001:db8::1"),
        }
    }
    found
}

/// What `[Probe]` and the uplinks' own probe settings must agree on: every uplink has targets
/// (ARP only proves the gateway is alive, not the path behind it: the failure the daemon exists
/// for), `Require=` can be met by each uplink's targets, and each uplink's probes can take
/// longer than `MaxLatency=` (its timeout is the shorter of `Timeout=` and its interval).
fn probe_against_uplinks(c: &mut Checker, probe: &Probe, sections: &[Section], uplinks: &[Located]) {
    let Some(section) = sections.iter().find(|s| s.name == "Probe") else { return };
    let line_of = |key: &str| section.entries.iter().find(|e| e.key == key).map(|e| e.line);
    let borrowing: Vec<&Located> = uplinks.iter().filter(|l| l.uplink.probe_targets.is_empty() && l.uplink.probe_targets6.is_empty()).collect();
    if probe.targets.is_empty() && probe.targets6.is_empty() && (!borrowing.is_empty() || uplinks.is_empty()) {
        let own = if borrowing.len() < uplinks.len() {
            let names: Vec<&str> = borrowing.iter().map(|l| l.uplink.interface.as_str()).collect();
            format!(" (or ProbeTarget= in the [Uplink] of {})", names.join(", "))
        } else {
            String::new()
        };
        c.problem(
            section.line,
            format!("[Probe] has no Target=; give at least one address to probe through each uplink, such as the gateway and a host behind it{own}"),
        );
    }
    if let (Require::AtLeast(n), Some(line)) = (probe.require, line_of("Require")) {
        // Each family is judged on its own targets, so each that has any needs enough of them.
        let (v4, v6) = (probe.targets.len(), probe.targets6.len());
        if !borrowing.is_empty() && ((v4 > 0 && n > v4) || (v6 > 0 && n > v6)) {
            let (family, have) = if v4 > 0 && n > v4 { ("IPv4", v4) } else { ("IPv6", v6) };
            let only = if v4 == 0 || v6 == 0 {
                format!("only {} Target= given", v4 + v6)
            } else {
                format!("only {have} {family} Target= given, and each family is judged on its own targets")
            };
            c.problem(line, format!("Require={n}: {only}"));
        }
        for l in uplinks {
            // Each family of its own targets is judged on its own, as [Probe]'s are.
            let (v4, v6) = (l.uplink.probe_targets.len(), l.uplink.probe_targets6.len());
            let short = [(v4, "IPv4 "), (v6, "IPv6 ")].into_iter().find(|&(have, _)| have > 0 && have < n);
            let Some((have, family)) = short else { continue };
            let family = if v4 > 0 && v6 > 0 { family } else { "" };
            c.problem(
                l.keys["ProbeTarget"],
                format!(
                    "ProbeTarget=: {} has {have} {family}target(s) of its own, but Require={n} (line {line}) asks for {n} answers in every round",
                    l.uplink.interface
                ),
            );
        }
    }
    for l in uplinks {
        let Some(interval) = l.uplink.probe_interval else { continue };
        let timeout = probe.timeout.min(interval);
        if let Some(max) = probe.max_latency
            && max >= timeout
        {
            c.problem(
                l.keys["ProbeInterval"],
                format!(
                    "ProbeInterval={}: its probes wait at most {} for an answer, not longer than MaxLatency={} in [Probe]; a probe slower than that already counts as lost",
                    timespan::format(interval),
                    timespan::format(timeout),
                    timespan::format(max)
                ),
            );
        }
    }
}

/// Returns the uplink with the lines of its section, keys and addresses, for cross-checks.
/// An `[Uplink]`'s `Interface=` (checked as a name) and the line it is on; `None` with the problem
/// recorded. Shared with the bond's slaves.
fn uplink_interface(c: &mut Checker, section: &Section, map: &HashMap<&str, Vec<&Entry>>) -> Option<(String, usize)> {
    match first(map, "Interface") {
        Some(e) => match valid_uplink_name(&e.value) {
            Ok(()) => Some((e.value.clone(), e.line)),
            Err(why) => {
                c.problem(e.line, format!("Interface={}: {why}", e.value));
                None
            }
        },
        None => {
            c.problem(section.line, "[Uplink] has no Interface=");
            None
        }
    }
}

/// An `[Uplink]`'s `Priority=` and its line; `None` with the problem recorded.
fn uplink_priority(c: &mut Checker, section: &Section, map: &HashMap<&str, Vec<&Entry>>) -> Option<(u32, usize)> {
    match first(map, "Priority") {
        Some(e) => c.parse_one(Some(e), "a whole number, lower is preferred", |s| s.parse::<u32>().ok()).map(|p| (p, e.line)),
        None => {
            c.problem(section.line, "[Uplink] has no Priority= (lower is preferred)");
            None
        }
    }
}

/// Invariants between uplinks: unique interface, priority, table and address; each static
/// uplink's gateway a host on one of its own prefixes (the kernel refuses a default route via
/// anything else, so it is a typo, not a policy).
fn cross_check(c: &mut Checker, uplinks: &[Located], sections: &[Section]) {
    if uplinks.is_empty() && c.problems.is_empty() {
        c.problem(
            sections.first().map_or(1, |s| s.line),
            "the policy has no [Uplink] section; add one per interface, with Interface=, Priority= and either Address= and Gateway= or DHCP=",
        );
    }
    if let Some(extra) = uplinks.get(MAX_UPLINKS) {
        c.problem(extra.line, format!("one [Uplink] too many: a policy has room for {MAX_UPLINKS} uplinks (their rules must come before the daemon's)"));
    }
    let mut interfaces: HashMap<&str, usize> = HashMap::new();
    let mut priorities: HashMap<u32, (usize, &str)> = HashMap::new();
    let mut tables: HashMap<u32, (usize, &str)> = HashMap::new();
    let mut addresses: HashMap<Ipv4Addr, (usize, &str)> = HashMap::new();
    let mut addresses6: HashMap<Ipv6Addr, (usize, &str)> = HashMap::new();
    for Located { uplink: u, line, keys, address_lines, address6_lines, gateway_lines } in uplinks {
        let name = u.interface.as_str();
        let iface_line = keys.get("Interface").copied().unwrap_or(*line);
        if let Some(first) = interfaces.insert(name, iface_line) {
            c.problem(iface_line, format!("Interface={name} is already an uplink on line {first}"));
        }
        let prio_line = keys.get("Priority").copied().unwrap_or(*line);
        if let Some((first, other)) = priorities.insert(u.priority, (prio_line, name)) {
            c.problem(
                prio_line,
                format!("Priority={} is already the priority of {other} (line {first}); priorities must differ so the order is clear", u.priority),
            );
        }
        if let Some(t) = u.table {
            let table_line = keys.get("Table").copied().unwrap_or(*line);
            if let Some((first, other)) = tables.insert(t, (table_line, name)) {
                c.problem(table_line, format!("Table={t} is already the table of {other} (line {first}); each uplink needs its own"));
            }
        }
        if let Addressing::Static(nets) = &u.addressing {
            for (net, addr_line) in nets.iter().zip(address_lines.iter().copied()) {
                if let Some((first, other)) = addresses.insert(net.addr(), (addr_line, name)) {
                    c.problem(addr_line, format!("Address={net}: {} is already an address of {other} (line {first})", net.addr()));
                }
            }
        }
        if let Some(v6) = &u.ipv6 {
            for (net, addr_line) in v6.addresses.iter().zip(address6_lines.iter().copied()) {
                if let Some((first, other)) = addresses6.insert(net.addr(), (addr_line, name)) {
                    c.problem(addr_line, format!("Address={net}: {} is already an address of {other} (line {first})", net.addr()));
                }
            }
            if let (Some(gw), false) = (v6.gateway, v6.addresses.is_empty()) {
                let gw_line = gateway_lines.1.unwrap_or(*line);
                // A link-local router is on this link by definition (the kernel scopes it to the
                // uplink's interface); a global one must be inside one of its prefixes.
                if let Some(net) = v6.addresses.iter().find(|p| p.addr() == gw) {
                    c.problem(gw_line, format!("Gateway={gw} is {name}'s own address ({net}); give the address of the router"));
                } else if !is_link_local6(gw) && !v6.addresses.iter().any(|p| p.contains(&gw)) {
                    c.problem(
                        gw_line,
                        format!(
                            "Gateway={gw} is outside every IPv6 prefix of {name} ({}) and not link-local; give the router's link-local address (fe80::...) or one on its subnet",
                            v6.addresses.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
            }
        }
        if let Some(gw) = u.gateway {
            let gw_line = gateway_lines.0.unwrap_or(*line);
            // The gateway must be on this uplink's own link, or the kernel refuses its route. A
            // DHCP uplink's subnet is known only from its lease, so it is checked by the hook.
            if let Addressing::Static(own) = &u.addressing {
                if let Some(net) = own.iter().find(|p| p.addr() == gw) {
                    c.problem(gw_line, format!("Gateway={gw} is {name}'s own address ({net}); give the address of the router"));
                } else {
                    match own.iter().find(|p| p.contains(&gw)) {
                        None => c.problem(gw_line, format!("Gateway={gw} is outside every prefix of {name} ({}); the router must be on its subnet", list(own))),
                        Some(p) if !is_host_of(p, gw) => {
                            c.problem(gw_line, format!("Gateway={gw} is not a host address of {}; give the address of the router", p.trunc()))
                        }
                        Some(_) => {}
                    }
                }
            }
        }
    }
}

/// Whether `addr` can be a host on `net`: not its network or broadcast address, except on /31
/// point-to-point links (RFC 3021) and /32, where every address is a host.
fn is_host_of(net: &Ipv4Net, addr: Ipv4Addr) -> bool {
    net.prefix_len() >= 31 || (addr != net.network() && addr != net.broadcast())
}

/// A prefix of length 0 would make the whole address space this link's.
fn zero_prefix(value: &str) -> String {
    format!("Address={value}: a /0 prefix would put every address on this link; give the subnet's prefix length, such as /24 or /64")
}

fn list(prefixes: &[Ipv4Net]) -> String {
    prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::MAX_UPLINKS;

    #[test]
    fn every_uplinks_rules_fit_before_the_daemons_rule() {
        let policy = |n: usize| -> String {
            (0..n).map(|i| format!("[Uplink]\nInterface=u{i}\nPriority={i}\nAddress=10.0.{}.{}/16\nGateway=10.0.255.1\n", i / 250, i % 250 + 2)).collect()
        };
        let plan = crate::plan::plan(&crate::policy::parse("p", &policy(MAX_UPLINKS)).unwrap());
        let last = plan.uplinks().last().unwrap().rules.iter().map(|r| r.priority).max().unwrap();
        assert!(last < crate::numbers::RULE_PRIORITY_END, "{last}");
        let err = crate::policy::parse("p", &policy(MAX_UPLINKS + 1)).unwrap_err().to_string();
        assert!(err.contains("one [Uplink] too many"), "{err}");
    }
}
