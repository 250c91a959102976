//! interfaces(5) stanzas → policy text, and a [`Note`] for every line that was not carried over.
//!
//! Every `inet`/`inet6` interface other than `lo` with a gateway or DHCP (or, for IPv6, router
//! advertisements) becomes an `[Uplink]`, ordered by its `metric` (lowest first; the metric of
//! a `post-up ip route add default ... metric N` in main counts too, as in the seed's answer),
//! else by file order. An active-backup bond (ifenslave's `bond-*` options) becomes `Mode=bond`.
//! The seed's hand-made routing (`ip route ... table T`, `ip rule add from|to ADDR table T`, the
//! metric-ordered default routes in main, and their `del`/`flush` counterparts) is recognised as
//! what multihome's plan makes and left out; each such line gets a note saying so.

use std::collections::BTreeSet;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::parse::{Error, Iface, Item, Line, Opt};
use crate::import::policy_text::{self, UplinkKeys};

/// A line that was not carried over as a key of the policy: recognised (the plan makes it) or
/// left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// `FILE:LINE`.
    pub at: String,
    /// The line as read, with any secret value left out.
    pub line: String,
    /// The plan makes what the line did: it is not needed beside the policy.
    pub recognised: bool,
    pub why: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.recognised { "recognised" } else { "not carried over" };
        write!(f, "{}: `{}`: {kind}: {}", self.at, self.line, self.why)
    }
}

/// What an import gives: the policy text and the notes, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub policy: String,
    pub notes: Vec<Note>,
}

const PLAN_MAKES: &str = "multihome's plan makes this";

/// Converts the items [`super::read`] returned; `source` is the file the import started from,
/// named in the policy's header.
pub fn convert(source: &str, items: &[Item]) -> Result<Import, Error> {
    let mut notes: Vec<(Line, bool, String, String)> = Vec::new();
    let mut note = |line: &Line, recognised: bool, why: String| notes.push((line.clone(), recognised, shown(line), why));
    let groups = group(items, &mut note);
    let (bond, rejected) = find_bond(&groups, &mut note)?;
    let uplinks = routed_uplinks(&groups, bond.as_ref(), &rejected, &mut note)?;
    let files = files_read(items);
    let mut text = header(source, &files);
    match bond {
        Some(bond) => write_bond(&mut text, &bond, &uplinks, &mut note),
        None => write_routes(&mut text, source, uplinks)?,
    }
    notes.sort_by(|a, b| (a.0.file.as_ref(), a.0.line).cmp(&(b.0.file.as_ref(), b.0.line)).then(a.3.cmp(&b.3)));
    // Files are compared by name above; put them back in reading order.
    notes.sort_by_key(|n| files.iter().position(|f| **f == *n.0.file).unwrap_or(usize::MAX));
    let notes = notes.into_iter().map(|(line, recognised, shown, why)| Note { at: line.at(), line: shown, recognised, why }).collect();
    Ok(Import { policy: text, notes })
}

/// The iface stanzas grouped by interface, in order of first appearance; every other item noted.
fn group<'i>(items: &'i [Item], note: &mut NoteFn) -> Vec<(String, Vec<&'i Iface>)> {
    let mut groups: Vec<(String, Vec<&Iface>)> = Vec::new();
    for item in items {
        match item {
            Item::Start { class, line, .. } => note(
                line,
                false,
                format!(
                    "`{}` (ifupdown's start-up class {class}): the network manager brings up the policy's uplinks itself",
                    line.text.split_whitespace().next().unwrap_or("")
                ),
            ),
            Item::Other { lines } => lines.iter().for_each(|l| note(l, false, "ifupdown's own stanza; the policy has no counterpart".into())),
            Item::Iface(iface) => match groups.iter_mut().find(|(n, _)| *n == iface.name) {
                Some((_, g)) => g.push(iface),
                None => groups.push((iface.name.clone(), vec![iface])),
            },
            // read() replaces the directives by what they name; items straight from parse() keep
            // them, and a file left unread is said rather than passed over.
            Item::Source { line, .. } | Item::SourceDirectory { line, .. } => {
                note(line, false, "not followed here: import through read(), which follows it".into())
            }
        }
    }
    groups
}

/// The interfaces that are uplinks of their own: not the bond, its slaves or a rejected bond.
fn routed_uplinks(groups: &[(String, Vec<&Iface>)], bond: Option<&Bond>, rejected: &[String], note: &mut NoteFn) -> Result<Vec<Uplink>, Error> {
    let slaves: Vec<&str> = bond.map(|b| b.slaves.iter().map(|s| s.as_str()).collect()).unwrap_or_default();
    let mut uplinks = Vec::new();
    for (index, (name, stanzas)) in groups.iter().enumerate() {
        if Some(name.as_str()) == bond.map(|b| b.name.as_str()) || slaves.contains(&name.as_str()) || rejected.contains(name) {
            continue;
        }
        if let Some(u) = uplink(index, name, stanzas, note)? {
            uplinks.push(u);
        }
    }
    Ok(uplinks)
}

/// The files the items came from, in reading order.
fn files_read(items: &[Item]) -> Vec<&str> {
    let mut files: Vec<&str> = Vec::new();
    for item in items {
        let file: &str = match item {
            Item::Iface(i) => &i.line.file,
            Item::Start { line, .. } => &line.file,
            Item::Other { lines } => &lines[0].file,
            _ => continue,
        };
        if !files.contains(&file) {
            files.push(file);
        }
    }
    files
}

/// The policy's header comment and its `[Policy]` section up to `Mode=`.
fn header(source: &str, files: &[&str]) -> String {
    let mut comments = vec![format!("Imported from {source} by `multihome import ifupdown`.")];
    if files.iter().any(|f| *f != source) {
        comments.push(format!("Also read (source directives): {}.", files.iter().filter(|f| **f != source).copied().collect::<Vec<_>>().join(", ")));
    }
    comments.push("The lines it did not carry over were listed, each with its file and line, when it ran.".into());
    policy_text::header(&comments, "auto")
}

/// Mode=bond: the slaves as `[Uplink]`s in the bond's order, and `[Bond]`.
fn write_bond(text: &mut String, bond: &Bond, uplinks: &[Uplink], note: &mut NoteFn) {
    for u in uplinks {
        note(
            &u.line,
            false,
            format!("{}: with the bond (Mode=bond) the policy's uplinks are the bond's slaves; import it on its own or add it as a slave", u.name),
        );
    }
    writeln!(text, "Mode=bond").unwrap();
    if let Some(gw) = bond.gateway {
        writeln!(text, "\n[Probe]\n# The bond's gateway; add a host behind it to see a dead provider too.\nTarget={gw}").unwrap();
    }
    for (i, slave) in bond.slaves.iter().enumerate() {
        writeln!(text, "\n[Uplink]\nInterface={slave}\nPriority={}", i + 1).unwrap();
    }
    writeln!(text, "\n[Bond]\n# iface {} at {}", bond.name, bond.line.at()).unwrap();
    writeln!(text, "Name={}", bond.name).unwrap();
    match &bond.addresses {
        None => writeln!(text, "DHCP=ipv4").unwrap(),
        Some(nets) => nets.iter().for_each(|n| writeln!(text, "Address={n}").unwrap()),
    }
    if let Some(gw) = bond.gateway {
        writeln!(text, "Gateway={gw}").unwrap();
    }
    for (key, value) in &bond.keys {
        writeln!(text, "{key}={value}").unwrap();
    }
}

/// Mode=routes: the uplinks by metric (lowest first), else file order, each an `[Uplink]`.
fn write_routes(text: &mut String, source: &str, mut uplinks: Vec<Uplink>) -> Result<(), Error> {
    if uplinks.is_empty() {
        return Err(Error {
            file: source.to_string(),
            line: 0,
            message: "no interface other than lo has a gateway, DHCP or router advertisements, and no active-backup bond: nothing to import".into(),
        });
    }
    uplinks.sort_by_key(|u| (u.metric.is_none(), u.metric.as_ref().map(|(m, _)| *m).unwrap_or(0), u.index));
    writeln!(text, "Mode=routes").unwrap();
    let gateways: BTreeSet<Ipv4Addr> = uplinks.iter().filter_map(|u| u.gateway4).collect();
    let targets: Vec<IpAddr> = gateways.into_iter().map(IpAddr::V4).collect();
    policy_text::write_probe(text, "The uplinks' gateways; add a host behind them to see a dead provider too.", &targets);
    for (rank, u) in uplinks.iter().enumerate() {
        write_uplink(text, rank, u);
    }
    Ok(())
}

fn write_uplink(text: &mut String, rank: usize, u: &Uplink) {
    let order = match &u.metric {
        Some((m, line)) => format!("metric {m} ({})", line.at()),
        None => "no metric: file order".to_string(),
    };
    let keys = UplinkKeys {
        interface: u.name.clone(),
        dhcp4: u.dhcp4,
        dhcp6: u.dhcp6,
        addresses4: u.addresses4.clone(),
        gateway4: u.gateway4,
        addresses6: u.addresses6.clone(),
        gateway6: u.gateway6,
        accept_ra: u.accept_ra,
    };
    policy_text::write_uplink(text, &[format!("iface {} at {}; {order}", u.name, u.line.at())], rank, &keys);
}

/// The line as a note shows it: Wi-Fi secrets (a PSK, a WEP key, a password) are left out.
fn shown(line: &Line) -> String {
    let key = line.text.split_whitespace().next().unwrap_or("");
    let public = ["wpa-conf", "wpa-ssid", "wpa-driver", "wpa-roam", "wireless-essid", "wireless-mode", "wireless-channel"];
    let k = key.replace('_', "-");
    if (k.starts_with("wpa-") || k.starts_with("wireless-")) && !public.contains(&k.as_str()) { format!("{key} (value not shown)") } else { line.text.clone() }
}

/// One routed uplink being built.
struct Uplink {
    index: usize,
    name: String,
    line: Line,
    metric: Option<(u32, Line)>,
    addresses4: Vec<Ipv4Net>,
    gateway4: Option<Ipv4Addr>,
    dhcp4: bool,
    addresses6: Vec<Ipv6Net>,
    gateway6: Option<Ipv6Addr>,
    dhcp6: bool,
    accept_ra: bool,
}

type NoteFn<'a> = dyn FnMut(&Line, bool, String) + 'a;

/// What reading one interface's stanzas found, before it is known whether it is an uplink.
#[derive(Default)]
struct Reading<'a> {
    /// Lines carried over as keys of the uplink.
    carried: Vec<&'a Line>,
    /// Lines whose note waits until the whole interface is read: (line, recognised, why).
    pending: Vec<(&'a Line, bool, String)>,
    /// The up/down commands, recognised once the interface's addresses are known.
    commands: Vec<&'a Opt>,
    /// The stanzas imported.
    taken: Vec<&'a Iface>,
    /// The inet static stanza's own lines (iface, address, netmask), should its IPv4 be left out.
    v4_lines: Vec<&'a Line>,
}

/// One interface's stanzas as an uplink, or `None` (with notes) when it is none.
fn uplink(index: usize, name: &str, stanzas: &[&Iface], note: &mut NoteFn) -> Result<Option<Uplink>, Error> {
    let mut u = Uplink {
        index,
        name: name.to_string(),
        line: stanzas[0].line.clone(),
        metric: None,
        addresses4: Vec::new(),
        gateway4: None,
        dhcp4: false,
        addresses6: Vec::new(),
        gateway6: None,
        dhcp6: false,
        accept_ra: false,
    };
    let mut r = Reading::default();
    for iface in stanzas {
        if let Some(why) = not_imported(name, iface) {
            note(&iface.line, false, why);
            let stanza = format!("part of iface {name} {} {} ({}), which is not imported", iface.family, iface.method, iface.line.at());
            iface.options.iter().for_each(|o| note(&o.line, false, stanza.clone()));
            continue;
        }
        read_stanza(&mut u, iface, &mut r)?;
    }
    drop_gatewayless_ipv4(&mut u, &mut r);
    recognise_commands(&mut u, &mut r);
    let is_uplink = u.gateway4.is_some() || u.gateway6.is_some() || u.dhcp4 || u.dhcp6 || u.accept_ra;
    if !is_uplink {
        if let Some(first) = r.taken.first() {
            let why = format!("{name} has no gateway, DHCP or router advertisements: no uplink; left to ifupdown");
            note(&first.line, false, why);
            let stanza = format!("part of iface {name} ({}), which is not imported", first.line.at());
            for line in r.carried.iter().skip(1).copied().chain(r.pending.iter().map(|(l, _, _)| *l)) {
                note(line, false, stanza.clone());
            }
        }
        return Ok(None);
    }
    for (line, recognised, why) in r.pending {
        note(line, recognised, why);
    }
    Ok(Some(u))
}

/// Why a stanza of `name` is not imported; `None` for the families and methods that are.
fn not_imported(name: &str, iface: &Iface) -> Option<String> {
    match (name, iface.family.as_str(), iface.method.as_str()) {
        ("lo", _, _) | (_, _, "loopback") => Some("the loopback is no uplink; ifupdown (or the kernel) keeps it".to_string()),
        (_, "inet", "static" | "dhcp") | (_, "inet6", "static" | "auto" | "dhcp") => None,
        (_, "inet" | "inet6", "manual") => Some(format!("{} manual: ifupdown only brings the link up, with no address or route to carry over", iface.family)),
        (_, "inet" | "inet6", m) => Some(format!("method {m}: multihome imports static, dhcp (and inet6 auto) uplinks")),
        (_, f, _) => Some(format!("family {f}: multihome imports inet and inet6")),
    }
}

/// One imported stanza's method and options into `u`.
fn read_stanza<'a>(u: &mut Uplink, iface: &'a Iface, r: &mut Reading<'a>) -> Result<(), Error> {
    r.taken.push(iface);
    r.carried.push(&iface.line);
    let v6 = iface.family == "inet6";
    match iface.method.as_str() {
        "dhcp" if v6 => {
            u.dhcp6 = true;
            u.accept_ra = true;
        }
        "dhcp" => u.dhcp4 = true,
        "auto" => u.accept_ra = true,
        _ => {}
    }
    let netmask = iface.first("netmask");
    for o in &iface.options {
        match o.key.as_str() {
            "address" => {
                if !v6 {
                    r.v4_lines.extend([&iface.line, &o.line].into_iter().chain(netmask.map(|m| &m.line)));
                }
                match address(o, netmask, v6)? {
                    IpNet::V4(n) => u.addresses4.push(n),
                    IpNet::V6(n) => u.addresses6.push(n),
                }
                r.carried.push(&o.line);
            }
            "netmask" if iface.first("address").is_some() => r.carried.push(&o.line),
            "gateway" => {
                match (o.value.parse::<IpAddr>(), v6) {
                    (Ok(IpAddr::V4(g)), false) => u.gateway4 = Some(g),
                    (Ok(IpAddr::V6(g)), true) => u.gateway6 = Some(g),
                    _ => return Err(Error::at(&o.line, format!("gateway {}: not an {} address", o.value, if v6 { "IPv6" } else { "IPv4" }))),
                }
                r.carried.push(&o.line);
            }
            "metric" => {
                let m = o.value.parse::<u32>().map_err(|_| Error::at(&o.line, format!("metric {}: not a number", o.value)))?;
                if u.metric.as_ref().is_none_or(|(old, _)| m < *old) {
                    u.metric = Some((m, o.line.clone()));
                }
                r.carried.push(&o.line);
            }
            "accept-ra" if v6 => match o.value.as_str() {
                "1" | "2" => {
                    u.accept_ra = true;
                    r.carried.push(&o.line);
                }
                "0" if iface.method != "auto" => r.carried.push(&o.line),
                _ => {
                    r.pending.push((&o.line, false, "accept_ra: the policy's IPv6AcceptRA= follows the method (auto and dhcp accept, static does not)".into()))
                }
            },
            "pre-up" | "up" | "post-up" | "down" | "pre-down" | "post-down" => r.commands.push(o),
            _ => r.pending.push((&o.line, false, why_not(&o.key))),
        }
    }
    Ok(())
}

/// Static IPv4 without any IPv4 gateway beside an IPv6 uplink (a LAN address next to SLAAC): the
/// policy's static IPv4 needs Gateway=, so only the IPv6 side is imported. Only where the IPv6
/// side makes an uplink: otherwise the whole interface is reported as none.
fn drop_gatewayless_ipv4(u: &mut Uplink, r: &mut Reading) {
    let name = u.name.clone();
    // A gateway may come from a command alone (the seed's `post-up ip route add default via`).
    let command_gateway =
        |v4: bool| r.commands.iter().any(|o| recognise(&o.value, &name, &[], &BTreeSet::new()).and_then(|r| r.gateway).is_some_and(|g| g.is_ipv4() == v4));
    let v4_gateway_anywhere = u.gateway4.is_some() || command_gateway(true);
    let ipv6_side = u.gateway6.is_some() || command_gateway(false) || u.dhcp6 || u.accept_ra;
    if u.addresses4.is_empty() || v4_gateway_anywhere || u.dhcp4 || !ipv6_side {
        return;
    }
    u.addresses4.clear();
    let Reading { carried, pending, v4_lines, .. } = r;
    carried.retain(|line| {
        let v4_line = v4_lines.contains(line);
        if v4_line {
            pending.push((line, false, format!("IPv4 without a gateway: the policy's static IPv4 needs Gateway=, so only {name}'s IPv6 side is imported")));
        }
        !v4_line
    });
}

/// The seed's hand-made routing: tables first (from the lines that add), then every command,
/// recognised as what the plan makes (a gateway or main-table metric taken from it) or not.
fn recognise_commands(u: &mut Uplink, r: &mut Reading) {
    let own: Vec<IpAddr> = u.addresses4.iter().map(|n| IpAddr::V4(n.addr())).chain(u.addresses6.iter().map(|n| IpAddr::V6(n.addr()))).collect();
    let mut tables: BTreeSet<String> = BTreeSet::new();
    for o in &r.commands {
        if let Some(Ip { verb: Verb::Add, table: Some(t), .. }) = ip_command(&o.value)
            && !is_main(&t)
        {
            tables.insert(t);
        }
    }
    for o in &r.commands {
        let Some(found) = recognise(&o.value, &u.name, &own, &tables) else {
            r.pending.push((&o.line, false, why_not(&o.key)));
            continue;
        };
        match found.gateway {
            Some(IpAddr::V4(g)) if u.gateway4.is_none() => u.gateway4 = Some(g),
            Some(IpAddr::V6(g)) if u.gateway6.is_none() => u.gateway6 = Some(g),
            _ => {}
        }
        if let Some(m) = found.main_metric
            && u.metric.is_none()
        {
            u.metric = Some((m, o.line.clone()));
        }
        r.pending.push((&o.line, true, format!("{PLAN_MAKES}: {}", found.what)));
    }
}

/// Why an option is not carried over.
fn why_not(key: &str) -> String {
    if matches!(key, "pre-up" | "up" | "post-up" | "down" | "pre-down" | "post-down") {
        format!("a command ifupdown runs at {key}; multihome runs no commands (a network manager's dispatcher script can, if it is still needed)")
    } else if key.starts_with("wpa-") || key.starts_with("wireless-") {
        "Wi-Fi association stays with wpa_supplicant or the network manager; multihome never handles SSIDs or secrets".into()
    } else if key.starts_with("dns-") {
        "DNS stays with resolvconf or the network manager; multihome does not change it".into()
    } else if matches!(key, "mtu" | "hwaddress" | "broadcast" | "scope" | "pointopoint" | "hostname" | "media") {
        format!("{key}: the policy has no such key; the network manager's own setting (or the kernel's default) applies")
    } else if key.starts_with("bond-") {
        format!("{key}: this interface is not part of an active-backup bond the import carries over")
    } else {
        format!("{key}: an option multihome does not import")
    }
}

/// `address` with its prefix: `A/P`, or `A` with `netmask` (dotted or a length).
fn address(o: &Opt, netmask: Option<&Opt>, v6: bool) -> Result<IpNet, Error> {
    let bad = |why: &str| Error::at(&o.line, format!("address {}: {why}", o.value));
    let (addr, prefix) = match o.value.split_once('/') {
        Some((a, p)) => (a, Some(p.to_string())),
        None => (o.value.as_str(), None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad(if v6 { "not an IPv6 address" } else { "not an IPv4 address" }))?;
    if addr.is_ipv6() != v6 {
        return Err(bad(if v6 { "an IPv4 address in an inet6 stanza" } else { "an IPv6 address in an inet stanza" }));
    }
    let prefix = match (prefix, netmask) {
        (Some(p), _) => p,
        (None, Some(m)) => match m.value.parse::<Ipv4Addr>() {
            Ok(mask) if !v6 => {
                let bits = u32::from(mask);
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return Err(Error::at(&m.line, format!("netmask {}: not a contiguous mask", m.value)));
                }
                bits.leading_ones().to_string()
            }
            _ => m.value.clone(),
        },
        (None, None) => return Err(bad("no prefix length and no netmask line: give address A/P or a netmask")),
    };
    let prefix: u8 = prefix.parse().map_err(|_| bad(&format!("prefix {prefix} is not a length")))?;
    IpNet::new(addr, prefix).map_err(|_| bad(&format!("prefix /{prefix} is too long")))
}

/// The parts of an `ip route`/`ip rule` command the import looks at.
#[derive(Debug, Default)]
struct Ip {
    verb: Verb,
    rule: bool,
    /// The route's destination.
    destination: Option<String>,
    via: Option<String>,
    dev: Option<String>,
    table: Option<String>,
    metric: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum Verb {
    #[default]
    Add,
    Del,
    Flush,
}

/// Reads `ip [-4|-6] route|rule add|del|flush ...` (with `|| true` after it); `None` for
/// anything else, including a line with more than one command.
fn ip_command(command: &str) -> Option<Ip> {
    let mut words: Vec<&str> = command.split_whitespace().collect();
    if words.len() > 2 && words[words.len() - 2] == "||" && matches!(words[words.len() - 1], "true" | ":") {
        words.truncate(words.len() - 2);
    }
    if words.iter().any(|w| w.contains([';', '&', '|', '`', '$', '>', '<'])) {
        return None;
    }
    let mut w = words.into_iter().peekable();
    if !matches!(w.next()?, "ip" | "/sbin/ip" | "/bin/ip" | "/usr/sbin/ip" | "/usr/bin/ip") {
        return None;
    }
    while w.peek().is_some_and(|x| matches!(*x, "-4" | "-6")) {
        w.next();
    }
    let object = w.next()?;
    let rule = match object {
        o if "route".starts_with(o) => false,
        o if o.len() >= 2 && "rule".starts_with(o) => true,
        _ => return None,
    };
    let verb = match w.next()? {
        "add" | "a" | "append" | "replace" | "change" => Verb::Add,
        "del" | "delete" | "d" => Verb::Del,
        "flush" | "f" => Verb::Flush,
        _ => return None,
    };
    let mut ip = Ip { verb, rule, ..Ip::default() };
    while let Some(word) = w.next() {
        let slot = match word {
            "via" => &mut ip.via,
            "dev" | "oif" if !rule => &mut ip.dev,
            "oif" | "iif" => &mut ip.dev,
            "table" | "lookup" => &mut ip.table,
            "metric" | "preference" => &mut ip.metric,
            "from" => &mut ip.from,
            "to" => &mut ip.to,
            // Values the plan sets its own way, or that do not change what the line means.
            "src" | "proto" | "scope" | "priority" | "pref" | "realm" | "realms" => {
                w.next()?;
                continue;
            }
            "onlink" => continue,
            dest if !rule && ip.destination.is_none() => {
                ip.destination = Some(dest.to_string());
                continue;
            }
            _ => return None,
        };
        *slot = Some(w.next()?.to_string());
    }
    if !rule && ip.destination.is_none() {
        ip.destination = ip.to.take();
    }
    Some(ip)
}

fn is_main(table: &str) -> bool {
    matches!(table, "main" | "254")
}

fn is_default(destination: &str) -> bool {
    matches!(destination, "default" | "0/0" | "0.0.0.0/0" | "::/0" | "all")
}

/// What a recognised command did, in the plan's words.
struct Recognised {
    what: String,
    gateway: Option<IpAddr>,
    /// The metric of a default route in main: the interface's place in the order.
    main_metric: Option<u32>,
}

/// Whether a command is one of the lines multihome's plan replaces, for interface `name` with
/// addresses `own` and the tables its own lines add to.
fn recognise(command: &str, name: &str, own: &[IpAddr], tables: &BTreeSet<String>) -> Option<Recognised> {
    let ip = ip_command(command)?;
    let own_addr = |text: &str| -> Option<IpAddr> {
        let (a, p) = text.split_once('/').unwrap_or((text, ""));
        let a: IpAddr = a.parse().ok()?;
        let host = if a.is_ipv4() { "32" } else { "128" };
        (own.contains(&a) && (p.is_empty() || p == host)).then_some(a)
    };
    let in_main = ip.table.as_deref().is_none_or(is_main);
    let ours = |t: &Option<String>| t.as_deref().is_some_and(|t| tables.contains(t));
    let table_words = |t: &Option<String>| match t {
        Some(t) if !is_main(t) => format!("{name}'s own table (here {t})"),
        _ => "main".to_string(),
    };
    if ip.dev.as_deref().is_some_and(|d| d != name) {
        return None;
    }
    let r = |what: String| Some(Recognised { what, gateway: None, main_metric: None });
    match (ip.rule, &ip.verb) {
        (false, Verb::Add) => {
            let dest = ip.destination.as_deref()?;
            if is_default(dest) {
                let gateway: IpAddr = ip.via.as_deref()?.parse().ok()?;
                let metric = match &ip.metric {
                    Some(m) => Some(m.parse::<u32>().ok()?),
                    None => None,
                };
                let main_metric = if in_main { metric } else { None };
                let what = if in_main {
                    match metric {
                        Some(m) => format!("{name}'s default route in main via {gateway}, its metric {m} giving its place in the order"),
                        None => format!("{name}'s default route in main via {gateway}"),
                    }
                } else {
                    format!("{name}'s default route via {gateway} in {}", table_words(&ip.table))
                };
                return Some(Recognised { what, gateway: Some(gateway), main_metric });
            }
            let net: IpNet = dest.parse().ok()?;
            if ip.dev.is_none() || !own.iter().any(|a| net.contains(a)) || ip.via.is_some() {
                return None;
            }
            r(format!("the route to {net} on {name} in {}", table_words(&ip.table)))
        }
        (true, Verb::Add) => {
            let (word, addr) = match (&ip.from, &ip.to) {
                (Some(f), None) => ("from", own_addr(f)?),
                (None, Some(t)) => ("to", own_addr(t)?),
                _ => return None,
            };
            let to = match &ip.table {
                Some(t) if !is_main(t) => table_words(&ip.table).replace(" (here ", ", here ").replace(')', ""),
                _ => format!("main here; the plan's goes to {name}'s own table"),
            };
            r(format!("the `{word} {addr}` rule ({to})"))
        }
        (true, Verb::Del) => {
            let own_rule = ip.from.as_deref().and_then(own_addr).or(ip.to.as_deref().and_then(own_addr));
            (ours(&ip.table) || own_rule.is_some()).then(|| Recognised { what: format!("taking {name}'s rules away again"), gateway: None, main_metric: None })
        }
        (false, Verb::Del | Verb::Flush) => {
            let default_here = ip.destination.as_deref().is_some_and(is_default) && ip.via.as_deref().and_then(|v| v.parse::<IpAddr>().ok()).is_some();
            (ours(&ip.table) || (in_main && default_here)).then(|| Recognised {
                what: format!("taking {name}'s routes away again"),
                gateway: None,
                main_metric: None,
            })
        }
        (true, Verb::Flush) => None,
    }
}

/// An active-backup bond, as the policy's `[Bond]` takes it.
struct Bond {
    name: String,
    line: Line,
    slaves: Vec<String>,
    /// `None`: DHCP.
    addresses: Option<Vec<Ipv4Net>>,
    gateway: Option<Ipv4Addr>,
    /// `[Bond]` keys besides Name, DHCP, Address and Gateway, in the order written.
    keys: Vec<(&'static str, String)>,
}

/// The first interface with `bond-slaves` or `bond-mode` (or named by a `bond-master`), as a
/// bond when it is active-backup; the others, and a bond of another mode, are reported and
/// returned by name so that they do not become uplinks either.
fn find_bond(groups: &[(String, Vec<&Iface>)], note: &mut NoteFn) -> Result<(Option<Bond>, Vec<String>), Error> {
    let masters: Vec<(&str, &Iface)> =
        groups.iter().flat_map(|(_, s)| s.iter()).filter_map(|i| i.first("bond-master").map(|m| (m.value.as_str(), *i))).collect();
    let is_bond =
        |i: &Iface| i.family == "inet" && (i.first("bond-slaves").is_some() || i.first("bond-mode").is_some() || masters.iter().any(|(m, _)| *m == i.name));
    let mut found: Option<Bond> = None;
    let mut rejected = Vec::new();
    for (_, stanzas) in groups {
        for iface in stanzas.iter().filter(|i| is_bond(i)) {
            let mode = iface.first("bond-mode").map(|o| o.value.as_str()).unwrap_or("balance-rr");
            if found.is_some() || !matches!(mode, "active-backup" | "1") || !matches!(iface.method.as_str(), "static" | "dhcp") {
                let why = if found.is_some() {
                    "a second bond: the policy has one".to_string()
                } else if !matches!(mode, "active-backup" | "1") {
                    format!("bond-mode {mode}: multihome makes active-backup bonds only (ifenslave's default is balance-rr)")
                } else {
                    format!("method {}: the bond needs its address (static) or DHCP", iface.method)
                };
                note(&iface.line, false, format!("bond {}: {why}; the bond and its lines are not imported", iface.name));
                iface.options.iter().for_each(|o| note(&o.line, false, format!("part of bond {} ({}), which is not imported", iface.name, iface.line.at())));
                rejected.push(iface.name.clone());
                continue;
            }
            found = Some(bond(iface, &masters, note)?);
        }
    }
    Ok((found, rejected))
}

fn bond(iface: &Iface, masters: &[(&str, &Iface)], note: &mut NoteFn) -> Result<Bond, Error> {
    let mut slaves: Vec<String> = Vec::new();
    if let Some(o) = iface.first("bond-slaves")
        && o.value != "none"
    {
        slaves.extend(o.value.split_whitespace().map(str::to_string));
    }
    for (m, s) in masters {
        if *m == iface.name && !slaves.contains(&s.name) {
            slaves.push(s.name.clone());
        }
    }
    let primary = iface.first("bond-primary").or_else(|| masters.iter().filter(|(m, _)| *m == iface.name).find_map(|(_, s)| s.first("bond-primary")));
    if let Some(p) = primary
        && let Some(pos) = slaves.iter().position(|s| *s == p.value)
    {
        // The primary first: the policy's order is the slaves' order of preference.
        let p = slaves.remove(pos);
        slaves.insert(0, p);
    }
    let mut keys: Vec<(&'static str, String)> = Vec::new();
    if let Some(p) = primary {
        keys.push(("Primary", p.value.clone()));
    }
    let mut addresses = if iface.method == "dhcp" { None } else { Some(Vec::new()) };
    let mut gateway = None;
    let netmask = iface.first("netmask");
    for o in &iface.options {
        let ms = |key: &'static str| -> Result<(&'static str, String), Error> {
            let n: u32 = o.value.parse().map_err(|_| Error::at(&o.line, format!("{} {}: not a number of milliseconds", o.key, o.value)))?;
            Ok((key, format!("{n}ms")))
        };
        match o.key.as_str() {
            "bond-slaves" | "bond-mode" | "bond-primary" => {}
            "bond-miimon" => keys.push(ms("MIIMonitorSec")?),
            "bond-updelay" => keys.push(ms("UpDelaySec")?),
            "bond-downdelay" => keys.push(ms("DownDelaySec")?),
            "bond-primary-reselect" => match o.value.as_str() {
                "always" | "0" => keys.push(("PrimaryReselectPolicy", "always".into())),
                "better" | "1" => keys.push(("PrimaryReselectPolicy", "better".into())),
                "failure" | "2" => keys.push(("PrimaryReselectPolicy", "failure".into())),
                _ => note(&o.line, false, format!("bond-primary-reselect {}: not always, better or failure", o.value)),
            },
            "bond-fail-over-mac" => match o.value.as_str() {
                "none" | "0" => keys.push(("FailOverMACPolicy", "none".into())),
                "active" | "1" => keys.push(("FailOverMACPolicy", "active".into())),
                "follow" | "2" => keys.push(("FailOverMACPolicy", "follow".into())),
                _ => note(&o.line, false, format!("bond-fail-over-mac {}: not none, active or follow", o.value)),
            },
            "address" => match (&mut addresses, address(o, netmask, false)?) {
                (Some(list), IpNet::V4(n)) => list.push(n),
                _ => note(&o.line, false, "an address beside DHCP: the policy's bond takes one or the other".into()),
            },
            "netmask" => {}
            "gateway" => gateway = Some(o.value.parse::<Ipv4Addr>().map_err(|_| Error::at(&o.line, format!("gateway {}: not an IPv4 address", o.value)))?),
            "pre-up" | "up" | "post-up" | "down" | "pre-down" | "post-down" => note(&o.line, false, why_not(&o.key)),
            k => note(
                &o.line,
                false,
                why_not(k).replace("this interface is not part of an active-backup bond the import carries over", "the policy's [Bond] has no such key"),
            ),
        }
    }
    // The slaves' own stanzas: membership and the primary are carried, the rest is reported.
    for (m, s) in masters {
        if *m != iface.name {
            continue;
        }
        for o in &s.options {
            if !matches!(o.key.as_str(), "bond-master" | "bond-primary") {
                note(
                    &o.line,
                    false,
                    why_not(&o.key).replace(
                        "this interface is not part of an active-backup bond the import carries over",
                        "a slave's own bond option; the policy's [Bond] has no such key",
                    ),
                );
            }
        }
    }
    // A Wi-Fi slave cannot take the bond's MAC while associated: say so in the policy rather
    // than leave `check` to replace the default with a warning.
    if !keys.iter().any(|(k, _)| *k == "FailOverMACPolicy") && slaves.iter().any(|s| crate::policy::bond::is_wifi(s)) {
        keys.push(("FailOverMACPolicy", "active".into()));
    }
    Ok(Bond { name: iface.name.clone(), line: iface.line.clone(), slaves, addresses, gateway, keys })
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn import(text: &str) -> Import {
        convert("interfaces", &parse("interfaces", text).unwrap()).unwrap()
    }

    #[test]
    fn ip_commands_are_read_with_their_abbreviations() {
        let ip = ip_command("ip -4 r add default via 192.168.178.1 dev eth0 table rt1").unwrap();
        assert_eq!((ip.rule, ip.destination.as_deref(), ip.via.as_deref(), ip.table.as_deref()), (false, Some("default"), Some("192.168.178.1"), Some("rt1")));
        let ip = ip_command("/sbin/ip ru add from 192.168.178.99/32 lookup 101 pref 100 || true").unwrap();
        assert_eq!((ip.rule, ip.from.as_deref(), ip.table.as_deref()), (true, Some("192.168.178.99/32"), Some("101")));
        assert!(ip_command("ip route add default via 1.2.3.4; echo hi").is_none());
        assert!(ip_command("iptables -A INPUT").is_none());
    }

    #[test]
    fn a_rule_for_another_address_or_a_route_on_another_device_is_not_recognised() {
        let own = ["192.168.178.99".parse().unwrap()];
        let tables = BTreeSet::from(["rt1".to_string()]);
        assert!(recognise("ip rule add from 192.168.178.99/32 table rt1", "eth0", &own, &tables).is_some());
        assert!(recognise("ip rule add from 10.0.0.1/32 table rt1", "eth0", &own, &tables).is_none());
        assert!(recognise("ip rule add from 192.168.178.0/24 table rt1", "eth0", &own, &tables).is_none());
        assert!(recognise("ip route add default via 192.168.178.1 dev wlan0 table rt1", "eth0", &own, &tables).is_none());
        assert!(recognise("ip route add 10.9.0.0/16 via 192.168.178.5", "eth0", &own, &tables).is_none());
        assert!(recognise("ip rule del from 0/0 to 0/0 table rt1", "eth0", &own, &tables).is_some());
        assert!(recognise("ip rule del from 0/0 to 0/0 table rt9", "eth0", &own, &tables).is_none());
    }

    #[test]
    fn netmask_dotted_or_length_and_its_errors() {
        let i = import("iface eth0 inet static\n address 10.1.2.3\n netmask 255.255.240.0\n gateway 10.1.0.1\n");
        assert!(i.policy.contains("Address=10.1.2.3/20\n"), "{}", i.policy);
        let i = import("iface eth0 inet static\n address 10.1.2.3\n netmask 20\n gateway 10.1.0.1\n");
        assert!(i.policy.contains("Address=10.1.2.3/20\n"), "{}", i.policy);
        let e = convert("interfaces", &parse("interfaces", "iface eth0 inet static\n address 10.1.2.3\n netmask 255.0.255.0\n gateway 10.1.0.1\n").unwrap())
            .unwrap_err();
        assert_eq!(e.to_string(), "interfaces:3: netmask 255.0.255.0: not a contiguous mask");
        let e = convert("interfaces", &parse("interfaces", "iface eth0 inet static\n address 10.1.2.300/24\n").unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "interfaces:2: address 10.1.2.300/24: not an IPv4 address");
    }

    #[test]
    fn metric_orders_before_file_order() {
        let i = import("iface eth0 inet dhcp\n\niface wlan0 inet dhcp\n metric 5\n\niface wlan1 inet dhcp\n");
        let order: Vec<&str> = i.policy.lines().filter_map(|l| l.strip_prefix("Interface=")).collect();
        assert_eq!(order, ["wlan0", "eth0", "wlan1"]);
    }

    #[test]
    fn an_interface_without_gateway_is_reported_line_by_line() {
        let i = import("iface eth0 inet dhcp\n\niface eth1 inet static\n address 10.0.0.1/24\n mtu 9000\n");
        assert!(!i.policy.contains("eth1"));
        let at: Vec<&str> = i.notes.iter().map(|n| n.at.as_str()).collect();
        assert_eq!(at, ["interfaces:3", "interfaces:4", "interfaces:5"]);
        assert!(i.notes[0].why.contains("no gateway"), "{}", i.notes[0]);
    }

    #[test]
    fn a_bond_of_another_mode_is_reported_and_slaves_may_be_named_by_bond_master() {
        let e = convert("interfaces", &parse("interfaces", "iface bond0 inet dhcp\n bond-slaves eth0 eth1\n bond-mode 802.3ad\n").unwrap()).unwrap_err();
        assert!(e.message.contains("nothing to import"), "{e}");
        let i = import(
            "iface eth1 inet manual\n bond-master bond0\niface eth0 inet manual\n bond-master bond0\n bond-primary eth0\niface bond0 inet static\n address 10.0.0.2/24\n gateway 10.0.0.1\n bond-slaves none\n bond-mode 1\n",
        );
        let order: Vec<&str> = i.policy.lines().filter_map(|l| l.strip_prefix("Interface=")).collect();
        assert_eq!(order, ["eth0", "eth1"], "the primary first: {}", i.policy);
        assert!(i.policy.contains("Mode=bond\n") && i.policy.contains("Address=10.0.0.2/24\nGateway=10.0.0.1\nPrimary=eth0\n"), "{}", i.policy);
        assert!(!i.policy.contains("FailOverMACPolicy"), "no Wi-Fi slave");
        assert!(i.notes.is_empty(), "{:?}", i.notes);
    }

    #[test]
    fn static_ipv4_without_a_gateway_beside_slaac_imports_the_ipv6_side() {
        let i = import("iface eth9 inet static\n address 10.0.9.5/24\niface eth9 inet6 static\n address 2001:db8::5/64\n\niface eth0 inet dhcp\n");
        let at: Vec<&str> = i.notes.iter().map(|n| n.at.as_str()).collect();
        assert_eq!(at, ["interfaces:1", "interfaces:2", "interfaces:3", "interfaces:4"], "each line once: {:?}", i.notes);
        let i = import("iface eth0 inet static\n address 10.0.0.5/24\n\niface eth0 inet6 auto\n");
        assert!(!i.policy.contains("10.0.0.5") && i.policy.contains("IPv6AcceptRA=yes"), "{}", i.policy);
        let at: Vec<&str> = i.notes.iter().map(|n| n.at.as_str()).collect();
        assert_eq!(at, ["interfaces:1", "interfaces:2"]);
        assert!(i.notes[0].why.starts_with("IPv4 without a gateway"), "{}", i.notes[0]);
        crate::policy::parse("imported", &i.policy).unwrap();
    }

    #[test]
    fn nothing_to_import_is_an_error() {
        let e = convert("interfaces", &parse("interfaces", "auto lo\niface lo inet loopback\n").unwrap()).unwrap_err();
        assert!(e.to_string().starts_with("interfaces: no interface other than lo"), "{e}");
    }
}
