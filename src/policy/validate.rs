//! Raw sections -> [`Policy`]: every key checked against what it may hold, every cross-uplink
//! invariant checked, and every problem reported with its file and line.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;

use super::error::{Diagnostic, Diagnostics};
use super::unit_file::{Entry, Section};
use super::{Addressing, Backend, Dhcp, Mode, Policy, Probe, Require, Subflows, Uplink, timespan, valid_uplink_name};
use crate::numbers::{KERNEL_TABLES, LEGACY_DAEMON_TABLE, MAX_ADDRESSES, MAX_UPLINKS};

/// A valid `[Uplink]` with the lines its checks between uplinks point at.
struct Located<'s> {
    uplink: Uplink,
    /// The `[Uplink]` header.
    line: usize,
    /// The first line of each key.
    keys: HashMap<&'s str, usize>,
    /// The line of each static address, in the order of `Addressing::Static`.
    address_lines: Vec<usize>,
}

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

    /// Groups a section's entries by key, refusing keys the section does not know and repeats of
    /// keys that take one value (systemd would silently keep the last; for a network policy a
    /// silent choice between two values is a trap). An empty assignment resets a repeatable list.
    fn entries<'s>(&mut self, section: &'s Section, single: &[&str], repeatable: &[&str]) -> HashMap<&'s str, Vec<&'s Entry>> {
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

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    s.parse().ok()
}

pub fn policy(file: &str, sections: &[Section]) -> Result<Policy, Diagnostics> {
    let mut c = Checker { file, problems: Vec::new() };
    let mut seen_once: HashMap<&str, usize> = HashMap::new();
    let mut backend = Backend::Auto;
    let mut mode = Mode::Routes;
    let mut mptcp = true;
    let mut probe = None;
    let mut uplinks: Vec<Located> = Vec::new();

    for section in sections {
        if matches!(section.name.as_str(), "Policy" | "Probe")
            && let Some(line) = seen_once.insert(section.name.as_str(), section.line)
        {
            c.problem(section.line, format!("[{}] appears twice (first on line {line}); merge them", section.name));
            continue;
        }
        match section.name.as_str() {
            "Policy" => {
                let map = c.entries(section, &["Backend", "Mode", "MPTCP"], &[]);
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
                    match e.value.as_str() {
                        "routes" => mode = Mode::Routes,
                        "bond" => c.problem(e.line, "Mode=bond: active-backup bonding is not implemented yet; use Mode=routes".to_string()),
                        _ => c.bad_value(e, "routes"),
                    }
                }
            }
            "Probe" => probe = Some(probe_section(&mut c, section)),
            "Uplink" => {
                if let Some(u) = uplink_section(&mut c, section) {
                    uplinks.push(u);
                }
            }
            other => {
                let hint = match ["Policy", "Probe", "Uplink"].iter().find(|k| k.eq_ignore_ascii_case(other)) {
                    Some(k) => format!(" (section names are case-sensitive: [{k}])"),
                    None => String::new(),
                };
                c.problem(section.line, format!("unknown section [{other}]{hint}, expected [Policy], [Probe] or [Uplink]"))
            }
        }
    }

    cross_check(&mut c, &uplinks, sections);
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
    if let Some(p) = &probe {
        probe_against_uplinks(&mut c, p, sections, &uplinks);
    }

    if c.problems.is_empty() {
        Ok(Policy { source: file.to_string(), backend, mode, probe, mptcp, uplinks: uplinks.into_iter().map(|l| l.uplink).collect() })
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

/// The shortest probe interval (and timeout): each round sends a packet per target and an ARP
/// broadcast per uplink, so a shorter one floods the LAN without detecting any faster than the
/// round trip itself.
const MIN_INTERVAL: Duration = Duration::from_millis(20);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// Hold times beyond a day are a typo; the daemon's clock arithmetic stays far from overflow.
const MAX_HOLD: Duration = Duration::from_secs(86_400);
/// Targets per [Probe]: each is probed through every uplink every round.
const MAX_TARGETS: usize = 16;

fn probe_section(c: &mut Checker, section: &Section) -> Probe {
    let map = c.entries(
        section,
        &[
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
        &["Target"],
    );
    let mut p = Probe { targets: targets(c, &map, "Target", "each probed through every uplink in every round"), ..Probe::default() };
    let bounded = |min: Duration, max: Duration| move |s: &str| timespan::parse(s).filter(|d| (min..=max).contains(d));
    let span = bounded(Duration::from_millis(1), MAX_HOLD);
    let count = |s: &str| s.parse::<u32>().ok().filter(|n| (1..=1000).contains(n));
    const SPAN: &str = "a time span from 1ms to 1d such as 200ms or 2s";
    const COUNT: &str = "a whole number from 1 to 1000";
    let interval_expected = format!("a time span from {} to {} such as 200ms", timespan::format(MIN_INTERVAL), timespan::format(MAX_INTERVAL));
    if let Some(d) = c.parse_one(first(&map, "Interval"), &interval_expected, bounded(MIN_INTERVAL, MAX_INTERVAL)) {
        p.interval = d;
        p.timeout = d;
    }
    if let Some(d) = c.parse_one(first(&map, "Timeout"), &interval_expected, bounded(MIN_INTERVAL, MAX_INTERVAL)) {
        p.timeout = d;
    }
    if let Some(n) = c.parse_one(first(&map, "FailAfter"), COUNT, count) {
        p.fail_after = n;
    }
    if let Some(n) = c.parse_one(first(&map, "RecoverAfter"), COUNT, count) {
        p.recover_after = n;
    }
    if let Some(r) = c.parse_one(first(&map, "Require"), "all or a number of targets", |s| {
        if s == "all" { Some(Require::All) } else { s.parse::<usize>().ok().filter(|n| *n >= 1).map(Require::AtLeast) }
    }) {
        p.require = r;
    }
    if let Some(b) = c.parse_one(first(&map, "ArpGateway"), "yes or no", parse_bool) {
        p.arp_gateway = b;
    }
    if let Some(d) = c.parse_one(first(&map, "HoldTime"), SPAN, span) {
        p.hold_time = d;
    }
    if let Some(d) = c.parse_one(first(&map, "MaxHoldTime"), SPAN, span) {
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
    let percent = |s: &str| s.strip_suffix('%').unwrap_or(s).parse::<u8>().ok().filter(|n| (1..=100).contains(n));
    const PERCENT: &str = "a percentage from 1% to 100%";
    if let Some(n) = c.parse_one(first(&map, "MaxLoss"), PERCENT, percent) {
        p.max_loss = n;
    }
    if let Some(n) =
        c.parse_one(first(&map, "RecoverLoss"), "a percentage from 0% to 99%", |s| s.strip_suffix('%').unwrap_or(s).parse::<u8>().ok().filter(|n| *n < 100))
    {
        p.recover_loss = n;
    }
    if p.recover_loss >= p.max_loss {
        let line = first(&map, "RecoverLoss").or(first(&map, "MaxLoss")).map_or(section.line, |e| e.line);
        c.problem(
            line,
            format!("RecoverLoss={}% is not below MaxLoss={}%; an uplink must get clearly better before it is trusted again", p.recover_loss, p.max_loss),
        );
    }
    let latency = bounded(Duration::from_millis(1), MAX_INTERVAL);
    p.max_latency = c.parse_one(first(&map, "MaxLatency"), SPAN, latency);
    p.recover_latency = c.parse_one(first(&map, "RecoverLatency"), SPAN, latency);
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

/// The probe targets of `key` (`Target=` in [Probe], `ProbeTarget=` in [Uplink]): unicast,
/// each once, at most [`MAX_TARGETS`].
fn targets(c: &mut Checker, map: &HashMap<&str, Vec<&Entry>>, key: &str, why_bounded: &str) -> Vec<Ipv4Addr> {
    let entries: Vec<&&Entry> = map.get(key).into_iter().flatten().collect();
    if entries.len() > MAX_TARGETS {
        c.problem(entries[MAX_TARGETS].line, format!("{} {key}= lines; at most {MAX_TARGETS}, {why_bounded}", entries.len()));
    }
    let mut found = Vec::new();
    let mut seen: HashMap<Ipv4Addr, usize> = HashMap::new();
    for e in entries.into_iter().take(MAX_TARGETS) {
        match parse_ipv4(&e.value) {
            Some(a) if a.is_unspecified() || a.is_broadcast() || a.is_multicast() => c.bad_value(e, "a unicast IPv4 address"),
            Some(a) => match seen.insert(a, e.line) {
                // A second copy would count twice towards Require=.
                Some(first) => c.problem(e.line, format!("{key}={a} is already a target (line {first})")),
                None => found.push(a),
            },
            None => c.bad_value(e, "an IPv4 address such as 192.168.178.1"),
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
    let borrowing: Vec<&Located> = uplinks.iter().filter(|l| l.uplink.probe_targets.is_empty()).collect();
    if probe.targets.is_empty() && (!borrowing.is_empty() || uplinks.is_empty()) {
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
        if n > probe.targets.len() && !probe.targets.is_empty() && !borrowing.is_empty() {
            c.problem(line, format!("Require={n}: only {} Target= given", probe.targets.len()));
        }
        for l in uplinks.iter().filter(|l| !l.uplink.probe_targets.is_empty() && l.uplink.probe_targets.len() < n) {
            c.problem(
                l.keys["ProbeTarget"],
                format!(
                    "ProbeTarget=: {} has {} target(s) of its own, but Require={n} (line {line}) asks for {n} answers in every round",
                    l.uplink.interface,
                    l.uplink.probe_targets.len()
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
fn uplink_section<'s>(c: &mut Checker, section: &'s Section) -> Option<Located<'s>> {
    let map = c.entries(section, &["Interface", "Priority", "DHCP", "Gateway", "Table", "MPTCP", "ProbeInterval"], &["Address", "ProbeTarget"]);
    let lines: HashMap<&str, usize> = map.iter().filter_map(|(k, v)| v.first().map(|e| (*k, e.line))).collect();
    let before = c.problems.len();

    let interface = match first(&map, "Interface") {
        Some(e) => match valid_uplink_name(&e.value) {
            Ok(()) => Some(e.value.clone()),
            Err(why) => {
                c.problem(e.line, format!("Interface={}: {why}", e.value));
                None
            }
        },
        None => {
            c.problem(section.line, "[Uplink] has no Interface=");
            None
        }
    };
    let priority = match first(&map, "Priority") {
        Some(e) => c.parse_one(Some(e), "a whole number, lower is preferred", |s| s.parse::<u32>().ok()),
        None => {
            c.problem(section.line, "[Uplink] has no Priority= (lower is preferred)");
            None
        }
    };
    let mut addresses = Vec::new();
    let mut address_lines = Vec::new();
    for e in map.get("Address").into_iter().flatten() {
        match e.value.parse::<Ipv4Net>() {
            Ok(net) if !is_host_of(&net, net.addr()) => c.problem(
                e.line,
                format!(
                    "Address={}: that is the {} address of {}, not a host address",
                    e.value,
                    if net.addr() == net.network() { "network" } else { "broadcast" },
                    net.trunc()
                ),
            ),
            Ok(net) if net.addr().is_unspecified() || net.addr().is_multicast() || net.addr().is_loopback() || net.addr().is_broadcast() => {
                c.bad_value(e, "a unicast IPv4 host address with prefix length")
            }
            Ok(_) if addresses.len() == MAX_ADDRESSES => c.problem(
                e.line,
                format!("Address={}: an uplink has room for {MAX_ADDRESSES} addresses (each takes two rule priorities of the uplink's range)", e.value),
            ),
            Ok(net) => {
                addresses.push(net);
                address_lines.push(e.line);
            }
            Err(_) if parse_ipv4(&e.value).is_some() => {
                c.problem(e.line, format!("Address={}: the prefix length is missing; add the subnet's, such as {}/24", e.value, e.value))
            }
            Err(_) if e.value.parse::<std::net::Ipv6Addr>().is_ok() || e.value.contains(':') => {
                c.problem(e.line, format!("Address={}: IPv6 uplinks are not supported yet; give an IPv4 address", e.value))
            }
            Err(_) => c.bad_value(e, "an IPv4 address with prefix length such as 192.168.178.99/24"),
        }
    }
    let dhcp = match first(&map, "DHCP") {
        Some(e) if e.value == "ipv6" => {
            c.problem(e.line, "DHCP=ipv6: an IPv6-only uplink has no IPv4 address for multihome's policy; use DHCP=yes or ipv4");
            None
        }
        e => c.parse_one(e, "ipv4, yes or no", |s| match s {
            "ipv4" => Some(Some(Dhcp::Ipv4)),
            s => parse_bool(s).map(|b| b.then_some(Dhcp::Yes)),
        }),
    };
    let gateway = c.parse_one(first(&map, "Gateway"), "an IPv4 address such as 192.168.178.1", parse_ipv4);
    // The kernel's own names are understood, so that `Table=main` is refused for the right reason.
    let table = c.parse_one(first(&map, "Table"), "a routing table number from 1 to 4294967295", |s| match KERNEL_TABLES.iter().find(|(_, name)| *name == s) {
        Some((n, _)) => Some(*n),
        None => s.parse::<u32>().ok(),
    });
    let mptcp = c.parse_one(first(&map, "MPTCP"), "subflow, backup or no", |s| match s {
        "subflow" => Some(Subflows::Subflow),
        "backup" => Some(Subflows::Backup),
        s => parse_bool(s).filter(|b| !b).map(|_| Subflows::No),
    });
    if let (Some(t), Some(e)) = (table, first(&map, "Table")) {
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

    let addressing = match (dhcp.flatten(), addresses.is_empty(), map.contains_key("Address")) {
        (Some(_), false, _) => {
            let dhcp = first(&map, "DHCP").map_or("", |e| e.value.as_str());
            c.problem(
                lines["DHCP"],
                format!("DHCP={dhcp}: this [Uplink] also has Address= (line {}); give either static addresses or DHCP=, not both", lines["Address"]),
            );
            None
        }
        (Some(d), true, _) => Some(Addressing::Dhcp(d)),
        (None, false, _) => Some(Addressing::Static(addresses)),
        (None, true, had_address) => {
            if !had_address && c.problems.len() == before {
                let of = interface.as_deref().map_or(String::new(), |n| format!(" of {n}"));
                c.problem(section.line, format!("[Uplink]{of} gets no address: give Address= with Gateway=, or DHCP=ipv4 or yes"));
            }
            None
        }
    };
    if let (Some(Addressing::Dhcp(_)), Some(line)) = (&addressing, lines.get("Gateway")) {
        // The lease names the router and may change it; a fixed one beside it would go stale.
        c.problem(*line, "Gateway= on a DHCP uplink: the lease's router is used; remove Gateway= or give a static Address=");
    }
    if matches!(addressing, Some(Addressing::Static(_))) && gateway.is_none() && !lines.contains_key("Gateway") {
        let of = interface.as_deref().map_or(String::new(), |n| format!(" of {n}"));
        c.problem(section.line, format!("[Uplink]{of} has a static Address= but no Gateway=; give the address of the router on its subnet"));
    }

    let probe_targets = targets(c, &map, "ProbeTarget", "each probed through this uplink in every round");
    let interval_expected = format!("a time span from {} to {} such as 2s", timespan::format(MIN_INTERVAL), timespan::format(MAX_INTERVAL));
    let probe_interval =
        c.parse_one(first(&map, "ProbeInterval"), &interval_expected, |s| timespan::parse(s).filter(|d| (MIN_INTERVAL..=MAX_INTERVAL).contains(d)));

    if c.problems.len() != before {
        return None;
    }
    Some(Located {
        uplink: Uplink { interface: interface?, priority: priority?, addressing: addressing?, gateway, table, mptcp, probe_targets, probe_interval },
        line: section.line,
        keys: lines,
        address_lines,
    })
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
    for Located { uplink: u, line, keys, address_lines } in uplinks {
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
        if let Some(gw) = u.gateway {
            let gw_line = keys.get("Gateway").copied().unwrap_or(*line);
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
        let last = plan.uplinks.last().unwrap().rules.iter().map(|r| r.priority).max().unwrap();
        assert!(last < crate::numbers::RULE_PRIORITY_END, "{last}");
        let err = crate::policy::parse("p", &policy(MAX_UPLINKS + 1)).unwrap_err().to_string();
        assert!(err.contains("one [Uplink] too many"), "{err}");
    }
}
