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
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use uuid::Uuid;
use zbus::{OwnedVariant, Variant};

use crate::plan::{Addresses, DEFAULT_DESTINATION, Route, Rule, Table, UplinkPlan};

pub mod record;

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
}

impl Wanted {
    pub fn for_uplink(u: &UplinkPlan) -> Wanted {
        // The main-table default route is ipv4.gateway with ipv4.route-metric; only the routes
        // of the uplink's own table are listed in ipv4.routes.
        let mut routes: Vec<Route> = u.routes.iter().filter(|r| r.table != Table::Main).cloned().collect();
        let (method, addresses) = match &u.addresses {
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
        Wanted { method, addresses, gateway, route_metric: u.metric, table: u.table, routes, rules: u.rules.clone() }
    }
}

fn owned<'a>(v: impl Into<Variant<'a>>) -> OwnedVariant {
    OwnedVariant::try_from(v.into()).expect("a value without file descriptors always converts")
}

fn dicts(entries: Vec<Dict>) -> OwnedVariant {
    owned(entries)
}

fn route_dict(r: &Route) -> Dict {
    let mut d = Dict::new();
    d.insert("dest".into(), owned(r.destination.network().to_string()));
    d.insert("prefix".into(), owned(u32::from(r.destination.prefix_len())));
    if let Some(gw) = r.gateway {
        d.insert("next-hop".into(), owned(gw.to_string()));
        // plan::Route: every gateway is on the uplink's link; without onlink the kernel refuses
        // the route while the link route to the gateway is missing (as carrier returns).
        d.insert("onlink".into(), owned(true));
    }
    if let Some(m) = r.metric {
        d.insert("metric".into(), owned(m));
    }
    if let Some(src) = r.preferred_source {
        d.insert("src".into(), owned(src.to_string()));
    }
    d.insert("table".into(), owned(r.table.number()));
    d
}

fn rule_dict(r: &Rule) -> Dict {
    let mut d = Dict::new();
    d.insert("family".into(), owned(libc::AF_INET));
    d.insert("priority".into(), owned(r.priority));
    if let Some(from) = r.from {
        d.insert("from".into(), owned(from.network().to_string()));
        d.insert("from-len".into(), owned(from.prefix_len()));
    }
    if let Some(to) = r.to {
        d.insert("to".into(), owned(to.network().to_string()));
        d.insert("to-len".into(), owned(to.prefix_len()));
    }
    d.insert("table".into(), owned(r.table.number()));
    d
}

fn entries(section: Option<&Dict>, key: &str) -> Vec<Dict> {
    section.and_then(|s| s.get(key)).and_then(|v| Vec::<Dict>::try_from(v.clone()).ok()).unwrap_or_default()
}

/// A new profile for `interface` with nothing but what the connection type needs, for
/// [`merge`] to complete. IPv6 is left to NetworkManager's default, as the policy is IPv4 only.
pub fn new_profile(interface: &str, connection_type: &str) -> Profile {
    let mut p = Profile::new();
    let mut c = Dict::new();
    c.insert("id".into(), owned(profile_id(interface)));
    c.insert("uuid".into(), owned(profile_uuid(interface).to_string()));
    c.insert("type".into(), owned(connection_type.to_string()));
    c.insert("interface-name".into(), owned(interface.to_string()));
    p.insert("connection".into(), c);
    p.insert(connection_type.to_string(), Dict::new());
    let mut ipv6 = Dict::new();
    ipv6.insert("method".into(), owned("auto".to_string()));
    p.insert("ipv6".into(), ipv6);
    p
}

/// GetSettings returns the deprecated `addresses`/`routes` beside `address-data`/`route-data`;
/// sent back, NetworkManager would take the deprecated ones and lose route attributes such as
/// `table=`. Without them it reads the -data forms, which hold everything.
fn drop_deprecated(p: &mut Profile) {
    for family in ["ipv4", "ipv6"] {
        if let Some(s) = p.get_mut(family) {
            if s.contains_key("address-data") {
                s.remove("addresses");
            }
            if s.contains_key("route-data") {
                s.remove("routes");
            }
        }
    }
}

/// The profile with multihome's `ipv4` values set and everything else as it was. The routes and
/// rules multihome wrote there before (its [`Record`]) are replaced by the plan's; the user's own
/// stay, in whatever table. A profile without a record holds none of multihome's, unless
/// multihome created it (then all of them are, as before records existed).
pub fn merge(current: &Profile, want: &Wanted) -> Profile {
    let mut p = current.clone();
    drop_deprecated(&mut p);
    let old = p.get("ipv4").cloned();
    let ipv4 = p.entry("ipv4".into()).or_default();
    ipv4.insert("method".into(), owned(want.method.to_string()));
    let addresses: Vec<Dict> = want
        .addresses
        .iter()
        .map(|n| {
            let mut d = Dict::new();
            d.insert("address".into(), owned(n.addr().to_string()));
            d.insert("prefix".into(), owned(u32::from(n.prefix_len())));
            d
        })
        .collect();
    ipv4.insert("address-data".into(), dicts(addresses));
    ipv4.remove("addresses");
    match want.gateway {
        Some(gw) => {
            ipv4.insert("gateway".into(), owned(gw.to_string()));
        }
        None => {
            ipv4.remove("gateway");
        }
    }
    ipv4.insert("route-metric".into(), owned(i64::from(want.route_metric)));
    // The plan needs this uplink's default route in main, where the metrics order the uplinks:
    // `never-default` would drop it and a `route-table` would move it. Absent means no and main.
    ipv4.remove("never-default");
    ipv4.remove("route-table");
    let recorded = Record::of(current);
    let own_profile = created_for(current).is_some();
    let record = record_for(want);
    // Kept: what multihome did not write, unless it is one of the plan's (no duplicates).
    let merge = |key: &str, text: fn(&Dict) -> String, list: fn(&Record) -> &Vec<String>, new: Vec<Dict>| {
        let mut kept: Vec<Dict> = entries(old.as_ref(), key)
            .into_iter()
            .filter(|e| {
                let t = text(e);
                let ours = recorded.as_ref().map_or(own_profile, |r| list(r).contains(&t));
                !ours && !list(&record).contains(&t)
            })
            .collect();
        kept.extend(new);
        dicts(kept)
    };
    ipv4.insert("route-data".into(), merge("route-data", route_text, |r| &r.routes, want.routes.iter().map(route_dict).collect()));
    ipv4.remove("routes");
    ipv4.insert("routing-rules".into(), merge("routing-rules", rule_text, |r| &r.rules, want.rules.iter().map(rule_dict).collect()));
    record.write(&mut p);
    p
}

/// What merging `want` writes into a profile's routes and rules, as its [`Record`] says it.
pub fn record_for(want: &Wanted) -> Record {
    Record { routes: want.routes.iter().map(|r| route_text(&route_dict(r))).collect(), rules: want.rules.iter().map(|r| rule_text(&rule_dict(r))).collect() }
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
    let kept: Vec<String> = entries(merged.get("ipv4"), "route-data").iter().map(route_text).collect();
    let rewritten = Record::of(merged).unwrap_or_default().routes;
    let mine = |e: &Dict| {
        let t = route_text(e);
        !kept.contains(&t) || rewritten.contains(&t)
    };
    InstalledRoutes { before: installed(current, mine), after: installed(merged, |_| true) }
}

fn installed(p: &Profile, take: impl Fn(&Dict) -> bool) -> Vec<Route> {
    let ipv4 = p.get("ipv4");
    let route_metric = ipv4.and_then(|s| s.get("route-metric")).and_then(|v| i64::try_from(v).ok()).and_then(|m| u32::try_from(m).ok());
    entries(ipv4, "route-data").iter().filter(|e| take(e)).filter_map(route_of).map(|r| Route { metric: r.metric.or(route_metric), ..r }).collect()
}

/// A `route-data` entry as a plan route; `None` for one that is not IPv4 unicast as multihome
/// writes them.
fn route_of(e: &Dict) -> Option<Route> {
    let text = |k: &str| e.get(k).and_then(|v| String::try_from(v.clone()).ok());
    let number = |k: &str| e.get(k).and_then(|v| u32::try_from(v).ok());
    let prefix = u8::try_from(number("prefix")?).ok()?;
    let destination = Ipv4Net::new(text("dest")?.parse().ok()?, prefix).ok()?;
    let gateway = match text("next-hop") {
        Some(g) => Some(g.parse::<Ipv4Addr>().ok()?).filter(|g| !g.is_unspecified()),
        None => None,
    };
    let preferred_source = match text("src") {
        Some(s) => Some(s.parse().ok()?),
        None => None,
    };
    let table = match number("table") {
        None | Some(0) | Some(254) => Table::Main,
        Some(t) => Table::Id(t),
    };
    Some(Route { destination, gateway, table, metric: number("metric"), preferred_source })
}

/// `p` without what multihome wrote into its routes and rules and without its record, for a
/// user's profile whose interface left the policy; `None` when multihome never wrote there.
/// The other `ipv4` values stay as they are: multihome does not know what they were before.
pub fn release(p: &Profile) -> Option<Profile> {
    let record = Record::of(p)?;
    let mut out = p.clone();
    drop_deprecated(&mut out);
    if let Some(ipv4) = out.get_mut("ipv4") {
        let old = ipv4.clone();
        let routes: Vec<Dict> = entries(Some(&old), "route-data").into_iter().filter(|e| !record.routes.contains(&route_text(e))).collect();
        let rules: Vec<Dict> = entries(Some(&old), "routing-rules").into_iter().filter(|e| !record.rules.contains(&rule_text(e))).collect();
        ipv4.insert("route-data".into(), dicts(routes));
        ipv4.insert("routing-rules".into(), dicts(rules));
    }
    Record::erase(&mut out);
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
fn route_text(e: &Dict) -> String {
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
fn rule_text(e: &Dict) -> String {
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
    let ipv4 = p.get("ipv4");
    let get = |k: &str| ipv4.and_then(|s| s.get(k)).map(text);
    let mut out = vec![format!("ipv4.method: {}", get("method").unwrap_or_else(|| "auto".into()))];
    for a in entries(ipv4, "address-data") {
        let g = |k: &str| a.get(k).map(text).unwrap_or_default();
        out.push(format!("ipv4.addresses: {}/{}", g("address"), g("prefix")));
    }
    out.push(format!("ipv4.gateway: {}", get("gateway").unwrap_or_else(|| "--".into())));
    out.push(format!("ipv4.route-metric: {}", get("route-metric").unwrap_or_else(|| "-1".into())));
    out.push(format!("ipv4.never-default: {}", get("never-default").unwrap_or_else(|| "no".into())));
    out.push(format!("ipv4.route-table: {}", get("route-table").unwrap_or_else(|| "0".into())));
    let mut routes: Vec<String> = entries(ipv4, "route-data").iter().map(route_text).collect();
    routes.sort();
    out.extend(routes.into_iter().map(|r| format!("ipv4.routes: {r}")));
    let mut rules: Vec<String> = entries(ipv4, "routing-rules").iter().map(rule_text).collect();
    rules.sort();
    out.extend(rules.into_iter().map(|r| format!("ipv4.routing-rules: {r}")));
    out
}

/// [`ipv4_lines`] and the lines of multihome's [`Record`]: everything [`merge`] decides.
pub fn owned_lines(p: &Profile) -> Vec<String> {
    let mut lines = ipv4_lines(p);
    lines.extend(Record::lines(p));
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
