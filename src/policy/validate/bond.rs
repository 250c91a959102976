//! `Mode=bond`: the `[Bond]` section and the `[Uplink]` sections as its slaves, checked with file
//! and line like the rest of the policy. Key names are networkd's `.netdev` `[Bond]` ones where it
//! has them, so a reader of `man systemd.netdev` knows what they do.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use ipnet::Ipv4Net;

use super::addresses::Use;
use super::{Checker, Keys, bounds, first, is_host_of, parse_bool, parse_ipv4, zero_prefix};
use crate::numbers::{MAX_ADDRESSES, MAX_UPLINKS};
use crate::policy::bond::{ArpAllTargets, ArpValidate, Bond, DEFAULT_MII_INTERVAL, FailOverMac, Monitor, PrimaryReselect, Slave, is_wifi};
use crate::policy::unit_file::{Entry, Section};
use crate::policy::{Addressing, Dhcp, Probe, timespan, valid_uplink_name};

/// Every key of `[Bond]`.
const BOND_KEYS: Keys = Keys {
    single: &[
        "Name",
        "DHCP",
        "Gateway",
        "Primary",
        "PrimaryReselectPolicy",
        "MIIMonitorSec",
        "UpDelaySec",
        "DownDelaySec",
        "ARPIntervalSec",
        "ARPValidate",
        "ARPAllTargets",
        "FailOverMACPolicy",
        "ProbeFailover",
    ],
    repeatable: &["Address", "ARPIPTargets"],
};

/// A slave's `[Uplink]`: the addressing keys are known so that they are refused for a reason.
const SLAVE_KEYS: Keys = Keys { single: &["Interface", "Priority", "DHCP", "Gateway", "Table"], repeatable: &["Address"] };

/// The kernel's limit (BOND_MAX_ARP_TARGETS).
const MAX_ARP_TARGETS: usize = 16;

/// Whether the policy asks for bond mode, before its sections are read in order: the `[Uplink]`
/// sections mean slaves then, wherever `[Policy]` stands.
pub fn wanted(sections: &[Section]) -> bool {
    sections.iter().filter(|s| s.name == "Policy").flat_map(|s| &s.entries).any(|e| e.key == "Mode" && e.value == "bond")
}

/// A `[Bond]` section without `Mode=bond`: its keys are still checked (a typo is a typo), and the
/// section is refused, since it would otherwise be silently ignored.
pub fn unused_section(c: &mut Checker, section: &Section) {
    c.entries(section, &BOND_KEYS);
    c.problem(section.line, "[Bond] is read only with Mode=bond in [Policy]; add Mode=bond, or remove [Bond] to keep a table per uplink");
}

/// One `[Uplink]` of a bond: an interface and its rank. Addressing keys belong to `[Bond]`.
pub fn slave_section(c: &mut Checker, section: &Section) -> Option<Located> {
    let map = c.entries(section, &SLAVE_KEYS);
    for key in ["Address", "DHCP", "Gateway"] {
        if let Some(e) = first(&map, key) {
            c.problem(e.line, format!("{key}={}: with Mode=bond the address is the bond's; move {key}= to [Bond]", e.value));
        }
    }
    if let Some(e) = first(&map, "Table") {
        c.problem(e.line, format!("Table={}: with Mode=bond there is no table per uplink; remove it", e.value));
    }
    let interface = super::uplink_interface(c, section, &map);
    let priority = super::uplink_priority(c, section, &map);
    let ((interface, line), (priority, priority_line)) = (interface?, priority?);
    Some(Located { slave: Slave { interface, priority }, line, priority_line })
}

/// A slave with the lines of its Interface= and Priority=, for the checks between slaves.
pub struct Located {
    slave: Slave,
    line: usize,
    priority_line: usize,
}

/// `[Bond]` with its slaves (each with the line of its Interface=): the bond, or `None` with the
/// problems recorded.
pub fn bond(c: &mut Checker, section: Option<&Section>, slaves: Vec<Located>, policy_line: usize, probe: Option<(&Probe, &Section)>) -> Option<Bond> {
    let Some(section) = section else {
        c.problem(policy_line, "Mode=bond needs a [Bond] section: the bond's Name= and its Address= with Gateway=, or DHCP=");
        return None;
    };
    let before = c.problems.len();
    let map = c.entries(section, &BOND_KEYS);

    let name = match first(&map, "Name") {
        Some(e) => match valid_uplink_name(&e.value) {
            Ok(()) => Some(e.value.clone()),
            Err(why) => {
                c.problem(e.line, format!("Name={}: {why}", e.value));
                None
            }
        },
        None => Some("bond0".to_string()),
    };
    let (addressing, gateway) = addressing(c, section, &map);

    // Slaves: unique, ordered, at least two (one slave has nothing to fail over to).
    let mut interfaces: HashMap<&str, usize> = HashMap::new();
    let mut priorities: HashMap<u32, (usize, &str)> = HashMap::new();
    for Located { slave: s, line, priority_line } in &slaves {
        if let Some(first) = interfaces.insert(&s.interface, *line) {
            c.problem(*line, format!("Interface={} is already a slave of the bond on line {first}", s.interface));
        }
        if let Some((first, other)) = priorities.insert(s.priority, (*priority_line, &s.interface)) {
            c.problem(
                *priority_line,
                format!("Priority={} is already the priority of {other} (line {first}); priorities must differ so the order is clear", s.priority),
            );
        }
        if name.as_deref() == Some(s.interface.as_str()) {
            c.problem(*line, format!("Interface={}: that is the bond's own Name=; a bond cannot be its own slave", s.interface));
        }
    }
    if slaves.len() < 2 {
        c.problem(section.line, format!("a bond needs at least two [Uplink] sections to fail over between; {} given", slaves.len()));
    }
    if let Some(extra) = slaves.get(MAX_UPLINKS) {
        c.problem(extra.line, format!("one [Uplink] too many: a bond takes at most {MAX_UPLINKS} slaves here"));
    }
    let mut ranked: Vec<Slave> = slaves.iter().map(|l| l.slave.clone()).collect();
    ranked.sort_by_key(|s| s.priority);

    let primary = match first(&map, "Primary") {
        Some(e) if ranked.iter().any(|s| s.interface == e.value) => Some(e.value.clone()),
        Some(e) => {
            let names: Vec<&str> = ranked.iter().map(|s| s.interface.as_str()).collect();
            c.problem(
                e.line,
                format!("Primary={}: not a slave of the bond; give the Interface= of one of its [Uplink] sections ({})", e.value, names.join(", ")),
            );
            None
        }
        None => ranked.first().map(|s| s.interface.clone()),
    };
    let primary_reselect =
        c.parse_one(first(&map, "PrimaryReselectPolicy"), "always, better or failure", PrimaryReselect::parse).unwrap_or(PrimaryReselect::Always);
    let monitor = monitor(c, section, &map);
    let asked_mac = c.parse_one(first(&map, "FailOverMACPolicy"), "none, active or follow", FailOverMac::parse);
    let mut fail_over_mac = asked_mac.unwrap_or(FailOverMac::None);
    let mut notes = Vec::new();
    if fail_over_mac != FailOverMac::Active
        && let Some(wifi) = ranked.iter().find(|s| is_wifi(&s.interface))
    {
        // follow moves the bond's MAC to the new active slave at the failover, while it is
        // associated: the kernel refuses (EBUSY), the bond sends with a MAC the station did not
        // associate with, and the access point drops its frames (tests/system/wifi_bond.rs).
        // none sets the bond's MAC at the enslavement, which works only where the manager
        // enslaves the station before it associates (networkd does); an associated station
        // refuses it. With active, no slave's MAC changes; the bond's follows.
        let line = first(&map, "FailOverMACPolicy").map_or(section.line, |e| e.line);
        notes.push(format!(
            "{}:{line}: FailOverMACPolicy=active instead of {}: {} is Wi-Fi, which cannot take another MAC while associated; with active the bond takes the active slave's MAC",
            c.file,
            fail_over_mac.word(),
            wifi.interface
        ));
        fail_over_mac = FailOverMac::Active;
    }

    let probe_failover = c.parse_one(first(&map, "ProbeFailover"), "yes or no", parse_bool).unwrap_or(false);
    if let (Some(e), None) = (first(&map, "ProbeFailover"), probe) {
        c.problem(
            e.line,
            format!("ProbeFailover={}: the daemon probes through the bond only with a [Probe] section; add [Probe] with Target= (such as the gateway and a host behind it), or remove ProbeFailover=", e.value),
        );
    }
    if let Some((p, probe_section)) = probe {
        probe_through_bond(c, p, probe_section, monitor.as_ref(), &mut notes);
    }

    if c.problems.len() != before {
        return None;
    }
    Some(Bond {
        name: name?,
        addressing: addressing?,
        gateway,
        slaves: ranked,
        primary: primary?,
        primary_reselect,
        monitor: monitor?,
        fail_over_mac,
        probe_failover,
        notes,
    })
}

/// `[Probe]` in bond mode: the daemon probes through the bond (its one IPv4 address, out of the
/// active slave), so it needs IPv4 targets; with ARP monitoring the bond already sees a dead
/// gateway itself, and the probes are the second line (a dead path behind the gateway).
fn probe_through_bond(c: &mut Checker, p: &Probe, section: &Section, monitor: Option<&Monitor>, notes: &mut Vec<String>) {
    let target_line = |v6: bool| section.entries.iter().find(|e| e.key == "Target" && e.value.contains(':') == v6).map(|e| e.line);
    // A Target= with a ':' that is no IPv6 address ("Target=:") is refused as a bad value, and
    // is not among targets6: the message quotes a target that was read (issue 23, a panic).
    if let (Some(line), Some(first)) = (target_line(true), p.targets6.first()) {
        c.problem(line, format!("Target={first}: a bond has IPv4 only; give IPv4 targets to probe through it"));
    }
    if p.targets.is_empty() && p.targets6.is_empty() {
        c.problem(section.line, "[Probe] has no Target=; give at least one address to probe through the bond, such as the gateway and a host behind it");
    }
    if let Some(Monitor::Arp { .. }) = monitor {
        notes.push(format!(
            "{}:{}: [Probe] with ARP monitoring: the bond's ARP monitor is the first line (it sees a dead gateway and fails over by itself); the daemon's probes see what lies behind the gateway",
            c.file, section.line
        ));
    }
}

fn addressing(c: &mut Checker, section: &Section, map: &HashMap<&str, Vec<&Entry>>) -> (Option<Addressing>, Option<Ipv4Addr>) {
    let mut addresses: Vec<(Ipv4Net, usize)> = Vec::new();
    for e in map.get("Address").into_iter().flatten() {
        match e.value.parse::<Ipv4Net>() {
            Ok(net) if !c.fit(e, IpAddr::V4(net.addr()), Use::Address) => {}
            Ok(net) if net.prefix_len() == 0 => c.problem(e.line, zero_prefix(&e.value)),
            Ok(net) if !is_host_of(&net, net.addr()) => c.bad_value(e, "a unicast IPv4 host address with prefix length"),
            Ok(_) if addresses.len() == MAX_ADDRESSES => c.problem(e.line, format!("Address={}: a bond has room for {MAX_ADDRESSES} addresses", e.value)),
            Ok(net) => match addresses.iter().find(|(a, _)| a.addr() == net.addr()) {
                Some((_, first)) => c.problem(e.line, format!("Address={net}: {} is already an address of the bond (line {first})", net.addr())),
                None => addresses.push((net, e.line)),
            },
            Err(_) if parse_ipv4(&e.value).is_some() => {
                c.problem(e.line, format!("Address={}: the prefix length is missing; add the subnet's, such as {}/24", e.value, e.value))
            }
            Err(_) => c.bad_value(e, "an IPv4 address with prefix length such as 192.168.178.99/24"),
        }
    }
    let dhcp = c.parse_one(first(map, "DHCP"), "ipv4, yes or no", |s| match s {
        "ipv4" => Some(Some(Dhcp::Ipv4)),
        s => parse_bool(s).map(|b| b.then_some(Dhcp::Yes)),
    });
    let gateway = c
        .parse_one(first(map, "Gateway"), "an IPv4 address such as 192.168.178.1", parse_ipv4)
        .filter(|a| first(map, "Gateway").is_some_and(|e| c.fit(e, IpAddr::V4(*a), Use::Gateway)));
    let addressing = match (dhcp.flatten(), addresses.is_empty()) {
        (Some(_), false) => {
            let e = first(map, "DHCP").expect("parsed above");
            c.problem(e.line, format!("DHCP={}: [Bond] also has Address= (line {}); give either static addresses or DHCP=, not both", e.value, addresses[0].1));
            None
        }
        (Some(d), true) => {
            if let Some(e) = first(map, "Gateway") {
                c.problem(e.line, "Gateway= on a DHCP bond: the lease's router is used; remove Gateway= or give a static Address=");
            }
            Some(Addressing::Dhcp(d))
        }
        (None, false) => {
            let nets: Vec<Ipv4Net> = addresses.iter().map(|(n, _)| *n).collect();
            match (gateway, first(map, "Gateway")) {
                (None, None) => c.problem(section.line, "[Bond] has a static Address= but no Gateway=; give the address of the router on its subnet"),
                (Some(gw), Some(e)) if !nets.iter().any(|p| p.contains(&gw) && is_host_of(p, gw) && p.addr() != gw) => c.problem(
                    e.line,
                    format!("Gateway={gw} is not a host on the bond's subnets other than its own address ({}); give the router's address", list(&nets)),
                ),
                _ => {}
            }
            Some(Addressing::Static(nets))
        }
        (None, true) => {
            if !map.contains_key("Address") && !map.contains_key("DHCP") {
                c.problem(section.line, "[Bond] gets no address: give Address= with Gateway=, or DHCP=ipv4 or yes");
            }
            None
        }
    };
    (addressing, gateway)
}

fn list(prefixes: &[Ipv4Net]) -> String {
    prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
}

fn monitor(c: &mut Checker, section: &Section, map: &HashMap<&str, Vec<&Entry>>) -> Option<Monitor> {
    let before = c.problems.len();
    // Whole milliseconds, the kernel's unit for both monitors.
    let mii = c.span_of(map, &bounds::MII_MONITOR);
    let up = c.span_of(map, &bounds::UP_DELAY);
    let down = c.span_of(map, &bounds::DOWN_DELAY);
    let arp = c.span_of(map, &bounds::ARP_INTERVAL);
    let validate = c.parse_one(first(map, "ARPValidate"), "none, active, backup or all", ArpValidate::parse);
    let all_targets = c.parse_one(first(map, "ARPAllTargets"), "any or all", ArpAllTargets::parse);
    let mut targets: Vec<Ipv4Addr> = Vec::new();
    let mut target_lines: HashMap<Ipv4Addr, usize> = HashMap::new();
    // networkd's form: repeatable, each a space-separated list.
    for e in map.get("ARPIPTargets").into_iter().flatten() {
        for word in e.value.split_whitespace() {
            match parse_ipv4(word) {
                Some(a) if let Some(why) = super::addresses::unfit(IpAddr::V4(a), Use::Target) => c.problem(e.line, format!("ARPIPTargets={word}: {why}")),
                Some(a) => match target_lines.insert(a, e.line) {
                    Some(first) => c.problem(e.line, format!("ARPIPTargets={a} is already a target (line {first})")),
                    None => targets.push(a),
                },
                None => c.problem(e.line, format!("ARPIPTargets={word}: expected an IPv4 address such as 192.168.178.1")),
            }
        }
    }
    if targets.len() > MAX_ARP_TARGETS {
        let e = first(map, "ARPIPTargets").expect("targets came from it");
        c.problem(e.line, format!("{} ARPIPTargets= addresses; the kernel takes at most {MAX_ARP_TARGETS}", targets.len()));
    }
    let line = |key: &str| first(map, key).map(|e| e.line);
    let arp_keys: Vec<&str> = ["ARPIntervalSec", "ARPIPTargets", "ARPValidate", "ARPAllTargets"].into_iter().filter(|k| map.contains_key(k)).collect();
    let mii_keys: Vec<&str> = ["MIIMonitorSec", "UpDelaySec", "DownDelaySec"].into_iter().filter(|k| map.contains_key(k)).collect();
    if !arp_keys.is_empty() && !mii_keys.is_empty() {
        // The kernel runs one monitor: with both, ARP is silently switched off.
        let at = line(mii_keys[0]).max(line(arp_keys[0])).unwrap_or(section.line);
        c.problem(
            at,
            format!(
                "{}= and {}=: the kernel runs either MII or ARP monitoring, not both; keep MIIMonitorSec= (carrier, fast) or ARPIntervalSec= with ARPIPTargets= (also sees a dead gateway)",
                mii_keys[0], arp_keys[0]
            ),
        );
        return None;
    }
    if !arp_keys.is_empty() {
        match (arp, targets.is_empty()) {
            (None, _) if line("ARPIntervalSec").is_none() => {
                c.problem(line(arp_keys[0]).unwrap_or(section.line), format!("{}= without ARPIntervalSec=: give the interval of the ARP monitor", arp_keys[0]))
            }
            (Some(_), true) if line("ARPIPTargets").is_none() => c.problem(
                line("ARPIntervalSec").unwrap_or(section.line),
                "ARPIntervalSec= without ARPIPTargets=: give the addresses to ask, such as the gateway",
            ),
            _ => {}
        }
        if c.problems.len() != before {
            return None;
        }
        return Some(Monitor::Arp {
            interval: arp?,
            targets,
            validate: validate.unwrap_or(ArpValidate::None),
            all_targets: all_targets.unwrap_or(ArpAllTargets::Any),
        });
    }
    let interval = match (mii, line("MIIMonitorSec")) {
        (Some(d), _) => d,
        (None, None) => DEFAULT_MII_INTERVAL,
        (None, Some(_)) => return None,
    };
    let (up, down) = (up.unwrap_or(Duration::ZERO), down.unwrap_or(Duration::ZERO));
    for (key, delay) in [("UpDelaySec", up), ("DownDelaySec", down)] {
        if delay.as_millis() % interval.as_millis() != 0 {
            // The kernel rounds it down to a multiple, so the file would not say what happens.
            c.problem(
                line(key).unwrap_or(section.line),
                format!(
                    "{key}={}: not a multiple of MIIMonitorSec={}; the kernel would round it down to {}",
                    timespan::format(delay),
                    timespan::format(interval),
                    timespan::format(Duration::from_millis((delay.as_millis() / interval.as_millis() * interval.as_millis()) as u64))
                ),
            );
        }
    }
    if c.problems.len() != before {
        return None;
    }
    Some(Monitor::Mii { interval, up_delay: up, down_delay: down })
}
