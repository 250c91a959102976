//! systemd-networkd's .network files (as `backend::networkd::survey` reads them: its search
//! path, one file per name with the earlier directory winning, drop-ins) and its links ->
//! candidates. Pure.
//!
//! Each wired or Wi-Fi link takes the first file whose `[Match]` takes it, as networkd does,
//! with that file's drop-ins; files and drop-ins multihome wrote are never read as the user's.
//! Read from them: `DHCP=`, `Address=` (and `[Address]`), `Gateway=` and `[Route]` default
//! routes with their `Metric=`, `[DHCPv4] RouteMetric=`, `IPv6AcceptRA=` and `[IPv6AcceptRA]
//! RouteMetric=`. The metric of the default route is networkd's: `Metric=`, else 0 for a static
//! IPv4 route and 1024 for IPv6 and for the routes of a lease or of router advertisements.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::{Candidate, Found, Medium};
use crate::backend::networkd::matcher::{Fact, LinkFacts, MatchKeys, Verdict};
use crate::backend::networkd::names;
use crate::backend::networkd::survey::{NetworkFile, NetworkFiles};
use crate::import::policy_text::UplinkKeys;
use crate::policy::unit_file::{Section, parse_bool};

/// The metric networkd gives the routes of a DHCPv4 lease, of router advertisements, and an
/// IPv6 route without `Metric=` (the kernel's IPv6 default).
const DEFAULT_DYNAMIC_METRIC: u32 = 1024;

/// One link as networkd describes it.
#[derive(Debug, Clone, Default)]
pub struct Link {
    pub facts: LinkFacts,
    /// The kernel's index: the last tie-breaker.
    pub index: u32,
    /// The IPv4 router of its default route in main now (a lease's).
    pub router_now: Option<Ipv4Addr>,
}

/// The candidates for networkd's links, and a note for each link or line left out.
pub fn found(files: &NetworkFiles, links: &[Link]) -> Found {
    let mut candidates = Vec::new();
    let mut notes = Vec::new();
    for link in links {
        match candidate(files, link, &mut notes) {
            Ok(c) => candidates.push(c),
            Err(Some(note)) => notes.push(format!("{}: {note}", link.facts.name)),
            Err(None) => {}
        }
    }
    Found {
        manager: "systemd-networkd".into(),
        backend: "networkd",
        tie_breakers: "then the link's index",
        order_word: "the kernel's link order (ifindex)",
        candidates,
        notes,
    }
}

/// networkd's Type (and Kind) of the link as a medium: Ethernet that is a NIC or a veth is wired.
fn medium(facts: &LinkFacts) -> Result<(Medium, String), Option<String>> {
    match (&facts.link_type, &facts.kind) {
        (Fact::Value(t), _) if t == "wlan" => Ok((Medium::WiFi, "networkd's Type=wlan".into())),
        (Fact::Value(t), Fact::Absent) if t == "ether" => Ok((Medium::Wired, "networkd's Type=ether".into())),
        (Fact::Value(t), Fact::Value(k)) if t == "ether" && k == "veth" => Ok((Medium::Wired, "networkd's Type=ether, Kind=veth, taken as wired".into())),
        (Fact::Value(t), _) if t == "loopback" => Err(None),
        (t, k) => Err(Some(format!("networkd's Type={} Kind={}: `multihome init` takes wired and Wi-Fi links", fact(t), fact(k)))),
    }
}

fn fact(f: &Fact) -> &str {
    match f {
        Fact::Value(v) => v,
        Fact::Absent => "(none)",
        Fact::Unknown => "(unknown)",
    }
}

/// Whether multihome wrote it: its marker, or one of its names (a file of an earlier apply).
fn ours(file: &NetworkFile) -> bool {
    file.ours || file.name.starts_with(names::FILE_PREFIX)
}

/// The file networkd gives the link: the first one whose [Match] takes it, multihome's aside.
fn file_for<'f>(files: &'f NetworkFiles, facts: &LinkFacts, notes: &mut Vec<String>) -> Option<&'f NetworkFile> {
    for f in files.files.iter().filter(|f| !f.masked && !ours(f)) {
        let keys = MatchKeys::collect(std::iter::once(f.sections.as_slice()).chain(f.dropins.iter().filter(|d| !d.ours).map(|d| d.sections.as_slice())));
        match keys.verdict(facts) {
            Verdict::Matches => return Some(f),
            Verdict::DoesNotMatch => {}
            Verdict::Unknown { keys: unknown } => {
                notes.push(format!("{}: cannot tell whether {} takes it ({} unknown); passed over", facts.name, f.path, unknown.join(" ")));
            }
        }
    }
    None
}

/// What one link's file (and drop-ins) say, in networkd's reading order.
#[derive(Default)]
struct Said {
    dhcp: (bool, bool),
    accept_ra: Option<bool>,
    addresses4: Vec<Ipv4Net>,
    addresses6: Vec<Ipv6Net>,
    /// Default routes: (router, metric, where).
    routes4: Vec<(Ipv4Addr, u32, String)>,
    routes6: Vec<(Ipv6Addr, u32, String)>,
    dhcp4_metric: Option<(u32, String)>,
    ra_metric: Option<(u32, String)>,
}

/// The sections of the file and its foreign drop-ins, each with the path it is in.
fn parts(file: &NetworkFile) -> Vec<(&str, &[Section])> {
    let mut parts = vec![(file.path.as_str(), file.sections.as_slice())];
    parts.extend(file.dropins.iter().filter(|d| !d.ours && d.name != names::DROPIN_NAME).map(|d| (d.path.as_str(), d.sections.as_slice())));
    parts
}

fn read(file: &NetworkFile) -> Said {
    let mut s = Said::default();
    for (path, sections) in parts(file) {
        for section in sections {
            let at = |line: usize| format!("{path}:{line}");
            match section.name.as_str() {
                "Network" => read_network(&mut s, section, &at),
                "Address" => section.entries.iter().filter(|e| e.key == "Address").for_each(|e| address(&mut s, &e.value)),
                "Route" => read_route(&mut s, section, &at),
                "DHCPv4" | "DHCP" => {
                    // [DHCP] is the old name; [DHCPv4] wins over it whatever the order.
                    for e in section.entries.iter().filter(|e| e.key == "RouteMetric") {
                        if let Ok(m) = e.value.parse()
                            && (section.name == "DHCPv4" || s.dhcp4_metric.as_ref().is_none_or(|(_, w)| w.starts_with("[DHCP]")))
                        {
                            s.dhcp4_metric = Some((m, format!("[{}] RouteMetric= at {}", section.name, at(e.line))));
                        }
                    }
                }
                "IPv6AcceptRA" => {
                    for e in section.entries.iter().filter(|e| e.key == "RouteMetric") {
                        if let Ok(m) = e.value.parse() {
                            s.ra_metric = Some((m, format!("[IPv6AcceptRA] RouteMetric= at {}", at(e.line))));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    s
}

fn read_network(s: &mut Said, section: &Section, at: &dyn Fn(usize) -> String) {
    for e in &section.entries {
        match e.key.as_str() {
            "DHCP" => {
                s.dhcp = match e.value.to_ascii_lowercase().as_str() {
                    "ipv4" | "v4" => (true, false),
                    "ipv6" | "v6" => (false, true),
                    "both" => (true, true),
                    v => parse_bool(v).map_or(s.dhcp, |b| (b, b)),
                }
            }
            "IPv6AcceptRA" => s.accept_ra = parse_bool(&e.value).or(s.accept_ra),
            "Address" => address(s, &e.value),
            // A static default route at networkd's metric for Gateway= (0 for IPv4, 1024 for IPv6).
            "Gateway" => match e.value.parse::<IpAddr>() {
                Ok(IpAddr::V4(g)) => s.routes4.push((g, 0, format!("[Network] Gateway= at {}: networkd's metric 0", at(e.line)))),
                Ok(IpAddr::V6(g)) => {
                    s.routes6.push((g, DEFAULT_DYNAMIC_METRIC, format!("[Network] Gateway= at {}: the kernel's IPv6 metric 1024", at(e.line))))
                }
                Err(_) => {}
            },
            _ => {}
        }
    }
}

/// An `Address=` as networkd reads it: without a prefix length, a host prefix.
fn address(s: &mut Said, value: &str) {
    let net = value.parse::<ipnet::IpNet>().ok().or_else(|| value.parse::<IpAddr>().ok().map(ipnet::IpNet::from));
    match net {
        Some(ipnet::IpNet::V4(n)) => s.addresses4.push(n),
        Some(ipnet::IpNet::V6(n)) => s.addresses6.push(n),
        None => {}
    }
}

/// A `[Route]` that is a default route in main through a router.
fn read_route(s: &mut Said, section: &Section, at: &dyn Fn(usize) -> String) {
    let get = |k: &str| section.entries.iter().rev().find(|e| e.key == k);
    let Some(gateway) = get("Gateway") else { return };
    let main = get("Table").is_none_or(|t| matches!(t.value.as_str(), "main" | "254"));
    let default =
        get("Destination").is_none_or(|d| d.value.parse::<ipnet::IpNet>().is_ok_and(|n| n.prefix_len() == 0) || d.value == "0.0.0.0" || d.value == "::");
    if !main || !default {
        return;
    }
    let metric = get("Metric").and_then(|m| m.value.parse::<u32>().ok().map(|n| (n, format!("[Route] Metric= at {}", at(m.line)))));
    match gateway.value.parse::<IpAddr>() {
        Ok(IpAddr::V4(g)) => {
            s.routes4.push(metric.map_or((g, 0, format!("[Route] at {} without Metric=: networkd's metric 0", at(section.line))), |(m, w)| (g, m, w)))
        }
        Ok(IpAddr::V6(g)) => s.routes6.push(
            metric.map_or((g, DEFAULT_DYNAMIC_METRIC, format!("[Route] at {} without Metric=: the kernel's IPv6 metric 1024", at(section.line))), |(m, w)| {
                (g, m, w)
            }),
        ),
        // _dhcp4, _ipv6ra: the lease's or the advertisements' router, which DHCP= and IPv6AcceptRA= give.
        Err(_) => {}
    }
}

fn is_link_local(a: Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// The link's candidate: its file's IPv4 and IPv6 as the policy takes them.
fn candidate(files: &NetworkFiles, link: &Link, notes: &mut Vec<String>) -> Result<Candidate, Option<String>> {
    let (medium, medium_why) = medium(&link.facts)?;
    let Some(file) = file_for(files, &link.facts, notes) else {
        return Err(Some("no .network file of the administrator's takes it; not an uplink".into()));
    };
    let said = read(file);
    let mut keys = UplinkKeys { interface: link.facts.name.clone(), ..Default::default() };
    let mut explain = vec![format!("{}: {}{}.", link.facts.name, file.path, dropins_said(file))];
    let v4 = ipv4(&said, &mut keys);
    let v6 = ipv6(&said, &mut keys);
    explain.push(format!("{} {}", v4.1, v6.1));
    let Some((metric, metric_why)) = v4.0.or(v6.0) else {
        return Err(Some(format!("{} gives no default route ({} {}); not an uplink", file.path, v4.1, v6.1)));
    };
    let mut targets: Vec<IpAddr> = keys.gateway4.map(IpAddr::V4).into_iter().collect();
    if keys.dhcp4
        && let Some(r) = link.router_now
    {
        explain.push(format!("Its lease's router now: {r} (probed)."));
        targets.push(IpAddr::V4(r));
    }
    targets.extend(keys.gateway6.filter(|g| !is_link_local(*g)).map(IpAddr::V6));
    for (g, _, at) in said.routes4.iter().filter(|(g, _, _)| keys.gateway4 == Some(*g)) {
        notes.push(format!(
            "{}: {at}: the default route through {g} is the policy's now; `multihome plan` asks to remove it from the file unless its metric is behind the policy's (the policy gives it, at its own metric)",
            link.facts.name
        ));
    }
    Ok(Candidate { keys, medium, medium_why, metric, metric_why, autoconnect_priority: 0, order: link.index, explain, targets })
}

fn dropins_said(file: &NetworkFile) -> String {
    let foreign: Vec<&str> = file.dropins.iter().filter(|d| !d.ours && d.name != names::DROPIN_NAME).map(|d| d.path.as_str()).collect();
    if foreign.is_empty() { String::new() } else { format!(" with {}", foreign.join(", ")) }
}

/// IPv4 into `keys`: the default route's metric and where it comes from, and what it became.
fn ipv4(s: &Said, keys: &mut UplinkKeys) -> (Option<(u32, String)>, String) {
    if s.dhcp.0 {
        keys.dhcp4 = true;
        let metric = s.dhcp4_metric.clone().unwrap_or((DEFAULT_DYNAMIC_METRIC, "networkd's default for DHCPv4 routes".into()));
        let extra = if s.addresses4.is_empty() { "" } else { " (its static IPv4 addresses beside the lease stay networkd's)" };
        return (Some(metric), format!("IPv4: DHCP=ipv4{extra}."));
    }
    // The lowest-metric default route whose router is on one of the addresses' subnets.
    let mut routes: Vec<&(Ipv4Addr, u32, String)> = s.routes4.iter().filter(|(g, _, _)| s.addresses4.iter().any(|n| n.contains(g))).collect();
    routes.sort_by_key(|(_, m, _)| *m);
    match (routes.first(), s.routes4.first()) {
        (Some((g, m, why)), _) => {
            keys.addresses4 = s.addresses4.clone();
            keys.gateway4 = Some(*g);
            (Some((*m, why.clone())), format!("IPv4: its addresses and gateway {g}."))
        }
        (None, Some((g, _, _))) => (None, format!("IPv4: gateway {g} outside its addresses (the policy needs the router on the subnet): left to networkd.")),
        (None, None) => (None, "IPv4: no DHCP and no gateway: no default route, left to networkd.".into()),
    }
}

/// IPv6 into `keys`, as [`ipv4`]; networkd's own default (IPv6AcceptRA= unset) stays its own.
fn ipv6(s: &Said, keys: &mut UplinkKeys) -> (Option<(u32, String)>, String) {
    let ra_metric = || s.ra_metric.clone().unwrap_or((DEFAULT_DYNAMIC_METRIC, "networkd's default for the routes of router advertisements".into()));
    let global: Vec<Ipv6Net> = s.addresses6.iter().filter(|n| !is_link_local(n.addr())).copied().collect();
    if s.dhcp.1 {
        if s.accept_ra == Some(false) {
            return (None, "IPv6: DHCP for IPv6 with IPv6AcceptRA=no: no router, left to networkd.".into());
        }
        keys.dhcp6 = true;
        keys.accept_ra = true;
        return (Some(ra_metric()), "IPv6: DHCP for IPv6 with IPv6AcceptRA=yes (only the advertisements name the router).".into());
    }
    let route = s.routes6.iter().filter(|(g, _, _)| is_link_local(*g) || global.iter().any(|n| n.contains(g))).min_by_key(|(_, m, _)| *m);
    if let (Some((g, m, why)), false) = (route, global.is_empty()) {
        keys.addresses6 = global;
        keys.gateway6 = Some(*g);
        keys.accept_ra = s.accept_ra == Some(true);
        return (Some((*m, why.clone())), format!("IPv6: its addresses and gateway {g}."));
    }
    if s.accept_ra == Some(true) {
        keys.accept_ra = true;
        return (Some(ra_metric()), "IPv6: IPv6AcceptRA=yes (SLAAC and the advertised router).".into());
    }
    (None, "IPv6: nothing the policy takes (networkd's defaults stay its own).".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::networkd::survey::Found as FoundFile;
    use crate::import::init::write;

    /// Files as the survey finds them: (directory index of survey::SEARCH_DIRS, drop-in of, name, text).
    fn files(list: &[(usize, Option<&str>, &str, &str)]) -> NetworkFiles {
        let found: Vec<FoundFile> = list
            .iter()
            .map(|(dir, of, name, text)| FoundFile { dir: *dir, dropin_of: of.map(str::to_string), name: name.to_string(), text: Some(text.to_string()) })
            .collect();
        NetworkFiles::assemble(&found)
    }

    fn link(name: &str, kind: &str, index: u32) -> Link {
        let (link_type, k) = match kind {
            "wlan" => (Fact::Value("wlan".into()), Fact::Absent),
            "veth" => (Fact::Value("ether".into()), Fact::Value("veth".into())),
            "bridge" => (Fact::Value("ether".into()), Fact::Value("bridge".into())),
            _ => (Fact::Value("ether".into()), Fact::Absent),
        };
        Link { facts: LinkFacts { link_type, kind: k, ..LinkFacts::offline(name) }, index, router_now: None }
    }

    fn policy(found: &Found) -> String {
        let init = write::policy(found).unwrap();
        crate::policy::parse("init", &init.policy).unwrap_or_else(|e| panic!("{e}\n{}", init.policy));
        init.policy
    }

    fn order(text: &str) -> Vec<&str> {
        text.lines().filter_map(|l| l.strip_prefix("Interface=")).collect()
    }

    #[test]
    fn precedence_dropins_metrics_and_multihomes_own_files() {
        let marked = format!("{}[Match]\nName=wlan1\n[Network]\nAddress=192.168.178.96/24\nGateway=192.168.178.1\n", crate::backend::files::marker("p", '#'));
        let marked_dropin = format!("{}[DHCPv4]\nRouteMetric=101\n", crate::backend::files::marker("p", '#'));
        let files = files(&[
            // /usr/lib's eth0 file is shadowed by /etc's of the same name.
            (3, None, "20-wired.network", "[Match]\nName=eth0\n[Network]\nDHCP=yes\n"),
            (0, None, "20-wired.network", "[Match]\nName=eth0\n[Network]\nAddress=192.168.178.99/24\n[Route]\nGateway=192.168.178.1\nMetric=300\n"),
            // netplan's, in /run; its drop-in sets the lease's metric.
            (1, None, "10-netplan-wlan0.network", "[Match]\nName=wlan0\n[Network]\nDHCP=ipv4\n"),
            (0, Some("10-netplan-wlan0.network"), "50-metric.conf", "[DHCPv4]\nRouteMetric=200\n"),
            // multihome's own file and drop-in are never the user's.
            (0, None, "10-multihome-wlan1.network", "[Match]\nName=wlan1\n[Network]\nAddress=192.168.178.98/24\nGateway=192.168.178.1\n"),
            (0, None, "05-marked.network", &marked),
            (0, Some("10-netplan-wlan0.network"), "55-marked.conf", &marked_dropin),
            (0, None, "30-wlan1.network", "[Match]\nName=wlan1\n[Network]\nDHCP=ipv4\n"),
        ]);
        let links = [link("eth0", "ether", 2), link("wlan1", "wlan", 3), link("wlan0", "wlan", 4), link("lo", "loopback", 1)];
        let found = found(&files, &links);
        let text = policy(&found);
        // Wired first; among the Wi-Fi links wlan0's lease metric 200 beats wlan1's default 1024.
        assert_eq!(order(&text), ["eth0", "wlan0", "wlan1"], "{text}");
        assert!(text.contains("Interface=eth0\nPriority=1\nAddress=192.168.178.99/24\nGateway=192.168.178.1\n"), "{text}");
        assert!(text.contains("route metric 300 ([Route] Metric= at /etc/systemd/network/20-wired.network:7)"), "{text}");
        assert!(
            text.contains("# wlan0: /run/systemd/network/10-netplan-wlan0.network with /etc/systemd/network/10-netplan-wlan0.network.d/50-metric.conf."),
            "{text}"
        );
        assert!(text.contains("route metric 200 ([DHCPv4] RouteMetric= at /etc/systemd/network/10-netplan-wlan0.network.d/50-metric.conf:2)"), "{text}");
        assert!(text.contains("# wlan1: /etc/systemd/network/30-wlan1.network."), "{text}");
        assert!(text.contains("route metric 1024 (networkd's default for DHCPv4 routes)"), "{text}");
        assert!(!text.contains("192.168.178.98") && !text.contains("192.168.178.96"), "multihome's own file was read: {text}");
        assert!(
            found
                .notes
                .iter()
                .any(|n| n.starts_with("eth0: [Route] Metric= at /etc/systemd/network/20-wired.network:7: the default route through 192.168.178.1")),
            "{:?}",
            found.notes
        );
    }

    #[test]
    fn ipv6_static_ra_and_dhcp6_and_links_that_are_no_uplink() {
        let files = files(&[
            (0, None, "10-eth0.network", "[Match]\nName=eth0\n[Network]\nAddress=2001:db8:1::5/64\nGateway=fe80::1\nIPv6AcceptRA=no\n"),
            (0, None, "10-eth1.network", "[Match]\nName=eth1\n[Network]\nDHCP=ipv6\n[IPv6AcceptRA]\nRouteMetric=50\n"),
            (0, None, "10-eth2.network", "[Match]\nName=eth2\n[Network]\nIPv6AcceptRA=yes\nAddress=10.0.0.2/24\n"),
            (0, None, "10-eth3.network", "[Match]\nName=eth3\n[Network]\nAddress=10.0.3.2/24\nGateway=10.9.9.9\n"),
            (0, None, "10-br0.network", "[Match]\nName=br0\n[Network]\nDHCP=yes\n"),
            (0, None, "90-all.network", "[Match]\nName=*\nMACAddress=00:11:22:33:44:55\n[Network]\nDHCP=yes\n"),
        ]);
        let links = [link("eth0", "ether", 5), link("eth1", "veth", 6), link("eth2", "ether", 7), link("eth3", "ether", 8), link("br0", "bridge", 9)];
        let found = found(&files, &links);
        let text = policy(&found);
        // eth0 and eth2 tie at 1024 (the kernel's IPv6 metric, networkd's for advertised routes): ifindex.
        assert_eq!(order(&text), ["eth1", "eth0", "eth2"], "{text}");
        assert!(text.contains("Interface=eth1\nPriority=1\nDHCP=ipv6\nIPv6AcceptRA=yes\n"), "{text}");
        assert!(text.contains("Interface=eth0\nPriority=2\nAddress=2001:db8:1::5/64\nGateway=fe80::1\n"), "{text}");
        assert!(text.contains("Interface=eth2\nPriority=3\nIPv6AcceptRA=yes\n"), "the gateway-less IPv4 stays networkd's: {text}");
        assert!(text.contains("the same metric as eth0, and later in the kernel's link order (ifindex)."), "{text}");
        assert!(!text.contains("Target="), "a link-local router is no probe target: {text}");
        let notes = found.notes.join("\n");
        assert!(notes.contains("eth3: /etc/systemd/network/10-eth3.network gives no default route (IPv4: gateway 10.9.9.9 outside its addresses"), "{notes}");
        assert!(notes.contains("br0: networkd's Type=ether Kind=bridge"), "{notes}");
    }

    #[test]
    fn a_link_without_a_file_or_with_an_undecidable_one_is_noted() {
        let files = files(&[(0, None, "10-mac.network", "[Match]\nDriver=e1000\n[Network]\nDHCP=yes\n")]);
        let mut l = link("eth0", "ether", 2);
        l.facts.driver = Fact::Unknown;
        let found = found(&files, &[l]);
        assert!(found.candidates.is_empty());
        assert_eq!(found.notes.len(), 2, "{:?}", found.notes);
        assert!(found.notes[0].contains("cannot tell whether /etc/systemd/network/10-mac.network takes it (Driver= unknown)"), "{:?}", found.notes);
        assert!(write::policy(&found).unwrap_err().contains("nothing to write"));
    }
}
