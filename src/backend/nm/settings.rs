//! Plan -> NetworkManager connection settings, without I/O: what multihome wants in a profile's
//! `ipv4` setting, merged into a profile so that every other setting stays as its owner left it,
//! and the same in nmcli's words, which is both what `multihome plan` shows and what decides
//! whether a profile needs an update at all (applying twice changes nothing).
//!
//! What multihome wrote into `ipv4.routes` and `ipv4.routing-rules` is recorded in the profile
//! ([`record`]), so the next apply removes exactly that and nothing the user wrote.
//!
//! Profiles are NetworkManager's D-Bus form (`a{sa{sv}}`), ordered for reproducible output.
//! Values of settings multihome does not own pass through untouched, with their D-Bus types.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};
use uuid::Uuid;
use zbus::{OwnedVariant, Variant};

use crate::plan::{Addresses, DEFAULT_DESTINATION, Plan, Prefix, Route, Rule, Table, UplinkPlan};

pub mod bond;
pub mod ip;
pub mod record;

pub use ip::{AddressEntry, Family, IPV4, IPV6, IpSetting, RouteEntry, RuleEntry};
pub use record::Record;

/// One setting (`ipv4`, `connection`, ...) or one entry of `route-data`/`routing-rules`.
pub type Dict = BTreeMap<String, OwnedVariant>;
/// A connection profile: setting name -> its properties.
pub type Profile = BTreeMap<String, Dict>;

/// Name of the profiles multihome creates for an uplink that has none.
pub fn profile_id(interface: &str) -> String {
    format!("multihome-{interface}")
}

/// The UUID of the profile created for `interface`: derived, so rendering twice gives the same
/// keyfile and `apply` after `render --backend nm-keyfile` finds the same profile.
pub fn profile_uuid(interface: &str) -> Uuid {
    let namespace = Uuid::new_v5(&Uuid::NAMESPACE_DNS, b"nm-profile.multihome.invalid");
    Uuid::new_v5(&namespace, profile_id(interface).as_bytes())
}

/// The interface a profile was created for by multihome: its name and derived UUID say so
/// (a user's profile that happens to be called multihome-X has another UUID).
pub fn created_for(p: &Profile) -> Option<String> {
    let connection = p.get("connection")?;
    let text = |k: &str| connection.get(k).and_then(|v| String::try_from(v.clone()).ok());
    let interface = text("id")?.strip_prefix("multihome-")?.to_string();
    (text("uuid")? == profile_uuid(&interface).to_string()).then_some(interface)
}

/// NetworkManager's name for the connection type of an interface, or `None` for a kind that
/// cannot be created from the policy alone (a Wi-Fi profile needs an SSID and its secrets).
pub fn connection_type(device_type: u32) -> Option<&'static str> {
    // NM_DEVICE_TYPE_ETHERNET = 1, NM_DEVICE_TYPE_VETH = 20: veths take ethernet profiles.
    match device_type {
        1 | 20 => Some("802-3-ethernet"),
        _ => None,
    }
}

/// What multihome decides in an uplink's `ipv4` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub method: &'static str,
    pub addresses: Vec<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    /// Orders the uplinks in the main table: NetworkManager gives it to the default route and
    /// the prefix routes of the profile.
    pub route_metric: u32,
    /// The uplink's own table: routes and rules into it belong to multihome, the rest of
    /// `ipv4.routes` and `ipv4.routing-rules` stays as it is.
    pub table: u32,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
    /// The `ipv6` setting, when the policy owns the uplink's IPv6.
    pub ipv6: Option<Wanted6>,
    /// `connection.mptcp-flags=disabled` while multihome manages the uplinks' MPTCP endpoints
    /// (`[Policy] MPTCP=yes`): NetworkManager (1.40+) otherwise makes normal-subflow endpoints
    /// of its own for every address with a default route, which hold the addresses multihome's
    /// need and cannot follow the uplinks' health. With `MPTCP=no` the setting is left alone.
    pub mptcp_disabled: bool,
}

/// What multihome decides in an uplink's `ipv6` setting: the same table and metric as IPv4.
///
/// Router advertisements and DHCPv6 (`method=auto`; DHCPv6 where the advertisement asks for
/// it): NetworkManager puts the advertised router in main at `ipv6.route-metric`,
/// where the uplinks' order needs it, and in no other table; the dispatcher hook copies it into
/// the uplink's table (`dispatch::ipv6`) and gives the SLAAC and DHCPv6 addresses their rules
/// when NetworkManager dispatches `up` and `dhcp6-change`. So that `up` comes once those are
/// there, not with IPv4 alone, activation waits for IPv6 up to `required_timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted6 {
    pub method: &'static str,
    /// `ipv6.required-timeout` (ms) for a dynamic method; static IPv6 leaves it as it is.
    pub required_timeout: Option<u32>,
    pub addresses: Vec<Ipv6Net>,
    pub gateway: Option<Ipv6Addr>,
    pub routes: Vec<Route<Ipv6Net>>,
    pub rules: Vec<Rule<Ipv6Net>>,
}

/// NM_MPTCP_FLAGS_DISABLED: no endpoints for the profile's addresses.
pub const MPTCP_FLAGS_DISABLED: u32 = 0x1;
const MPTCP_FLAGS: &str = "mptcp-flags";

impl Wanted {
    /// [`Wanted::for_uplink`] within `plan`, which says whether multihome manages MPTCP.
    pub fn in_plan(plan: &Plan, u: &UplinkPlan) -> Wanted {
        Wanted { mptcp_disabled: plan.mptcp.is_some(), ..Wanted::for_uplink(u) }
    }

    pub fn for_uplink(u: &UplinkPlan) -> Wanted {
        // The main-table default route is ipv4.gateway with ipv4.route-metric; only the routes
        // of the uplink's own table are listed in ipv4.routes.
        let mut routes: Vec<Route> = u.routes.iter().filter(|r| r.table != Table::Main).cloned().collect();
        let (method, addresses) = match &u.addresses {
            // An IPv6-only uplink.
            Addresses::Static(nets) if nets.is_empty() => ("disabled", Vec::new()),
            Addresses::Static(nets) => ("manual", nets.clone()),
            Addresses::Dhcp(_) => {
                // With DHCP only a gateway named in the policy is known now; otherwise the
                // dispatcher hook adds the table's default route when the lease arrives.
                if let Some(gw) = u.gateway {
                    routes.push(Route { destination: DEFAULT_DESTINATION, gateway: Some(gw), table: Table::Id(u.table), metric: None, preferred_source: None });
                }
                ("auto", Vec::new())
            }
        };
        let gateway = if method == "manual" { u.gateway } else { None };
        let ipv6 = u.ipv6.as_ref().map(|v6| Wanted6 {
            // SLAAC and the advertised router, and DHCPv6 when the advertisement asks for it (as
            // every DHCPv6 network's does: DHCPv6 names no router, so the policy takes the
            // advertisements with DHCP=ipv6). Without either and without addresses the uplink
            // has no IPv6 of its own.
            method: if v6.accept_ra || v6.dhcp {
                "auto"
            } else if v6.addresses.is_empty() {
                "disabled"
            } else {
                "manual"
            },
            required_timeout: (v6.accept_ra || v6.dhcp).then_some(crate::numbers::NM_IPV6_REQUIRED_TIMEOUT_MS),
            addresses: v6.addresses.clone(),
            gateway: v6.gateway,
            routes: v6.routes.iter().filter(|r| r.table != Table::Main).cloned().collect(),
            rules: v6.rules.clone(),
        });
        Wanted { method, addresses, gateway, route_metric: u.metric, table: u.table, routes, rules: u.rules.clone(), ipv6, mptcp_disabled: false }
    }
}

pub(crate) fn owned<'a>(v: impl Into<Variant<'a>>) -> OwnedVariant {
    OwnedVariant::try_from(v.into()).expect("a value without file descriptors always converts")
}

/// The plan's route as a `route-data` entry (of `ipv4` or `ipv6`).
fn route_entry<N: Prefix>(r: &Route<N>) -> RouteEntry {
    RouteEntry {
        dest: Some(r.destination.trunc().addr().into()),
        prefix: Some(u32::from(r.destination.prefix_len())),
        next_hop: r.gateway.map(Into::into),
        // plan::Route: every gateway is on the uplink's link; without onlink the kernel refuses
        // the route while the link route to the gateway is missing (as carrier returns). Not
        // for IPv6: plan::Prefix::GATEWAY_ONLINK says why.
        onlink: r.gateway.filter(|_| N::GATEWAY_ONLINK).map(|_| true),
        metric: r.metric,
        src: r.preferred_source.map(Into::into),
        table: Some(r.table.number()),
        attributes: Dict::new(),
    }
}

/// The plan's rule as a `routing-rules` entry.
fn rule_entry<N: Prefix>(r: &Rule<N>) -> RuleEntry {
    RuleEntry {
        family: Some(if N::FAMILY == "ipv4" { libc::AF_INET } else { libc::AF_INET6 }),
        priority: Some(r.priority),
        from: r.from.map(|n| (n.trunc().addr().into(), n.prefix_len())),
        to: r.to.map(|n| (n.trunc().addr().into(), n.prefix_len())),
        table: Some(r.table.number()),
        attributes: Dict::new(),
    }
}

/// A new profile for `interface` with nothing but what the connection type needs, for
/// [`merge`] to complete. IPv6 is NetworkManager's default unless the policy has it.
pub fn new_profile(interface: &str, connection_type: &str) -> Profile {
    let mut p = Profile::new();
    let mut c = Dict::new();
    c.insert("id".into(), owned(profile_id(interface)));
    c.insert("uuid".into(), owned(profile_uuid(interface).to_string()));
    c.insert("type".into(), owned(connection_type.to_string()));
    c.insert("interface-name".into(), owned(interface.to_string()));
    p.insert("connection".into(), c);
    p.insert(connection_type.to_string(), Dict::new());
    IpSetting { method: Some("auto".into()), ..Default::default() }.write(&mut p, IPV6);
    p
}

/// The profile with multihome's `ipv4` values set and everything else as it was. The routes and
/// rules multihome wrote there before (its [`Record`]) are replaced by the plan's; the user's own
/// stay, in whatever table. A profile without a record holds none of multihome's, unless
/// multihome created it (then all of them are, as before records existed).
pub fn merge(current: &Profile, want: &Wanted) -> Profile {
    let mut p = current.clone();
    let old = IpSetting::of(current, IPV4);
    let mut ipv4 = old.clone();
    ipv4.method = Some(want.method.to_string());
    ipv4.addresses = want.addresses.iter().map(|n| AddressEntry::new(IpAddr::V4(n.addr()), n.prefix_len())).collect();
    ipv4.other_addresses.clear();
    ipv4.gateway = want.gateway.map(IpAddr::V4);
    ipv4.route_metric = Some(i64::from(want.route_metric));
    // The plan needs this uplink's default route in main, where the metrics order the uplinks:
    // `never-default` would drop it and a `route-table` would move it. Absent means no and main.
    ipv4.never_default = None;
    ipv4.route_table = None;
    let recorded = Record::of(current);
    let own_profile = created_for(current).is_some();
    let record = record_for(want);
    // Kept: what multihome did not write, unless it is one of the plan's (no duplicates).
    let ours = |text: &str, list: fn(&Record) -> &Vec<String>| {
        let t = text.to_string();
        recorded.as_ref().map_or(own_profile, |r| list(r).contains(&t)) || list(&record).contains(&t)
    };
    ipv4.routes.retain(|e| !ours(&e.text(), |r| &r.routes));
    ipv4.routes.extend(want.routes.iter().map(route_entry));
    ipv4.rules.retain(|e| !ours(&e.text(), |r| &r.rules));
    ipv4.rules.extend(want.rules.iter().map(rule_entry));
    ipv4.write(&mut p, IPV4);
    drop_deprecated_v6(&mut p);
    // IPv6: set as for IPv4 when the policy owns it; otherwise only multihome's own entries of an
    // earlier policy go, and the rest stays as NetworkManager or the user left it.
    let had_ours6 = recorded.as_ref().is_some_and(|r| r.ipv6);
    if want.ipv6.is_some() || had_ours6 {
        let mut ipv6 = IpSetting::of(&p, IPV6);
        if let Some(w6) = &want.ipv6 {
            ipv6.method = Some(w6.method.to_string());
            ipv6.addresses = w6.addresses.iter().map(|n| AddressEntry::new(IpAddr::V6(n.addr()), n.prefix_len())).collect();
            ipv6.other_addresses.clear();
            ipv6.gateway = w6.gateway.map(IpAddr::V6);
            ipv6.route_metric = Some(i64::from(want.route_metric));
            ipv6.never_default = None;
            ipv6.route_table = None;
            if let Some(t) = w6.required_timeout {
                ipv6.required_timeout = i32::try_from(t).ok();
            }
        }
        ipv6.routes.retain(|e| !ours(&e.text(), |r| &r.routes));
        ipv6.rules.retain(|e| !ours(&e.text(), |r| &r.rules));
        if let Some(w6) = &want.ipv6 {
            ipv6.routes.extend(w6.routes.iter().map(route_entry));
            ipv6.rules.extend(w6.rules.iter().map(rule_entry));
        }
        ipv6.write(&mut p, IPV6);
    }
    record.write(&mut p);
    // A slave of multihome's bond (Mode=bond before) is a plain profile again.
    bond::unslave(&mut p);
    if want.mptcp_disabled {
        p.entry("connection".into()).or_default().insert(MPTCP_FLAGS.into(), owned(MPTCP_FLAGS_DISABLED));
    }
    p
}

/// The deprecated forms in `ipv6` too ([`IpSetting::of`] says why), without otherwise touching
/// a setting multihome does not own.
fn drop_deprecated_v6(p: &mut Profile) {
    if let Some(s) = p.get_mut(IPV6) {
        if s.contains_key("address-data") {
            s.remove("addresses");
        }
        if s.contains_key("route-data") {
            s.remove("routes");
        }
    }
}

/// What merging `want` writes into a profile's routes and rules, as its [`Record`] says it.
pub fn record_for(want: &Wanted) -> Record {
    let mut routes: Vec<String> = want.routes.iter().map(|r| route_entry(r).text()).collect();
    let mut rules: Vec<String> = want.rules.iter().map(|r| rule_entry(r).text()).collect();
    if let Some(w6) = &want.ipv6 {
        routes.extend(w6.routes.iter().map(|r| route_entry(r).text()));
        rules.extend(w6.rules.iter().map(|r| rule_entry(r).text()));
    }
    Record { routes, rules, ipv6: want.ipv6.is_some() }
}

/// The kernel routes NetworkManager installed from multihome's entries of a profile, and those
/// it installs from the merged profile, each with the metric it gets (the entry's, else the
/// profile's route-metric; `None` when that is NetworkManager's default, unknown here).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InstalledRoutes {
    pub before: Vec<Route>,
    pub after: Vec<Route>,
}

/// What merging `current` into `merged` changes among the kernel routes NetworkManager
/// installs: `before` holds only multihome's entries of `current` (those merging took out, and
/// those it wrote again), `after` every entry of `merged`.
pub fn installed_routes(current: &Profile, merged: &Profile) -> InstalledRoutes {
    let kept: Vec<String> = IpSetting::of(merged, IPV4).routes.iter().map(RouteEntry::text).collect();
    let rewritten = Record::of(merged).unwrap_or_default().routes;
    let mine = |e: &RouteEntry| {
        let t = e.text();
        !kept.contains(&t) || rewritten.contains(&t)
    };
    InstalledRoutes { before: installed(current, mine), after: installed(merged, |_| true) }
}

fn installed(p: &Profile, take: impl Fn(&RouteEntry) -> bool) -> Vec<Route> {
    let ipv4 = IpSetting::of(p, IPV4);
    let route_metric = ipv4.route_metric.and_then(|m| u32::try_from(m).ok());
    ipv4.routes.iter().filter(|e| take(e)).filter_map(route_of).map(|r| Route { metric: r.metric.or(route_metric), ..r }).collect()
}

/// A `route-data` entry as a plan route; `None` for one that is not IPv4 unicast as multihome
/// writes them.
fn route_of(e: &RouteEntry) -> Option<Route> {
    let v4 = |a: Option<IpAddr>| match a {
        None => Ok(None),
        Some(IpAddr::V4(a)) => Ok(Some(a)),
        Some(IpAddr::V6(_)) => Err(()),
    };
    let prefix = u8::try_from(e.prefix?).ok()?;
    let destination = Ipv4Net::new(v4(e.dest).ok()??, prefix).ok()?;
    let gateway = v4(e.next_hop).ok()?.filter(|g| !g.is_unspecified());
    let preferred_source = v4(e.src).ok()?;
    let table = match e.table {
        None | Some(0) | Some(254) => Table::Main,
        Some(t) => Table::Id(t),
    };
    Some(Route { destination, gateway, table, metric: e.metric, preferred_source })
}

/// `p` without what multihome wrote into its routes and rules and without its record, and no
/// longer a slave of multihome's bond, for a user's profile whose interface left the policy;
/// `None` when multihome never wrote there. The other `ipv4` values stay as they are: multihome
/// does not know what they were before. A freed slave has no IP settings (enslaving took them):
/// NetworkManager gives it its defaults (`auto`).
pub fn release(p: &Profile) -> Option<Profile> {
    let record = Record::of(p);
    let slave = bond::is_ours(p);
    if record.is_none() && !slave {
        return None;
    }
    let mut out = p.clone();
    if let Some(record) = record {
        for family in [IPV4, IPV6] {
            // IPv6 entries are multihome's only where its record says it owned IPv6.
            if out.contains_key(family) && (family == IPV4 || record.ipv6) {
                let mut ip = IpSetting::of(p, family);
                ip.routes.retain(|e| !record.routes.contains(&e.text()));
                ip.rules.retain(|e| !record.rules.contains(&e.text()));
                ip.write(&mut out, family);
            }
        }
        drop_deprecated_v6(&mut out);
        Record::erase(&mut out);
    }
    bond::unslave(&mut out);
    Some(out)
}

/// A value as nmcli prints it: numbers and strings bare, anything else in D-Bus text form.
fn text(v: &OwnedVariant) -> String {
    match &**v {
        Variant::Str(s) => s.to_string(),
        Variant::U8(n) => n.to_string(),
        Variant::U32(n) => n.to_string(),
        Variant::I32(n) => n.to_string(),
        Variant::I64(n) => n.to_string(),
        Variant::U64(n) => n.to_string(),
        Variant::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        other => other.to_string(),
    }
}

/// One `ipv4.routes` entry in nmcli's syntax, every attribute included so that any difference
/// shows.
pub(crate) fn route_text(e: &Dict) -> String {
    let get = |k: &str| e.get(k).map(text);
    let mut s = format!("{}/{}", get("dest").unwrap_or_default(), get("prefix").unwrap_or_default());
    if let Some(nh) = get("next-hop") {
        s.push(' ');
        s.push_str(&nh);
    }
    if let Some(m) = get("metric") {
        s.push(' ');
        s.push_str(&m);
    }
    for (k, v) in e.iter().filter(|(k, _)| !matches!(k.as_str(), "dest" | "prefix" | "next-hop" | "metric")) {
        // nmcli writes boolean route attributes as true/false (properties as yes/no).
        let value = match &**v {
            Variant::Bool(b) => b.to_string(),
            _ => text(v),
        };
        s.push_str(&format!(" {k}={value}"));
    }
    s
}

/// One `ipv4.routing-rules` entry in nmcli's syntax (`priority N from A/L table T`).
pub(crate) fn rule_text(e: &Dict) -> String {
    let get = |k: &str| e.get(k).map(text);
    let mut s = format!("priority {}", get("priority").unwrap_or_default());
    for side in ["from", "to"] {
        if let Some(a) = get(side) {
            s.push_str(&format!(" {side} {a}/{}", get(&format!("{side}-len")).unwrap_or_default()));
        }
    }
    for (k, v) in e.iter().filter(|(k, _)| !matches!(k.as_str(), "priority" | "from" | "from-len" | "to" | "to-len" | "family" | "table")) {
        s.push_str(&format!(" {k} {}", text(v)));
    }
    if let Some(t) = get("table") {
        s.push_str(&format!(" table {t}"));
    }
    s
}

/// The `ipv4` properties multihome sets, one `name: value` line each, as nmcli shows them.
/// Equal lines mean an update would change nothing multihome cares about.
pub fn ipv4_lines(p: &Profile) -> Vec<String> {
    family_lines(p, IPV4)
}

/// [`ipv4_lines`], and the same for `ipv6` where multihome's record says the policy owns it.
pub fn ip_lines(p: &Profile) -> Vec<String> {
    let mut lines = family_lines(p, IPV4);
    if Record::of(p).is_some_and(|r| r.ipv6) {
        lines.extend(family_lines(p, IPV6));
    }
    lines
}

fn family_lines(p: &Profile, family: Family) -> Vec<String> {
    let ip = IpSetting::of(p, family);
    let shown = |v: Option<String>, default: &str| v.unwrap_or_else(|| default.to_string());
    let mut out = vec![format!("{family}.method: {}", shown(ip.method.clone(), "auto"))];
    for a in &ip.addresses {
        out.push(format!("{family}.addresses: {}/{}", a.address, a.prefix));
    }
    for a in &ip.other_addresses {
        out.push(format!("{family}.addresses: {}", text(&owned(a.clone()))));
    }
    out.push(format!("{family}.gateway: {}", shown(ip.gateway.map(|g| g.to_string()), "--")));
    out.push(format!("{family}.route-metric: {}", shown(ip.route_metric.map(|m| m.to_string()), "-1")));
    out.push(format!("{family}.never-default: {}", if ip.never_default.unwrap_or(false) { "yes" } else { "no" }));
    out.push(format!("{family}.route-table: {}", ip.route_table.unwrap_or(0)));
    if let Some(t) = ip.required_timeout {
        out.push(format!("{family}.required-timeout: {t}"));
    }
    let mut routes: Vec<String> = ip.routes.iter().map(RouteEntry::text).collect();
    routes.sort();
    out.extend(routes.into_iter().map(|r| format!("{family}.routes: {r}")));
    let mut rules: Vec<String> = ip.rules.iter().map(RuleEntry::text).collect();
    rules.sort();
    out.extend(rules.into_iter().map(|r| format!("{family}.routing-rules: {r}")));
    out
}

/// [`ip_lines`] and the lines of multihome's [`Record`]: everything [`merge`] decides.
pub fn owned_lines(p: &Profile) -> Vec<String> {
    let mut lines = ip_lines(p);
    lines.extend(Record::lines(p));
    if let Some(flags) = p.get("connection").and_then(|c| c.get(MPTCP_FLAGS)).and_then(|v| u32::try_from(v.clone()).ok()) {
        lines.push(format!("connection.{MPTCP_FLAGS}: 0x{flags:x}"));
    }
    lines
}

/// Whether sending `merged` would change something multihome owns in `current`. [`merge`]
/// changes nothing else (dropping the deprecated duplicates is no change: NetworkManager
/// derives them again).
pub fn needs_update(current: &Profile, merged: &Profile) -> bool {
    owned_lines(current) != owned_lines(merged)
}

/// `multihome plan`: the change to one profile as a unified diff of its multihome-owned lines.
pub fn diff(label: &str, current: Option<&Profile>, merged: &Profile) -> String {
    let old = current.map(|p| owned_lines(p).join("\n") + "\n").unwrap_or_default();
    let new = owned_lines(merged).join("\n") + "\n";
    if old == new {
        return String::new();
    }
    let from = if current.is_some() { label.to_string() } else { "(no profile)".to_string() };
    similar::TextDiff::from_lines(&old, &new).unified_diff().context_radius(20).header(&from, label).to_string()
}

#[cfg(test)]
mod tests;
