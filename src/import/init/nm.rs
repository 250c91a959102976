//! NetworkManager's devices and profiles (as its D-Bus API gives them) -> candidates. Pure.
//!
//! Per wired or Wi-Fi device, the profile it runs (the active one), else the one NetworkManager
//! would bring up by itself (autoconnect, the highest autoconnect priority, then the one used
//! last); profiles multihome created are never taken for the user's. Its `ipv4`/`ipv6` methods:
//! `auto` is DHCP (and router advertisements for IPv6), `manual` the addresses with the gateway,
//! `dhcp` (IPv6) DHCPv6; a family with `never-default`, without a gateway, or with a method that
//! gives no default route (disabled, ignore, link-local, shared) is left to NetworkManager.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::{Candidate, Found, Medium};
use crate::backend::nm::settings::{self, IPV4, IPV6, IpSetting, Profile};
use crate::import::policy_text::UplinkKeys;

/// One device as NetworkManager showed it.
#[derive(Debug, Clone, Default)]
pub struct Device {
    pub interface: String,
    /// NMDeviceType: 1 ethernet, 2 Wi-Fi, 20 veth, ...
    pub device_type: u32,
    /// Its place in GetDevices' answer.
    pub order: u32,
    /// NetworkManager manages it (its state is not "unmanaged").
    pub managed: bool,
    /// The profile active on it.
    pub active: Option<Profile>,
    /// Other profiles it could take: its available connections and those bound to its name.
    pub others: Vec<Profile>,
    /// The IPv4 router of its default route in main now (a lease's).
    pub router_now: Option<Ipv4Addr>,
}

/// NMDeviceType numbers multihome takes, with their words.
fn medium(device_type: u32) -> Option<(Medium, &'static str)> {
    match device_type {
        1 => Some((Medium::Wired, "NetworkManager device type ethernet")),
        // A veth takes ethernet profiles; the lab's uplinks are veths.
        20 => Some((Medium::Wired, "NetworkManager device type veth, taken as wired")),
        2 => Some((Medium::WiFi, "NetworkManager device type wifi")),
        _ => None,
    }
}

/// NetworkManager's route metric for `ipv4.route-metric=-1` (nm_device_get_route_metric_default).
fn default_metric(medium: Medium) -> u32 {
    match medium {
        Medium::Wired => 100,
        Medium::WiFi => 600,
    }
}

/// The candidates of NetworkManager `version`'s devices, and a note for each device left out.
pub fn found(version: &str, devices: &[Device]) -> Found {
    let mut candidates = Vec::new();
    let mut notes = Vec::new();
    for d in devices {
        match candidate(d) {
            Ok(c) => candidates.push(c),
            Err(Some(note)) => notes.push(format!("{}: {note}", d.interface)),
            Err(None) => {}
        }
    }
    Found {
        manager: format!("NetworkManager {version}"),
        backend: "networkmanager",
        tie_breakers: "then the higher autoconnect priority, then NetworkManager's device order",
        order_word: "NetworkManager's device order",
        candidates,
        notes,
    }
}

fn text(p: &Profile, key: &str) -> Option<String> {
    p.get("connection")?.get(key).and_then(|v| String::try_from(v.clone()).ok())
}

fn autoconnect_priority(p: &Profile) -> i32 {
    p.get("connection").and_then(|c| c.get("autoconnect-priority")).and_then(|v| i32::try_from(v.clone()).ok()).unwrap_or(0)
}

/// What NetworkManager would bring up on its own: autoconnect profiles (the default), the
/// highest autoconnect priority first, then the one used last.
fn would_autoconnect(p: &Profile) -> bool {
    p.get("connection").and_then(|c| c.get("autoconnect")).and_then(|v| bool::try_from(v.clone()).ok()).unwrap_or(true)
}

fn timestamp(p: &Profile) -> u64 {
    p.get("connection").and_then(|c| c.get("timestamp")).and_then(|v| u64::try_from(v.clone()).ok()).unwrap_or(0)
}

/// The device's candidate; `Err(None)` for a device that is no uplink kind (said nothing about),
/// `Err(Some(why))` for one left out with a reason.
fn candidate(d: &Device) -> Result<Candidate, Option<String>> {
    if d.interface == "lo" {
        return Err(None);
    }
    let Some((medium, medium_why)) = medium(d.device_type) else {
        return Err(Some(format!("NetworkManager device type {}: `multihome init` takes wired and Wi-Fi devices", d.device_type)));
    };
    if !d.managed {
        return Err(Some("NetworkManager does not manage it; not an uplink".into()));
    }
    let (profile, how) = choose(d)?;
    let name = text(profile, "id").unwrap_or_default();
    let mut explain = vec![format!("{}: profile {name:?} ({how}).", d.interface)];
    if settings::Record::of(profile).is_some() {
        explain.push("The profile holds what an earlier `multihome apply` wrote: its route metric may be multihome's own.".into());
    }
    let mut keys = UplinkKeys { interface: d.interface.clone(), ..Default::default() };
    let v4 = IpSetting::of(profile, IPV4);
    let v6 = IpSetting::of(profile, IPV6);
    let (gives4, line4) = ipv4(&v4, &mut keys);
    let (gives6, line6) = ipv6(&v6, &mut keys);
    explain.push(format!("{line4} {line6}"));
    if !gives4 && !gives6 {
        return Err(Some(format!("profile {name:?} gives no default route ({line4} {line6}); not an uplink")));
    }
    let mut targets: Vec<IpAddr> = keys.gateway4.map(IpAddr::V4).into_iter().collect();
    if keys.dhcp4
        && let Some(r) = d.router_now
    {
        explain.push(format!("Its lease's router now: {r} (probed)."));
        targets.push(IpAddr::V4(r));
    }
    targets.extend(keys.gateway6.filter(|g| !is_link_local(*g)).map(IpAddr::V6));
    let setting = if gives4 { &v4 } else { &v6 };
    let family = if gives4 { "ipv4" } else { "ipv6" };
    let (metric, metric_why) = match setting.route_metric {
        Some(m) if m >= 0 => (u32::try_from(m).unwrap_or(u32::MAX), format!("{family}.route-metric")),
        _ => (default_metric(medium), format!("{family}.route-metric -1: NetworkManager's default for a {} device", medium.word())),
    };
    Ok(Candidate {
        keys,
        medium,
        medium_why: medium_why.into(),
        metric,
        metric_why,
        autoconnect_priority: autoconnect_priority(profile),
        order: d.order,
        explain,
        targets,
    })
}

/// The device's profile and how it was chosen.
fn choose(d: &Device) -> Result<(&Profile, String), Option<String>> {
    let ours = |p: &Profile| settings::created_for(p).is_some();
    if let Some(p) = d.active.as_ref().filter(|p| !ours(p)) {
        return Ok((p, "active".into()));
    }
    let mut others: Vec<&Profile> = d.others.iter().filter(|p| !ours(p) && would_autoconnect(p)).collect();
    others.sort_by_key(|p| (std::cmp::Reverse(autoconnect_priority(p)), std::cmp::Reverse(timestamp(p))));
    match others.first() {
        Some(p) => {
            Ok((p, format!("not active; NetworkManager would choose it: autoconnect priority {}, used last among {}", autoconnect_priority(p), others.len())))
        }
        None if d.active.is_some() => Err(Some("its active profile is one multihome created, not the user's; not an uplink".into())),
        None => Err(Some("no profile NetworkManager would bring up on it by itself; not an uplink".into())),
    }
}

fn is_link_local(a: Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// The `ipv4` setting into `keys`: whether it gives a default route, and what it became.
fn ipv4(s: &IpSetting, keys: &mut UplinkKeys) -> (bool, String) {
    let method = s.method.as_deref().unwrap_or("auto");
    if s.never_default == Some(true) && matches!(method, "auto" | "manual") {
        return (false, format!("IPv4: method {method} with never-default: no default route, left to NetworkManager."));
    }
    match method {
        "auto" => {
            keys.dhcp4 = true;
            let extra = if s.addresses.is_empty() { "" } else { " (its extra static addresses stay NetworkManager's)" };
            (true, format!("IPv4: method auto, DHCP=ipv4{extra}."))
        }
        "manual" => {
            let addresses: Vec<Ipv4Net> =
                s.addresses.iter().filter_map(|a| if let IpAddr::V4(ip) = a.address { Ipv4Net::new(ip, a.prefix as u8).ok() } else { None }).collect();
            match s.gateway {
                Some(IpAddr::V4(g)) if addresses.iter().any(|n| n.contains(&g)) => {
                    keys.addresses4 = addresses;
                    keys.gateway4 = Some(g);
                    (true, format!("IPv4: method manual, its addresses and gateway {g}."))
                }
                Some(g) => (
                    false,
                    format!("IPv4: method manual, gateway {g} outside its addresses (the policy needs the router on the subnet): left to NetworkManager."),
                ),
                None => (false, "IPv4: method manual without a gateway: no default route, left to NetworkManager.".into()),
            }
        }
        m => (false, format!("IPv4: method {m}: no default route, left to NetworkManager.")),
    }
}

/// The `ipv6` setting into `keys`, as [`ipv4`].
fn ipv6(s: &IpSetting, keys: &mut UplinkKeys) -> (bool, String) {
    let method = s.method.as_deref().unwrap_or("auto");
    if s.never_default == Some(true) && matches!(method, "auto" | "dhcp" | "manual") {
        return (false, format!("IPv6: method {method} with never-default: left to NetworkManager."));
    }
    match method {
        "auto" => {
            keys.accept_ra = true;
            (true, "IPv6: method auto, IPv6AcceptRA=yes (SLAAC and the advertised router).".into())
        }
        "dhcp" => {
            keys.dhcp6 = true;
            keys.accept_ra = true;
            (true, "IPv6: method dhcp, DHCP for IPv6 with IPv6AcceptRA=yes (only the advertisements name the router).".into())
        }
        "manual" => {
            let addresses: Vec<Ipv6Net> = s
                .addresses
                .iter()
                .filter_map(|a| if let IpAddr::V6(ip) = a.address { Ipv6Net::new(ip, a.prefix as u8).ok() } else { None })
                .filter(|n| !is_link_local(n.addr()))
                .collect();
            match s.gateway {
                Some(IpAddr::V6(g)) if !addresses.is_empty() && (is_link_local(g) || addresses.iter().any(|n| n.contains(&g))) => {
                    keys.addresses6 = addresses;
                    keys.gateway6 = Some(g);
                    (true, format!("IPv6: method manual, its addresses and gateway {g}."))
                }
                _ => (false, "IPv6: method manual without a usable gateway: left to NetworkManager.".into()),
            }
        }
        m => (false, format!("IPv6: method {m}: left to NetworkManager.")),
    }
}

#[cfg(test)]
mod tests {
    use zbus::{OwnedVariant, Variant};

    use super::*;
    use crate::backend::nm::settings::{Dict, owned};
    use crate::import::init::write;

    fn v<'a>(x: impl Into<Variant<'a>>) -> OwnedVariant {
        owned(x)
    }

    /// `address-data` as GetSettings sends it: `aa{sv}` of address (s) and prefix (u).
    fn address_data(list: &[(&str, u32)]) -> OwnedVariant {
        let entries: Vec<Dict> = list.iter().map(|(a, p)| Dict::from([("address".to_string(), v(a.to_string())), ("prefix".to_string(), v(*p))])).collect();
        v(entries)
    }

    /// A profile of GetSettings' shape: connection (id, type, interface-name, autoconnect-priority
    /// i, timestamp t), ipv4 and ipv6 (method s, address-data, gateway s, route-metric x).
    fn profile(id: &str, kind: &str, ipv4: &[(&str, OwnedVariant)], ipv6: &[(&str, OwnedVariant)], priority: i32) -> Profile {
        let dict = |pairs: &[(&str, OwnedVariant)]| pairs.iter().map(|(k, x)| (k.to_string(), x.clone())).collect::<Dict>();
        let connection =
            dict(&[("id", v(id.to_string())), ("type", v(kind.to_string())), ("autoconnect-priority", v(priority)), ("timestamp", v(1_700_000_000u64))]);
        Profile::from([("connection".to_string(), connection), ("ipv4".to_string(), dict(ipv4)), ("ipv6".to_string(), dict(ipv6))])
    }

    fn auto(metric: i64) -> Vec<(&'static str, OwnedVariant)> {
        vec![("method", v("auto")), ("route-metric", v(metric))]
    }

    fn ignore6() -> Vec<(&'static str, OwnedVariant)> {
        vec![("method", v("ignore"))]
    }

    fn device(interface: &str, device_type: u32, order: u32, active: Profile) -> Device {
        Device { interface: interface.into(), device_type, order, managed: true, active: Some(active), ..Default::default() }
    }

    fn order(found: &Found) -> Vec<String> {
        let init = write::policy(found).unwrap();
        crate::policy::parse("init", &init.policy).unwrap_or_else(|e| panic!("{e}\n{}", init.policy));
        init.policy.lines().filter_map(|l| l.strip_prefix("Interface=")).map(str::to_string).collect()
    }

    #[test]
    fn wired_comes_before_wifi_whatever_the_metrics_then_metric_then_autoconnect_priority() {
        let devices = [
            device("wlan1", 2, 1, profile("home", "802-11-wireless", &auto(50), &ignore6(), 0)),
            device("wlan0", 2, 2, profile("office", "802-11-wireless", &auto(-1), &ignore6(), 10)),
            device("eth0", 1, 3, profile("Wired connection 1", "802-3-ethernet", &auto(-1), &ignore6(), 0)),
            device("wlan2", 2, 4, profile("cafe", "802-11-wireless", &auto(600), &ignore6(), 0)),
        ];
        let found = found("1.42.4", &devices);
        // wlan0 has -1: Wi-Fi's default 600, the same as wlan2's, and a higher priority.
        assert_eq!(order(&found), ["eth0", "wlan1", "wlan0", "wlan2"]);
        let eth0 = found.candidates.iter().find(|c| c.keys.interface == "eth0").unwrap();
        assert_eq!((eth0.metric, eth0.metric_why.as_str()), (100, "ipv4.route-metric -1: NetworkManager's default for a wired device"));
        let text = write::policy(&found).unwrap().policy;
        assert!(text.contains("After wlan1: Wi-Fi (NetworkManager device type wifi), route metric 600"), "{text}");
        assert!(text.contains("the same metric as wlan0, and a lower autoconnect priority than its 10."), "{text}");
    }

    #[test]
    fn manual_addresses_and_gateway_and_ipv6_as_configured() {
        let ipv4 = vec![
            ("method", v("manual")),
            ("address-data", address_data(&[("192.168.178.99", 24)])),
            ("gateway", v("192.168.178.1")),
            ("route-metric", v(50i64)),
        ];
        let ipv6 = vec![("method", v("manual")), ("address-data", address_data(&[("2001:db8:178::99", 64)])), ("gateway", v("2001:db8:178::1"))];
        let slaac = vec![("method", v("auto"))];
        let dhcp6 = vec![("method", v("dhcp"))];
        let devices = [
            device("eth0", 1, 1, profile("wired", "802-3-ethernet", &ipv4, &ipv6, 0)),
            Device { router_now: Some("192.168.178.1".parse().unwrap()), ..device("eth1", 1, 2, profile("lease", "802-3-ethernet", &auto(200), &slaac, 0)) },
            device("eth2", 1, 3, profile("v6", "802-3-ethernet", &[("method", v("disabled"))], &dhcp6, 0)),
        ];
        let found = found("1.42.4", &devices);
        let init = write::policy(&found).unwrap();
        let p = &init.policy;
        assert!(
            p.contains("Interface=eth0\nPriority=1\nAddress=192.168.178.99/24\nAddress=2001:db8:178::99/64\nGateway=192.168.178.1\nGateway=2001:db8:178::1\n"),
            "{p}"
        );
        assert!(p.contains("Interface=eth1\nPriority=3\nDHCP=ipv4\nIPv6AcceptRA=yes\n"), "{p}");
        assert!(p.contains("# Its lease's router now: 192.168.178.1 (probed)."), "{p}");
        // eth2's metric is its ipv6 one: -1 is absent here, the wired default 100, so it stands before eth1 (200).
        assert_eq!(order(&found), ["eth0", "eth2", "eth1"]);
        assert!(p.contains("Interface=eth2\nPriority=2\nDHCP=ipv6\nIPv6AcceptRA=yes\n"), "{p}");
        assert!(
            p.contains("[Probe]\n# The uplinks' routers; add a host behind them to see a dead provider too.\nTarget=192.168.178.1\nTarget=2001:db8:178::1\n"),
            "{p}"
        );
        let policy = crate::policy::parse("init", p).unwrap();
        let eth2 = policy.uplinks().iter().find(|u| u.interface == "eth2").unwrap();
        assert!(eth2.ipv6.as_ref().is_some_and(|v6| v6.dhcp && v6.accept_ra));
    }

    #[test]
    fn devices_and_profiles_that_give_no_default_route_are_noted_not_written() {
        let no_gateway = vec![("method", v("manual")), ("address-data", address_data(&[("10.0.0.2", 24)]))];
        let never = vec![("method", v("auto")), ("never-default", v(true))];
        let devices = [
            device("eth0", 1, 1, profile("wired", "802-3-ethernet", &auto(-1), &ignore6(), 0)),
            device("eth1", 1, 2, profile("lan", "802-3-ethernet", &no_gateway, &ignore6(), 0)),
            device("eth2", 1, 3, profile("vpn-ish", "802-3-ethernet", &never, &ignore6(), 0)),
            device("br0", 13, 4, profile("bridge", "bridge", &auto(-1), &ignore6(), 0)),
            Device { interface: "wlan0".into(), device_type: 2, order: 5, managed: true, ..Default::default() },
            Device { managed: false, ..device("veth9", 20, 6, profile("docker", "802-3-ethernet", &auto(-1), &ignore6(), 0)) },
            device("lo", 32, 0, profile("lo", "loopback", &auto(-1), &ignore6(), 0)),
        ];
        let found = found("1.42.4", &devices);
        assert_eq!(found.candidates.len(), 1);
        let notes = found.notes.join("\n");
        assert!(notes.contains("eth1: profile \"lan\" gives no default route (IPv4: method manual without a gateway"), "{notes}");
        assert!(notes.contains("eth2: profile \"vpn-ish\" gives no default route (IPv4: method auto with never-default"), "{notes}");
        assert!(notes.contains("br0: NetworkManager device type 13"), "{notes}");
        assert!(notes.contains("wlan0: no profile NetworkManager would bring up"), "{notes}");
        assert!(notes.contains("veth9: NetworkManager does not manage it"), "{notes}");
        assert!(!notes.contains("lo:"), "{notes}");
    }

    #[test]
    fn an_inactive_device_takes_the_profile_networkmanager_would_choose_and_never_multihomes_own() {
        let mut ours = profile("multihome-eth0", "802-3-ethernet", &auto(1), &ignore6(), 100);
        ours.get_mut("connection").unwrap().insert("uuid".into(), v(settings::profile_uuid("eth0").to_string()));
        let mut off = profile("manual-only", "802-3-ethernet", &auto(1), &ignore6(), 50);
        off.get_mut("connection").unwrap().insert("autoconnect".into(), v(false));
        let low = profile("low", "802-3-ethernet", &auto(300), &ignore6(), -5);
        let high = profile("high", "802-3-ethernet", &auto(200), &ignore6(), 5);
        let d =
            Device { interface: "eth0".into(), device_type: 1, order: 1, managed: true, active: None, others: vec![ours, off, low, high], router_now: None };
        let found = found("1.42.4", &[d]);
        let c = &found.candidates[0];
        assert_eq!((c.metric, c.autoconnect_priority), (200, 5));
        assert!(c.explain[0].starts_with("eth0: profile \"high\" (not active; NetworkManager would choose it: autoconnect priority 5"), "{:?}", c.explain);
    }
}
